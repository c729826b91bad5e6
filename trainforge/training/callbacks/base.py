"""The callback protocol, and the one helper every callback that watches a metric shares."""

from __future__ import annotations

import math
from dataclasses import dataclass


class Callback:
    """Hooks the loop calls; a callback overrides only those it needs.

    A callback whose behaviour depends on the past (counters, best values, weights) returns it
    from ``state_dict`` as ``(json_state, tensors)`` so that a checkpoint can save it and a
    resumed run continues exactly where the killed one stood. ``on_train_begin`` runs again
    on resume, so it must not reset such state.
    """

    name = "callback"

    def on_train_begin(self, loop) -> None:
        pass

    def on_epoch_begin(self, loop) -> None:
        pass

    def after_backward(self, loop) -> None:
        pass

    def on_batch_end(self, loop) -> None:
        pass

    def on_epoch_end(self, loop, logs: dict) -> None:
        pass

    def on_train_end(self, loop) -> None:
        pass

    def state_dict(self) -> tuple[dict, dict]:
        return {}, {}

    def load_state_dict(self, state: dict, tensors: dict) -> None:
        pass


_HIGHER_IS_BETTER = ("acc", "auc", "r2", "f1")


@dataclass
class Monitor:
    """Decides whether a logged value improved on the best so far.

    Args:
        key: the logs entry to watch, e.g. ``val_loss`` or ``val_accuracy``.
        mode: ``min``, ``max``, or ``auto`` (``max`` for accuracy/AUC/R2/F1 names).
        min_delta: how much better a value must be to count as an improvement.
    """

    key: str = "val_loss"
    mode: str = "auto"
    min_delta: float = 0.0
    best: float | None = None

    def __post_init__(self):
        if self.mode == "auto":
            self.mode = "max" if any(k in self.key for k in _HIGHER_IS_BETTER) else "min"
        if self.mode not in ("min", "max"):
            raise ValueError(f"monitor mode must be 'min', 'max' or 'auto', got {self.mode!r}")

    def improved(self, logs: dict) -> bool:
        """Whether ``logs[key]`` beats the best by ``min_delta``; if so it becomes the best."""
        if self.key not in logs:
            raise KeyError(f"monitored metric {self.key!r} is not logged (logs: {sorted(logs)})")
        value = float(logs[self.key])
        if math.isnan(value):
            return False
        if self.best is None:
            better = True
        elif self.mode == "min":
            better = value < self.best - self.min_delta
        else:
            better = value > self.best + self.min_delta
        if better:
            self.best = value
        return better
