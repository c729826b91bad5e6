"""Save a grid of a generator's samples after every epoch, from the same noise each time."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from trainforge.training.callbacks.base import Callback


class SampleGrid(Callback):
    """Writes ``folder/epoch-0001.png``, ... : ``count`` samples from fixed noise, in a grid.

    The noise comes from its own fixed seed, so grids of different epochs show how the same
    latent points change, and drawing it uses no state of the training run.

    Args:
        folder: where the PNG files go.
        latent_dim: size of the generator's noise input.
        count: samples per grid (a square number fills the grid).
    """

    name = "sample_grid"

    def __init__(self, folder: Path, latent_dim: int, count: int = 64):
        self.folder = Path(folder)
        self.noise = torch.randn(count, latent_dim, generator=torch.Generator().manual_seed(1))

    def on_epoch_end(self, loop, logs: dict) -> None:
        generator = loop.model.generator
        generator.eval()
        with torch.no_grad():
            images = generator(self.noise.to(next(generator.parameters()).device)).cpu()
        self.folder.mkdir(parents=True, exist_ok=True)
        save_grid(images, self.folder / f"epoch-{logs['epoch']:04d}.png")


def save_grid(images: torch.Tensor, path: Path) -> None:
    """Tile ``(N, C, H, W)`` images in [-1, 1] into one PNG (written atomically)."""
    from PIL import Image

    n, channels, height, width = images.shape
    columns = math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.zeros((rows * (height + 2), columns * (width + 2), channels), dtype=np.uint8)
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    for index, picture in enumerate(pixels):
        top, left = (index // columns) * (height + 2), (index % columns) * (width + 2)
        grid[top + 1 : top + 1 + height, left + 1 : left + 1 + width] = picture
    picture = Image.fromarray(grid[..., 0] if channels == 1 else grid)
    temporary = path.with_name(f".{path.name}.tmp")
    picture.save(temporary, format="PNG")
    os.replace(temporary, path)
