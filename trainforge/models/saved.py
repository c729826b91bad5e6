"""Reading an estimator that saved itself as JSON plus files, as strictly as a bundle is read:
only the settings the class takes, only the fitted fields it writes, and a network whose shape
is checked against its weights before any memory is given to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

# A fitted field's value must be one of these JSON kinds (checked before it is set).
_KINDS = {
    "classes_": list,
    "n_features_in_": int,
    "history_": list,
    "n_rounds_": int,
    "n_jobs_": int,
    "n_epochs_": int,
    "n_iter_": int,
    "best_epoch_": int,
}


# What bundles written before these became ``fit`` arguments hold as parameters, always with
# these neutral values (dropped on reading; any other value is refused like an unknown key).
_RETIRED = {
    "checkpoint_dir": None,
    "resume": False,
    "verbose": False,
    "on_epoch": None,
    "callbacks": None,
    "on_round": None,
    "sample_dir": None,
}


def read_saved(folder: Path, cls, fitted_names) -> dict:
    """``estimator.json`` as ``{"params", "fitted", "config"}``: a JSON object whose params are
    the class's own constructor settings and whose fitted fields are the ones it writes.

    Raises:
        ValueError: anything else in the file.
    """
    saved = json.loads((folder / "estimator.json").read_text(encoding="utf-8"))
    if not isinstance(saved, dict) or not isinstance(saved.get("params"), dict):
        raise ValueError("estimator.json is not an estimator's settings")
    known = set(cls().get_params())
    params = {
        key: value
        for key, value in saved["params"].items()
        if key in known or key not in _RETIRED or value != _RETIRED[key]
    }
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"estimator.json sets {', '.join(unknown)}, which {cls.__name__} lacks")
    fitted = saved.get("fitted", {})
    if not isinstance(fitted, dict):
        raise ValueError("estimator.json's fitted state is not a mapping")
    for key, value in fitted.items():
        if key not in fitted_names:
            raise ValueError(f"estimator.json's fitted state holds {key!r}, which is not saved")
        kind = _KINDS.get(key)
        if kind is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise ValueError(f"estimator.json's {key} must be a {kind.__name__}")
        if key not in _KINDS and not _plain(value):
            raise ValueError(f"estimator.json's {key} must be numbers or lists of numbers")
    config = saved.get("config", {})
    if not isinstance(config, dict):
        raise ValueError("estimator.json's network config is not a mapping")
    return {"params": params, "fitted": fitted, "config": config}


def save_network(estimator, folder: Path, fitted_names) -> list[str]:
    """Write a fitted torch estimator as ``estimator.json`` (its settings, its fitted fields
    named in ``fitted_names``, its network's config) and ``weights.safetensors``: what
    ``read_saved`` and ``checked_network`` read back. The device is saved as ``cpu``: a saved
    model loads anywhere, and ``set_params`` moves it."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    params = {k: json_ready(v) for k, v in estimator.get_params().items()}
    params["device"] = "cpu"
    fitted = {k: json_ready(getattr(estimator, k)) for k in fitted_names if hasattr(estimator, k)}
    network = estimator.model_
    config = {k: json_ready(v) for k, v in vars(network.config).items()}
    (folder / "estimator.json").write_text(
        json.dumps({"params": params, "fitted": fitted, "config": config}, indent=1)
    )
    weights = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    save_file(weights, folder / "weights.safetensors")
    return ["estimator.json", "weights.safetensors"]


def json_ready(value):
    """A fitted value as JSON takes it: numpy arrays and scalars become lists and Python
    numbers, tuples lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return list(value) if isinstance(value, tuple) else value


def _plain(value) -> bool:
    """Numbers, strings, or (nested) lists of them: what fitted arrays are saved as."""
    if isinstance(value, (int, float, str)) or value is None:
        return True
    return isinstance(value, list) and all(_plain(v) for v in value)


def checked_network(build: Callable[[], object], weights: dict):
    """The network ``build()`` makes, once its parameter shapes are known to match ``weights``:
    it is first built on torch's meta device (no memory), so a config asking for layers of
    200,000 units is refused instead of allocated."""
    import torch

    with torch.device("meta"):
        shell = build()
    expected = {k: tuple(v.shape) for k, v in shell.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in weights.items()}
    if expected != found:
        missing = sorted(set(expected) ^ set(found)) or [
            k for k in expected if expected[k] != found.get(k)
        ]
        raise ValueError(
            f"the saved network's config does not match its weights (first difference: "
            f"{missing[0]})"
        )
    network = build()
    network.load_state_dict(weights)
    return network


def as_array(key: str, value):
    """``classes_`` comes back as an array; other fields as they were saved."""
    return np.asarray(value) if key == "classes_" else value
