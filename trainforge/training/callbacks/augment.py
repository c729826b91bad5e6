"""Image augmentation as batched tensor operations, with randomness a checkpoint can save."""

from __future__ import annotations

import torch

from trainforge.training.callbacks.base import Callback


class Augment(Callback):
    """Random crops of a zero-padded image (small shifts) and horizontal flips, per batch.

    The loop calls it on each training batch (``Loop.augment``); validation and prediction never
    see it. Its draws come from its own seeded generator, whose state it saves as a callback so
    that a resumed run draws the same crops and flips as one never interrupted.

    Args:
        seed: seeds the generator.
        padding: pixels of zero padding on each side before a random crop back to the original
            size, i.e. shifts of up to ``padding`` pixels (0: none). Inputs are normalised
            first, so zero is the mean pixel.
        flip: flip half the images left to right.
    """

    name = "augment"

    def __init__(self, seed: int, padding: int = 2, flip: bool = True):
        self.generator = torch.Generator().manual_seed(seed)
        self.padding = padding
        self.flip = flip

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        n, _, height, width = batch.shape
        if self.padding:
            batch = self._crop(batch, n, height, width)
        if self.flip:
            flipped = torch.rand(n, generator=self.generator) < 0.5
            mask = _to(flipped, batch.device)[:, None, None, None]
            batch = torch.where(mask, batch.flip(3), batch)
        return batch

    def _crop(self, batch: torch.Tensor, n: int, height: int, width: int) -> torch.Tensor:
        pad = self.padding
        padded = torch.nn.functional.pad(batch, (pad, pad, pad, pad))
        offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=self.generator)
        offsets = _to(offsets, batch.device)
        rows = offsets[0][:, None] + torch.arange(height, device=batch.device)
        cols = offsets[1][:, None] + torch.arange(width, device=batch.device)
        index = torch.arange(n, device=batch.device)[:, None, None]
        cropped = padded.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]]
        return cropped.permute(0, 3, 1, 2).contiguous()

    def state_dict(self) -> tuple[dict, dict]:
        return {}, {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict, tensors: dict) -> None:
        if "generator" in tensors:
            self.generator.set_state(tensors["generator"])


def _to(draws: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Draws made on the CPU (the generator a checkpoint saves) on the batch's device; a GPU
    gets them by an asynchronous copy from pinned memory, so the host does not wait for the
    GPU at every batch."""
    if device.type != "cuda":
        return draws.to(device)
    return draws.pin_memory().to(device, non_blocking=True)
