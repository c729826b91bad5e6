"""Stop training when a time limit is reached; the model stays usable."""

from __future__ import annotations

import time

from trainforge.training.callbacks.base import Callback


class Deadline(Callback):
    """Sets ``loop.stop`` after the batch during which ``time.monotonic()`` passes ``at``.

    Early stopping (listed before it) still restores the best epoch's weights at the end, and
    checkpointing (listed after it) saves the stopped state, so a fit cut short by a time budget
    ends with a usable model. A deadline is about this process's clock, so it keeps no state in
    checkpoints: a resumed fit gets a fresh one.

    Args:
        at: the ``time.monotonic()`` value at which to stop.
    """

    name = "deadline"

    def __init__(self, at: float):
        self.at = at
        self.reached = False

    def on_batch_end(self, loop) -> None:
        if time.monotonic() >= self.at:
            self.reached, loop.stop = True, True
