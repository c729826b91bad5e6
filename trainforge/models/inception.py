"""InceptionTime estimators for series (trainforge.models.nets.inception) on trainforge's
training loop: the MLP's settings, early stopping, checkpoints, bit-identical resume, devices
and JSON + safetensors saving, as for the RNN and the Transformer (trainforge.models.sequence).

The ensemble's members train side by side on the same batches, each on its own loss
(``MemberLoss``: the mean of the members' losses, so with Adam each member takes the steps it
would take alone); early stopping watches the ensemble's validation loss, and predictions
average the members' probabilities (or outputs, for regression).
"""

from __future__ import annotations

from numbers import Integral

import torch
from sklearn.utils._param_validation import Interval

from trainforge.data import text
from trainforge.errors import DataError
from trainforge.models.nets.inception import InceptionConfig, InceptionTime
from trainforge.models.sequence import (
    _INPUTS,
    INPUTS,
    _SequenceBase,
    _SequenceClassifier,
    _SequenceRegressor,
)
from trainforge.models.torch_core import TRAINING_CONSTRAINTS, estimator_init


class MemberLoss(torch.nn.Module):
    """``inner`` on each member's output ``(batch, members, outputs)``, averaged; outputs of
    the whole ensemble ``(batch, outputs)`` (validation) go to ``inner`` as they are."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if predictions.dim() < 3:
            return self.inner(predictions, targets)
        members = predictions.shape[1]
        return sum(self.inner(predictions[:, m], targets) for m in range(members)) / members


class _InceptionBase(_SequenceBase):
    _parameter_constraints = {
        **TRAINING_CONSTRAINTS,
        **_INPUTS,
        "members": [Interval(Integral, 1, 20, closed="both")],
        "depth": [Interval(Integral, 1, 30, closed="both")],
        "filters": [Interval(Integral, 1, 512, closed="both")],
        "kernel": [Interval(Integral, 4, 512, closed="both")],
    }

    __init__ = estimator_init(
        {"members": 5, "depth": 6, "filters": 32, "kernel": 40, "dropout": 0.0, **INPUTS},
        optimizer="adam",
        weight_decay=0.0,
        batch_size=64,
        max_epochs=300,
        patience=50,
    )

    def _learn_inputs(self, X, y, y_numeric: bool = False):
        if text.is_text(X):
            raise DataError("inception_time reads series, not text; use rnn or transformer")
        return super()._learn_inputs(X, y, y_numeric)

    def _loss(self, task: str) -> torch.nn.Module:
        return MemberLoss(super()._loss(task))

    def _network(self, X, n_outputs: int) -> torch.nn.Module:
        config = InceptionConfig(
            self._n_inputs(),
            n_outputs,
            isinstance(self, _SequenceClassifier),
            self.members,
            self.depth,
            self.filters,
            self.kernel,
        )
        return InceptionTime(config)

    @classmethod
    def _rebuild(cls, config: dict) -> torch.nn.Module:
        return InceptionTime(InceptionConfig(**config))


class InceptionTimeClassifier(_SequenceClassifier, _InceptionBase):
    """InceptionTime for series: 5 networks of 6 Inception modules (32 filters per branch,
    kernels 39/19/9, residual every 3), Adam lr 1e-3, batches of 64, lr halved on a plateau,
    early stopping after 50 epochs on a 10% validation split (the paper trains 1,500 epochs
    without one; a CPU cannot)."""


class InceptionTimeRegressor(_SequenceRegressor, _InceptionBase):
    """InceptionTime for a series regression target (standardised for training)."""
