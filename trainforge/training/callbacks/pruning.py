"""Hand each epoch's monitored value to a search, and stop when the search says so."""

from __future__ import annotations

from typing import Callable

from trainforge.training.callbacks.base import Callback


class Pruning(Callback):
    """Reports ``logs[monitor]`` after every epoch; stops the loop when ``report`` returns True.

    The loop knows nothing about the search library: ``report(epoch, value)`` is a plain
    function (trainforge.search wraps an Optuna trial in one), so any tuner can prune through
    the same callback.

    Args:
        report: called with the epoch number and the monitored value; returns whether to stop.
        monitor: the logs entry to report (``val_loss`` when there is a validation split).
    """

    name = "pruning"

    def __init__(self, report: Callable[[int, float], bool], monitor: str = "val_loss"):
        self.report = report
        self.monitor = monitor
        self.pruned = False

    def on_epoch_end(self, loop, logs: dict) -> None:
        key = self.monitor if self.monitor in logs else "loss"
        if self.report(int(logs["epoch"]), float(logs[key])):
            self.pruned, loop.stop = True, True

    def state_dict(self) -> tuple[dict, dict]:
        return {"pruned": self.pruned}, {}

    def load_state_dict(self, state: dict, tensors: dict) -> None:
        self.pruned = bool(state.get("pruned", False))
