"""Forward each epoch's metrics somewhere else (experiment tracking, a live display)."""

from __future__ import annotations

from typing import Callable

from trainforge.training.callbacks.base import Callback


class MetricsHook(Callback):
    """Calls ``forward(step, logs)`` at the end of every epoch.

    A loop resumed from a checkpoint first replays the epochs it already has, so what listens
    (a watchdog judging the whole curve, a tracker, a display) sees the run's full history, not
    only the part after the resume.

    The loop never imports tracking; a tracker passes its logging function here.
    """

    name = "metrics_hook"

    def __init__(self, forward: Callable[[int, dict], None]):
        self.forward = forward

    def on_train_begin(self, loop) -> None:
        for entry in loop.history:  # empty unless the loop was restored from a checkpoint
            self.forward(0, dict(entry))

    def on_epoch_end(self, loop, logs: dict) -> None:
        self.forward(loop.step, dict(logs))
