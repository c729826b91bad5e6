"""The Python API: ``trainforge.train`` and ``trainforge.load``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from trainforge.bundle import load_bundle
from trainforge.data.images import images_frame, is_image_array
from trainforge.data.read import as_frame
from trainforge.errors import RunError
from trainforge.events import RunObserver
from trainforge.model import Model
from trainforge.run import RunResult, execute
from trainforge.rundir import MANIFEST, read_manifest
from trainforge.spec import RunSpec, build_spec


def train(
    spec: RunSpec | dict | str | Path | None = None,
    data: Any = None,
    *,
    y: Any = None,
    validation: Any = None,
    observer: RunObserver | None = None,
    quiet: bool = False,
    verbose: bool = False,
    **settings: Any,
) -> RunResult:
    """Train and compare candidates; returns the leaderboard, the best model and the run folder.

    Args:
        spec: a RunSpec, a mapping, or a YAML file path; optional when settings say enough.
        data: training data: a file path, a DataFrame, or a 2-D array (then pass ``y``);
            images as an array (N, H, W[, C]) with ``y``, an npz file or a class folder.
        y: target values when ``data`` is an array or a frame without the target.
        validation: validation data (file path or DataFrame) instead of a split.
        observer: receives progress events (see trainforge.events); replaces the printed
            progress.
        quiet: print nothing; notices go to the ``trainforge`` logger (INFO) and warnings to
            it at WARNING, which Python shows unless logging is set up otherwise.
        verbose: also print each epoch of neural models (at most every 5 s).
        **settings: flat spec settings that override ``spec``: target, labels, task, models,
            metric, seed, output, name, columns, folds, validation_fraction, ensemble,
            imbalance (a mapping), tracking (False: no MLflow), tracking_uri, experiment,
            time_limit, trials, execution (a mapping), ray (True or an address: run on Ray),
            workers, data_parallel (docs/scale.md).

    Example:
        >>> result = trainforge.train(data="adult.csv", target="income >50K", models=["ridge"])
    """
    started = time.monotonic()  # a time budget counts from here
    frames: dict[str, Any] = {"train": None, "validation": None}
    task = settings.get("task") or (spec.get("task") if isinstance(spec, dict) else None)
    if y is not None and settings.get("target") is None and task != "generation":
        settings["target"] = "target"
    for role, value in (("train", data), ("validation", validation)):
        if isinstance(value, (str, Path)):
            settings[role] = value
        elif is_image_array(value, task) and task == "generation":  # labels never generated
            labels = settings.setdefault("labels", "label") if y is not None else "label"
            frames[role] = images_frame(value, y if role == "train" else None, labels)
        elif is_image_array(value, task):  # (N, H, W[, C]) images: a pixel table
            target = settings.setdefault("target", "label")
            settings.setdefault("task", "image_classification")
            frames[role] = images_frame(value, y if role == "train" else None, target)
        elif value is not None:
            frames[role] = as_frame(value, settings.get("target"), y if role == "train" else None)
    if isinstance(settings.get("models"), (list, tuple)):  # estimator objects: their entries
        from trainforge.models.external import as_entry

        settings["models"] = [
            m if isinstance(m, (str, dict)) else as_entry(m) for m in settings["models"]
        ]
    spec = build_spec(spec, **settings)
    observer = observer or _progress(quiet, verbose)
    return execute(spec, frames["train"], frames["validation"], observer, started)


def _progress(quiet: bool, verbose: bool) -> RunObserver:
    """What a Python user sees: plain progress lines and notices on stderr (fine in notebooks
    and logs), plus the ``trainforge`` logger; only the logger when ``quiet``."""
    from trainforge.events import FanOut, LogObserver

    if quiet:
        return LogObserver(loud=True)
    from trainforge.console import ConsoleObserver

    return FanOut(ConsoleObserver(plain=True, epochs=verbose), LogObserver())


def load(path: str | Path, key=None, trust=None) -> Model:
    """Load a saved model: a bundle folder, or a run folder (its best candidate).

    Args:
        key: a signing key (bytes, or the path of a key file): the bundle must then carry a
            valid signature made with it (``trainforge sign``; docs/runs.md).
        trust: packages (``"imblearn"``) or full type names whose classes the bundle may hold
            beyond what trainforge trusts: your own estimators' (docs/models.md).
    """
    return load_bundle(model_folder(path), key=key, trust=trust)


def model_folder(path: str | Path) -> Path:
    """The bundle folder a path means: itself, or a completed run's best candidate's model."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        manifest = read_manifest(path)
        best = (manifest.get("best") or {}).get("candidate")
        if manifest.get("status") != "completed" or best is None:
            status = manifest.get("status")
            raise RunError(
                f"run {path.name} did not complete (status: {status}); it has no best model"
            )
        path = path / "candidates" / best / "model"
    return path


def sign(path: str | Path, key) -> Path:
    """Sign a saved model (a bundle folder, or a run's best) with ``key``: an HMAC-SHA256 over
    every file, written as the bundle's signature.json. Returns the bundle folder."""
    from trainforge.bundle_checks import read_key
    from trainforge.bundle_checks import sign as sign_folder

    folder = model_folder(path)
    load_bundle(folder)  # only a bundle that loads is worth signing
    sign_folder(folder, read_key(key))
    return folder
