"""Step a learning-rate schedule when its interval says (per step, per epoch, on plateau)."""

from __future__ import annotations

from trainforge.training.callbacks.base import Callback
from trainforge.training.schedules import Schedule, load_schedule_state, schedule_state


class LRSchedule(Callback):
    """Drives a ``Schedule`` from trainforge.training.schedules.

    Args:
        schedule: the scheduler and when to step it.
        monitor: the logs entry a plateau schedule watches.
    """

    name = "lr_schedule"

    def __init__(self, schedule: Schedule, monitor: str = "val_loss"):
        self.schedule = schedule
        self.monitor = monitor

    def on_batch_end(self, loop) -> None:
        if self.schedule.interval == "step":
            self.schedule.scheduler.step()

    def on_epoch_end(self, loop, logs: dict) -> None:
        if self.schedule.interval == "epoch":
            self.schedule.scheduler.step()
        elif self.schedule.interval == "plateau":
            self.schedule.scheduler.step(logs.get(self.monitor, logs["loss"]))
        logs["lr"] = loop.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> tuple[dict, dict]:
        return schedule_state(self.schedule), {}

    def load_state_dict(self, state: dict, tensors: dict) -> None:
        load_schedule_state(self.schedule, state)
