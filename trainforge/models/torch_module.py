"""Your own torch module on trainforge's training loop (docs/models.md, "Your own models").

``builder`` names a function ``package.module:function`` that takes ``n_inputs`` and
``n_outputs`` (and ``builder_args``) and returns an ``nn.Module`` mapping a float32 batch
``(rows, n_inputs)`` to ``(rows, n_outputs)`` logits (or the standardised value). It trains on
the MLP's loop, so checkpoints, bit-identical resume, early stopping, devices and tracking are
the MLP's. It is saved as JSON (the builder's import path and its arguments, never code) plus
safetensors weights; loading rebuilds it by importing the builder, which happens only for a
module the loader trusts (``trainforge.load(path, trust=["mypackage"])``): otherwise the load is
refused, naming the module, before anything of it is imported.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin

from trainforge.errors import BundleError, DataError
from trainforge.models.external import BUILDER
from trainforge.models.neural import MLPClassifier, MLPRegressor, _MLPBase
from trainforge.models.torch_core import TRAINING_CONSTRAINTS, estimator_init


@dataclass
class BuilderConfig:
    """What rebuilds the network: saved as JSON with the weights."""

    builder: str
    n_inputs: int
    n_outputs: int
    args: dict = field(default_factory=dict)


class Built(torch.nn.Module):
    """The user's module (a torch module, or a Keras model on the torch backend:
    trainforge.models.keras_module), with the config that rebuilds it."""

    def __init__(self, config: BuilderConfig, function, seed=None):
        super().__init__()
        from trainforge.models import keras_module

        self.config = config
        keras_module.seed(seed)
        with keras_module.keras_environment():  # a builder may import Keras when called
            module = function(n_inputs=config.n_inputs, n_outputs=config.n_outputs, **config.args)
        if not isinstance(module, torch.nn.Module):
            raise DataError(
                f"builder {config.builder} returned {type(module).__name__}, not a torch.nn.Module"
            )
        self.module = module
        self.keras = keras_module.is_keras(module)
        if self.keras:
            keras_module.positional(self, "module")

    def parameters(self, recurse: bool = True):
        """A Keras model's parameters in its layer order (torch lists them sorted by name, and
        the names hold Keras' global layer counters), so an optimizer's state, saved by
        position, restores into another copy of the model."""
        found = list(super().parameters(recurse))
        if not self.keras:
            return iter(found)
        from trainforge.models.keras_module import layer_order

        return iter(layer_order(self.module, found))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.keras:  # Keras layers read training from the call, not from torch's flag
            return self.module(x, training=self.training)
        return self.module(x)


def import_builder(path: str):
    """The function at ``package.module:function`` (imported: only for trusted modules on
    load; the check is in ``_TorchModuleBase._rebuild``)."""
    if not isinstance(path, str) or not BUILDER.match(path):
        raise DataError(f"builder: expected package.module:function, got {path!r}")
    from trainforge.models.keras_module import keras_environment

    module, _, name = path.partition(":")
    try:
        with keras_environment():  # a builder that imports Keras gets it on torch
            function = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise DataError(f"builder {path}: cannot import it ({exc})") from None
    if not callable(function):
        raise DataError(f"builder {path} is not a function")
    return function


def builder_path(function) -> str:
    """``package.module:function`` for a function a later process can import.

    Raises:
        DataError: a lambda, a nested function, or one defined in ``__main__``.
    """
    module, name = getattr(function, "__module__", None), getattr(function, "__qualname__", "")
    if not module or module == "__main__" or not name.isidentifier():
        raise DataError(
            f"builder {name or function!r}: give a function defined at the top of an importable "
            "module (not a lambda, a nested function or __main__), so the saved model can name it"
        )
    return f"{module}:{name}"


class _TorchModuleBase(_MLPBase):
    _parameter_constraints = {
        **TRAINING_CONSTRAINTS,
        "builder": [str],
        "builder_args": [dict, None],
    }
    __init__ = estimator_init({"builder": "", "builder_args": None})

    def _network(self, X: np.ndarray, n_outputs: int) -> torch.nn.Module:
        config = BuilderConfig(self.builder, int(X.shape[1]), n_outputs, self.builder_args or {})
        return Built(config, import_builder(config.builder), self.random_state)

    @classmethod
    def _rebuild(cls, config: dict) -> torch.nn.Module:
        from trainforge.bundle import trusted_module

        builder = str(config.get("builder", ""))
        module = builder.partition(":")[0]
        if not trusted_module(module):
            top = module.split(".")[0]
            raise BundleError(
                f"this model was built by {builder}; refusing to import {module} unless you "
                f"trust it: load with trust=[{top!r}] (trainforge predict --trust {top})"
            )
        return Built(BuilderConfig(**config), import_builder(builder))


class TorchModuleClassifier(ClassifierMixin, _TorchModuleBase):
    """Your torch module as a classifier: it returns one logit per class."""

    fit = MLPClassifier.fit
    predict_proba = MLPClassifier.predict_proba
    predict = MLPClassifier.predict


class TorchModuleRegressor(RegressorMixin, _TorchModuleBase):
    """Your torch module as a regressor: it returns one value per row (the target is
    standardised for training and predictions scaled back)."""

    fit = MLPRegressor.fit
    predict = MLPRegressor.predict
