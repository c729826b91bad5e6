"""Loss functions by name, so a run spec can say ``loss: focal`` instead of naming a class.

Every loss is an ``nn.Module`` called as ``loss(predictions, targets)`` and returns the batch
mean. Class weights are registered as buffers, so ``loss.to(device)`` moves them with the model.

Shapes: classification losses take logits ``(N, K)`` and integer class indices ``(N,)``; binary
cross-entropy and the regression losses take predictions ``(N,)`` or ``(N, 1)`` against targets
``(N,)`` or ``(N, 1)``. A trailing singleton column is dropped before comparing, and any other
mismatch raises instead of broadcasting ``(N, 1)`` against ``(N,)`` into an ``(N, N)`` matrix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainforge.errors import SpecError, suggest

LOSSES = ("cross_entropy", "binary_cross_entropy", "mse", "mae", "huber", "focal")

_DEFAULTS = {"binary": "cross_entropy", "multiclass": "cross_entropy", "regression": "mse"}
_WEIGHTED = ("cross_entropy", "binary_cross_entropy", "focal")
_SMOOTHED = ("cross_entropy", "binary_cross_entropy")


def default_loss(task: str) -> str:
    """The loss a task uses when the spec names none.

    Args:
        task: ``binary``, ``multiclass`` or ``regression`` (a ``Task`` enum works too).

    Returns:
        ``cross_entropy`` for classification (binary models emit two logits), ``mse`` for
        regression.

    Raises:
        SpecError: the task is not one of those.
    """
    task = str(getattr(task, "value", task))
    if task not in _DEFAULTS:
        raise SpecError(f"unknown task {task!r}{suggest(task, _DEFAULTS)}")
    return _DEFAULTS[task]


def build_loss(
    name: str,
    *,
    class_weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    huber_delta: float = 1.0,
    focal_gamma: float = 2.0,
) -> nn.Module:
    """Build a loss module by name.

    Args:
        name: one of ``LOSSES``.
        class_weight: one weight per class, for ``cross_entropy`` and ``focal`` (its alpha).
            For ``binary_cross_entropy`` it has length 2 and becomes ``pos_weight = w1 / w0``:
            the same as weighting negatives by ``w0`` and positives by ``w1``, up to the overall
            factor ``w0``, which only rescales the loss.
        label_smoothing: in ``[0, 1)``; ``cross_entropy`` mixes targets with the uniform
            distribution as torch does, ``binary_cross_entropy`` moves 0/1 targets to
            ``eps / 2`` and ``1 - eps / 2``.
        huber_delta: where ``huber`` turns from quadratic to linear; must be positive.
        focal_gamma: the focusing exponent of ``focal``; 0 gives cross-entropy.

    Returns:
        A module computing the mean loss over the batch.

    Raises:
        SpecError: unknown name, a setting out of range, or a setting the loss cannot use.
    """
    if name not in LOSSES:
        known = ", ".join(LOSSES)
        raise SpecError(f"unknown loss {name!r}{suggest(name, LOSSES)} (known: {known})")
    _check_settings(name, class_weight, label_smoothing, huber_delta, focal_gamma)
    weight = None if class_weight is None else _as_weight(class_weight)
    if name == "cross_entropy":
        return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
    if name == "focal":
        return FocalLoss(gamma=focal_gamma, alpha=weight)
    if name == "binary_cross_entropy":
        return BinaryCrossEntropy(pos_weight=_pos_weight(weight), label_smoothing=label_smoothing)
    regression = {"mse": nn.MSELoss, "mae": nn.L1Loss}
    inner = nn.HuberLoss(delta=huber_delta) if name == "huber" else regression[name]()
    return RegressionLoss(inner)


class RegressionLoss(nn.Module):
    """Apply an elementwise loss after lining predictions up with targets of the same length."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        predictions, targets = align(predictions, targets)
        return self.inner(predictions, targets)


class BinaryCrossEntropy(nn.Module):
    """Binary cross-entropy on logits, with an optional positive-class weight and smoothing."""

    def __init__(self, pos_weight: torch.Tensor | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits, targets = align(logits, targets)
        if self.label_smoothing:
            targets = targets * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=self.pos_weight)


class FocalLoss(nn.Module):
    """Multi-class focal loss (Lin et al. 2017): cross-entropy scaled by ``(1 - p_t) ** gamma``.

    Well-classified examples (``p_t`` near 1) contribute little, so training focuses on the
    hard ones. The loss is the plain mean over the batch, also when ``alpha`` is set (unlike
    weighted cross-entropy, which divides by the sum of the weights).
    """

    def __init__(self, gamma: float = 2.0, alpha: torch.Tensor | None = None):
        super().__init__()
        self.gamma = gamma
        self.register_buffer("alpha", alpha)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = targets.reshape(-1).long()
        log_p = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
        # 1 - exp(log_p) via expm1 keeps precision when p_t is close to 1.
        hardness = (-torch.expm1(log_p)).clamp(min=0.0)
        loss = -(hardness**self.gamma) * log_p
        if self.alpha is not None:
            loss = self.alpha.to(loss.dtype)[targets] * loss
        return loss.mean()


def align(predictions: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop trailing singleton columns and insist on equal shapes; cast targets to the dtype.

    Raises:
        ValueError: the shapes still differ, which would otherwise broadcast silently.
    """
    predictions, targets = _squeeze_column(predictions), _squeeze_column(targets)
    if predictions.shape != targets.shape:
        raise ValueError(
            f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} differ "
            "in shape; give one prediction per target"
        )
    return predictions, targets.to(predictions.dtype)


def _squeeze_column(values: torch.Tensor) -> torch.Tensor:
    return values.squeeze(-1) if values.ndim == 2 and values.shape[-1] == 1 else values


def _check_settings(name, class_weight, label_smoothing, huber_delta, focal_gamma) -> None:
    if class_weight is not None and name not in _WEIGHTED:
        raise SpecError(f"loss {name!r} takes no class weights; use {' or '.join(_WEIGHTED)}")
    if label_smoothing and name not in _SMOOTHED:
        raise SpecError(f"loss {name!r} takes no label smoothing; use {' or '.join(_SMOOTHED)}")
    if not 0.0 <= label_smoothing < 1.0:
        raise SpecError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if not huber_delta > 0:
        raise SpecError(f"huber_delta must be positive, got {huber_delta}")
    if not focal_gamma >= 0:
        raise SpecError(f"focal_gamma must be zero or more, got {focal_gamma}")


def _as_weight(class_weight) -> torch.Tensor:
    weight = torch.as_tensor(class_weight, dtype=torch.get_default_dtype()).detach().clone()
    if weight.ndim != 1 or len(weight) == 0:
        shape = tuple(weight.shape)
        raise SpecError(f"class_weight must be one number per class, got shape {shape}")
    if not bool(torch.isfinite(weight).all()) or bool((weight < 0).any()):
        raise SpecError("class_weight must be finite and not negative")
    return weight


def _pos_weight(weight: torch.Tensor | None) -> torch.Tensor | None:
    if weight is None:
        return None
    if len(weight) != 2 or not weight[0] > 0:
        raise SpecError(
            "binary_cross_entropy needs class_weight as [negative, positive] with a positive "
            f"negative weight, got {weight.tolist()}"
        )
    return weight[1:] / weight[0]
