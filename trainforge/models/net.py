"""Estimators of the ``net`` family: a network written as layers (trainforge.models.layers) on
the input handling of trainforge's own nets, so each input gets what its own family gets.

- tables: the MLP's (rows of scaled numbers);
- images: the CNN's (per-channel normalisation, augmentation with shifts and flips);
- series and text: the RNN's and Transformer's (per-channel scaling and padding masks, or a BPE
  tokenizer trained on the training texts and saved with the model).

They train on the one loop with the same settings (trainforge.models.torch_core), and are saved
as the layer list (JSON) plus safetensors weights: loading builds the network from the list and
imports no code.
"""

from __future__ import annotations

import torch
from sklearn.base import ClassifierMixin, RegressorMixin

from trainforge.models.image import AUGMENT, AUGMENT_CONSTRAINTS, CNN_TRAINING, CNNClassifier
from trainforge.models.nets.layered import LayeredConfig, LayeredNet
from trainforge.models.neural import MLPClassifier, MLPRegressor, _MLPBase
from trainforge.models.sequence import (
    _INPUTS,
    INPUTS,
    SEQUENCE_TRAINING,
    _SequenceBase,
    _SequenceClassifier,
    _SequenceRegressor,
)
from trainforge.models.torch_core import TRAINING_CONSTRAINTS, estimator_init

_LAYERS = {"layers": [list, tuple, None]}  # a list; a tuple once read back from JSON


class _Layered:
    """``_network`` / ``_rebuild`` from ``layers`` for an input kind and shape."""

    def _layered(self, input: str, shape: tuple, n_outputs: int) -> torch.nn.Module:
        from trainforge.errors import DataError
        from trainforge.models import layers

        if self.layers is None:
            raise DataError("net: give its layers, e.g. [{type: dense, units: 64}]")
        layers.check(list(self.layers), "layers")
        config = LayeredConfig(input, tuple(int(v) for v in shape), n_outputs, tuple(self.layers))
        return LayeredNet(config)

    @classmethod
    def _rebuild(cls, config: dict) -> torch.nn.Module:
        from trainforge.models import layers

        layers.check(list(config.get("layers") or ()), "layers")  # a saved list, checked again
        return LayeredNet(LayeredConfig(**config))


class _TableNet(_Layered, _MLPBase):
    _parameter_constraints = {**TRAINING_CONSTRAINTS, **_LAYERS}
    __init__ = estimator_init({"layers": None})

    def _network(self, X, n_outputs: int) -> torch.nn.Module:
        return self._layered("table", (X.shape[1],), n_outputs)


class NetClassifier(ClassifierMixin, _TableNet):
    """Layers on rows of numbers, as a classifier (one logit per class)."""

    fit = MLPClassifier.fit
    predict_proba = MLPClassifier.predict_proba
    predict = MLPClassifier.predict


class NetRegressor(RegressorMixin, _TableNet):
    """Layers on rows of numbers, as a regressor (the target standardised for training)."""

    fit = MLPRegressor.fit
    predict = MLPRegressor.predict


class NetImageClassifier(_Layered, CNNClassifier):
    """Layers on images ``(channels, height, width)``, trained as the CNN is (its defaults:
    AdamW lr 3e-3 with a one-cycle schedule over 10 epochs, batches of 128, shifts and flips)."""

    _parameter_constraints = {
        **TRAINING_CONSTRAINTS,
        **_LAYERS,
        "image_shape": [tuple, list, None],
        **AUGMENT_CONSTRAINTS,
    }
    __init__ = estimator_init({"layers": None, "image_shape": None, **AUGMENT}, **CNN_TRAINING)

    def _network(self, X, n_outputs: int) -> torch.nn.Module:
        _, height, width, channels = X.shape  # the CNN's images (N, H, W, C)
        return self._layered("image", (channels, height, width), n_outputs)


class _SequenceNet(_Layered, _SequenceBase):
    _parameter_constraints = {
        **TRAINING_CONSTRAINTS,
        **_LAYERS,
        **{k: _INPUTS[k] for k in ("vocab_size", "max_length", "channels")},
    }
    __init__ = estimator_init(
        {"layers": None, **{k: INPUTS[k] for k in ("vocab_size", "max_length", "channels")}},
        **SEQUENCE_TRAINING,
    )

    def _network(self, X, n_outputs: int) -> torch.nn.Module:
        tokens = self.input_kind_ == "text"
        return self._layered("tokens" if tokens else "series", (self._n_inputs(),), n_outputs)


class NetSequenceClassifier(_SequenceClassifier, _SequenceNet):
    """Layers on series or text (token ids, then an embedding), as a classifier."""


class NetSequenceRegressor(_SequenceRegressor, _SequenceNet):
    """Layers on series or text, as a regressor (the target standardised for training)."""
