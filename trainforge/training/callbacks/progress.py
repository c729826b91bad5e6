"""A progress bar with epoch, loss, validation metric and ETA; silent when not a terminal."""

from __future__ import annotations

import sys

from trainforge.training.callbacks.base import Callback


class Progress(Callback):
    """Shows training progress on a terminal (rich); prints nothing otherwise.

    Args:
        metric: the validation entry to show beside the loss.
        enabled: None shows the bar only when stderr is a terminal.
    """

    name = "progress"

    def __init__(self, metric: str = "val_loss", enabled: bool | None = None):
        self.metric = metric
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bar = None
        self._task = None

    def on_train_begin(self, loop) -> None:
        if not self.enabled:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[scores]}"),
            TimeRemainingColumn(),
            transient=True,
        )
        self._task = self._bar.add_task(
            "epoch", total=loop.max_epochs, completed=loop.epoch, scores=""
        )
        self._bar.start()

    def on_epoch_end(self, loop, logs: dict) -> None:
        if self._bar is None:
            return
        scores = f"loss {logs['loss']:.4f}"
        if self.metric in logs:
            scores += f"  {self.metric} {logs[self.metric]:.4f}"
        self._bar.update(
            self._task,
            completed=loop.epoch,
            scores=scores,
            description=f"epoch {loop.epoch}/{loop.max_epochs}",
        )

    def on_train_end(self, loop) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
