"""Keras 3 models on trainforge's loop, through the torch backend (docs/models.md).

With ``KERAS_BACKEND=torch`` a Keras model *is* a ``torch.nn.Module`` whose variables are torch
parameters, so a builder may return one and it trains like any torch module. Three things
differ, and are handled here:

- Keras is imported with its backend forced to torch and its home (where it writes
  ``keras.json`` on first import) in the run's folder (``<run>/keras``; outside a run a
  temporary folder of trainforge's), never the user's ``~/.keras``.
- Its state-dict keys carry Keras' global layer-name counters (``dense_3`` when a second copy is
  built in the same process), so they are saved and loaded by position in the state dict, which
  the architecture fixes.
- Keras layers take ``training`` as an argument, not torch's ``module.training``: the call
  passes it, so dropout and batch norm behave as the loop asks.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

from trainforge.errors import DataError

PREFIX = "keras."  # positional keys: keras.0, keras.1, ...


def is_keras(module) -> bool:
    return type(module).__module__.split(".")[0] == "keras"


_RUN_HOME: list[str] = []  # the folder of the run in progress (run_home), if any


@contextlib.contextmanager
def run_home(folder):
    """While a run executes, Keras' home (its ``keras.json``) is ``<run>/keras`` should this
    process import Keras during the run."""
    _RUN_HOME.append(os.path.join(os.fspath(folder), "keras"))
    try:
        yield
    finally:
        _RUN_HOME.pop()


@contextlib.contextmanager
def keras_environment():
    """Import anything inside with Keras on the torch backend and its home in the run's folder
    (``run_home``), else a temporary folder of trainforge's (Keras reads both once, when it is
    first imported)."""
    if "keras" in sys.modules:
        backend = sys.modules["keras"].backend.backend()
        if backend != "torch":
            raise DataError(
                f"Keras is already imported with the {backend} backend; trainforge trains Keras "
                "models on torch: set KERAS_BACKEND=torch before importing keras"
            )
        yield
        return
    saved = {name: os.environ.get(name) for name in ("KERAS_BACKEND", "KERAS_HOME")}
    os.environ["KERAS_BACKEND"] = "torch"
    home = _RUN_HOME[-1] if _RUN_HOME else os.path.join(tempfile.gettempdir(), "trainforge-keras")
    os.environ["KERAS_HOME"] = home
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def positional(owner, attribute: str) -> None:
    """Save and load ``owner.<attribute>``'s (a Keras model's) state under positional keys:
    ``keras.<i>`` for the i-th of the model's variables in layer order (``model.variables``).
    Keras' own keys are its variable paths sorted by name, so both the names and their order
    change with the global layer counters (``dense_9`` sorts after ``dense_10``); each variable
    also appears twice (its functional and its own path), stored once here."""
    inner = f"{attribute}."

    def to_positions(module, state, prefix, local_metadata):
        order = _order(getattr(owner, attribute))
        for key in [k for k in list(state) if k.startswith(prefix + inner)]:
            value = state.pop(key)
            state.setdefault(f"{prefix}{inner}{PREFIX}{order[_path(key)]}", value)
        return state

    def from_positions(state, prefix, *args):
        order = _order(getattr(owner, attribute))
        given = [k for k in state if k.startswith(f"{prefix}{inner}{PREFIX}")]
        for name in getattr(owner, attribute).state_dict(keep_vars=True):
            key = f"{prefix}{inner}{PREFIX}{order[_path(name)]}"
            if key in state:
                state[f"{prefix}{inner}{name}"] = state[key]
        for key in given:
            state.pop(key)

    owner._register_state_dict_hook(to_positions)
    owner._register_load_state_dict_pre_hook(from_positions)


def layer_order(model, parameters: list) -> list:
    """``parameters`` (torch's, sorted by name) in the order of the model's variables."""
    position = {id(variable.value): index for index, variable in enumerate(model.variables)}
    return sorted(parameters, key=lambda p: position.get(id(p), len(position)))


def _order(model) -> dict[str, int]:
    return {variable.path: index for index, variable in enumerate(model.variables)}


def _path(key: str) -> str:
    """A Keras state-dict key's variable path (after ``_torch_params.``)."""
    return key.rpartition("_torch_params.")[2]


def seed(value) -> None:
    """Seed Keras' own generators (dropout draws from them) when Keras is in use."""
    if "keras" in sys.modules and value is not None:
        sys.modules["keras"].utils.set_random_seed(int(value))
