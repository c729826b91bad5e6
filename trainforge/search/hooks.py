"""Deadline (and, for the training loop, pruning) hooks for fits a search can stop:
``hooks(report, at, stopped)`` returns the estimator's extra ``callbacks`` (see
``trainforge.search.space.Space.hooks``)."""

from __future__ import annotations

import time

BOOSTING_NOTE = "ends by early stopping or at the deadline; not pruned"
LOOP_NOTE = "pruned by its per-epoch validation loss; stopped at the deadline"


def loop_hooks(report, at: float, stopped=None) -> list:
    """Pruning and deadline callbacks for estimators built on trainforge's training loop."""
    from trainforge.training.callbacks.deadline import Deadline
    from trainforge.training.callbacks.pruning import Pruning

    return ([Pruning(report)] if report is not None else []) + [Deadline(at)]


class RoundHook:
    """``hook(round, val_loss) -> stop?`` for the boosting estimators' ``callbacks``: stops at
    the monotonic time ``at``, and when ``stopped()`` (optional) says the trial ended
    elsewhere."""

    def __init__(self, at: float, stopped=None):
        self.at, self.stopped = at, stopped

    def __call__(self, round_: int, val_loss: float) -> bool:
        return time.monotonic() >= self.at or (self.stopped is not None and self.stopped())


def boosting_hooks(report, at: float, stopped=None) -> list:
    """A boosting fit's deadline. Its spaces do not prune (``Space.prunes``), so ``report`` is
    None from a search and unused in any case: early stopping on the fit's own validation
    split ends a fit that stops improving (docs/search.md has why and the numbers)."""
    return [RoundHook(at, stopped)]
