"""Stop when the monitored metric stops improving, and restore the best weights."""

from __future__ import annotations

from trainforge.training.callbacks.base import Callback, Monitor


class EarlyStopping(Callback):
    """Stops after ``patience`` epochs without improvement of ``monitor``.

    Args:
        monitor: the logs entry to watch.
        mode: ``min``, ``max`` or ``auto`` (see ``Monitor``).
        patience: epochs without improvement before stopping.
        min_delta: the smallest change that counts as an improvement.
        restore_best: load the best epoch's weights when training ends.
    """

    name = "early_stopping"

    def __init__(
        self, monitor="val_loss", mode="auto", patience=10, min_delta=0.0, restore_best=True
    ):
        self.monitor = Monitor(monitor, mode, min_delta)
        self.patience = patience
        self.restore_best = restore_best
        self.wait = 0
        self.best_epoch = 0
        self.stopped_epoch = 0
        self.best_weights: dict | None = None

    def on_epoch_end(self, loop, logs: dict) -> None:
        if self.monitor.improved(logs):
            self.wait, self.best_epoch = 0, logs["epoch"]
            if self.restore_best:
                self.best_weights = {
                    k: v.detach().clone() for k, v in loop.model.state_dict().items()
                }
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch, loop.stop = logs["epoch"], True

    def on_train_end(self, loop) -> None:
        if self.restore_best and self.best_weights is not None:
            loop.model.load_state_dict(self.best_weights)

    def state_dict(self) -> tuple[dict, dict]:
        state = {
            "best": self.monitor.best,
            "wait": self.wait,
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
        }
        return state, dict(self.best_weights or {})

    def load_state_dict(self, state: dict, tensors: dict) -> None:
        self.monitor.best = state["best"]
        self.wait, self.best_epoch = state["wait"], state["best_epoch"]
        self.stopped_epoch = state["stopped_epoch"]
        self.best_weights = dict(tensors) or None
