"""Save the loop's full state every N epochs and/or steps, keep the last k, and the best."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from trainforge.atomic import fsync_dir
from trainforge.errors import TrainingError
from trainforge.training.callbacks.base import Callback, Monitor
from trainforge.training.checkpoint import prune, save_checkpoint
from trainforge.training.state import capture


class Checkpointing(Callback):
    """Writes resumable checkpoints under ``folder`` (see trainforge.training.checkpoint).

    Put it last in the callback list, so the state it saves includes what the other callbacks
    decided at the same moment.

    Args:
        folder: where ``step-XXXXXXXX`` checkpoints go; the best weights go to ``folder/best``.
        identity: what the checkpoint belongs to (model, spec, data shape); resuming with a
            different identity is refused.
        every_epochs: save after every this many epochs (0: never by epoch).
        every_steps: save after every this many optimizer steps (0: never by step).
        keep_last: how many resumable checkpoints to keep.
        monitor: the metric whose best epoch is saved to ``best`` (None: no best copy).
    """

    name = "checkpointing"

    def __init__(
        self,
        folder,
        identity: dict,
        every_epochs=1,
        every_steps=0,
        keep_last=2,
        monitor: str | None = "val_loss",
    ):
        self.folder = Path(folder)
        self.identity = identity
        self.every_epochs, self.every_steps = every_epochs, every_steps
        self.keep_last = max(keep_last, 2)  # one to fall back to if the newest is corrupt
        self.best = Monitor(monitor) if monitor else None

    def on_batch_end(self, loop) -> None:
        if self.every_steps and loop.step % self.every_steps == 0:
            self.save(loop)

    def on_epoch_end(self, loop, logs: dict) -> None:
        if self.best is not None and self.best.improved(logs):
            self._save_best(loop)
        if self.every_epochs and loop.epoch % self.every_epochs == 0:
            self.save(loop)

    def save(self, loop) -> None:
        """Checkpoint now, unless the loss already went non-finite (keep the last good one)."""
        if loop.loss_sum is not None and not torch.isfinite(loop.loss_sum):
            raise TrainingError(
                f"the training loss became non-finite at step {loop.step}; stopped without "
                f"saving, and the last good checkpoint in {self.folder} is kept"
            )
        tensors, state = capture(loop, self.identity)
        save_checkpoint(self.folder, loop.step, tensors, state)
        prune(self.folder, self.keep_last)

    def _save_best(self, loop) -> None:
        """The best epoch's weights, atomically, as ``best.safetensors``."""
        from safetensors.torch import save_file

        self.folder.mkdir(parents=True, exist_ok=True)
        best = self.folder / "best.safetensors"
        temporary = best.with_name(".best.safetensors.tmp")
        weights = loop.model.state_dict().items()
        save_file({k: v.detach().cpu().contiguous() for k, v in weights}, temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, best)
        fsync_dir(self.folder)

    def state_dict(self) -> tuple[dict, dict]:
        return {"best": self.best.best if self.best else None}, {}

    def load_state_dict(self, state: dict, tensors: dict) -> None:
        if self.best is not None:
            self.best.best = state.get("best")
