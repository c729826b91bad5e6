"""Generated images on disk: a PNG grid to look at, an npz array to use."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from trainforge.atomic import write_bytes


def save_image_grid(images: np.ndarray, path: Path) -> None:
    """Tile images ``(N, H, W, C)`` into one PNG, scaled by their own pixel range."""
    import torch

    from trainforge.training.callbacks.sample_grid import save_grid

    low, high = float(images.min()), float(images.max())
    scaled = 2 * (images.astype(np.float64) - low) / ((high - low) or 1.0) - 1
    save_grid(torch.as_tensor(scaled).permute(0, 3, 1, 2), Path(path))


def write_images(model, n: int, seed: int, output: str | Path) -> list[Path]:
    """``n`` images from ``model`` (a GenerativeModel of images) as ``output``: an ``.npz``
    (array ``images``, ``(n, H, W[, C])``), or a ``.png`` grid with that npz beside it."""
    output = Path(output)
    images = model.images(n, seed)
    archive = output.with_suffix(".npz")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images)
    write_bytes(archive, buffer.getvalue())
    if output.suffix.lower() != ".png":
        return [archive]
    save_image_grid(images.reshape(n, *model.image_shape), output)
    return [output, archive]
