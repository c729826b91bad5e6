"""Forward each epoch's metrics somewhere else (experiment tracking, a live display)."""

from __future__ import annotations

from typing import Callable

from trainforge.training.callbacks.base import Callback


class MetricsHook(Callback):
    """Calls ``forward(step, logs)`` at the end of every epoch.

    The loop never imports tracking; a tracker passes its logging function here.
    """

    name = "metrics_hook"

    def __init__(self, forward: Callable[[int, dict], None]):
        self.forward = forward

    def on_epoch_end(self, loop, logs: dict) -> None:
        self.forward(loop.step, dict(logs))
