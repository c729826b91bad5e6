"""Pruning and deadline hooks for fits a search can stop: ``hooks(report, at)`` returns the
estimator's extra ``callbacks`` (see ``trainforge.search.space.Space.hooks``)."""

from __future__ import annotations

import time

# A boosting fit reports its validation loss to the search every this many rounds (each report
# is a write to the study's SQLite file); the deadline is checked after every round.
REPORT_ROUNDS = 10
BOOSTING_NOTE = "pruned by its validation loss every 10 rounds; stopped at the deadline"
LOOP_NOTE = "pruned by its per-epoch validation loss; stopped at the deadline"


def loop_hooks(report, at: float, stopped=None) -> list:
    """Pruning and deadline callbacks for estimators built on trainforge's training loop."""
    from trainforge.training.callbacks.deadline import Deadline
    from trainforge.training.callbacks.pruning import Pruning

    return ([Pruning(report)] if report is not None else []) + [Deadline(at)]


class RoundHook:
    """``hook(round, val_loss) -> stop?`` for the boosting estimators' ``callbacks``: prunes
    through ``report`` every REPORT_ROUNDS rounds, stops at the monotonic time ``at``, and
    stops when ``stopped()`` says the trial was pruned (another fold, trained at the same
    time, reported it)."""

    def __init__(self, report, at: float, stopped=None):
        self.report, self.at, self.stopped = report, at, stopped

    def __call__(self, round_: int, val_loss: float) -> bool:
        if time.monotonic() >= self.at or (self.stopped is not None and self.stopped()):
            return True
        return (
            self.report is not None
            and round_ % REPORT_ROUNDS == 0
            and bool(self.report(round_, val_loss))
        )


def boosting_hooks(report, at: float, stopped=None) -> list:
    return [RoundHook(report, at, stopped)]
