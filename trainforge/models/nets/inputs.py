"""How sequence networks read a batch: token ids, or series with their mask as a last channel.

Both arrive as one tensor because the training loop only slices rows: token ids are int64 with
padding id 0; series are float32 ``(batch, steps, channels + 1)`` whose last channel is 1 on
real steps and 0 on padding (see trainforge.data.sequences.network_input).
"""

from __future__ import annotations

import torch


def values_and_mask(x: torch.Tensor, tokens: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values, mask)``; ``mask`` is True on real steps. The first step always counts, so an
    empty text still has one step to read (its padding embedding).

    Steps past the batch's longest row are cut off: padding never changes an output, and a
    batch of short texts then costs what short texts cost, whatever ``max_length`` is.
    """
    if tokens:
        values, mask = x, x != 0
    else:
        values, mask = x[..., :-1], x[..., -1] > 0
    mask = mask.clone()
    mask[:, 0] = True
    longest = int(mask.sum(dim=1).max())  # real steps come first, padding after
    return values[:, :longest], mask[:, :longest]


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``h`` (batch, steps, dim) over the steps where ``mask`` is True."""
    weights = mask.unsqueeze(-1).to(h.dtype)
    return (h * weights).sum(dim=1) / weights.sum(dim=1)


def masked_max(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)


def patches(values: torch.Tensor, mask: torch.Tensor, size: int):
    """Series steps grouped ``size`` at a time: ``(batch, ceil(steps / size), size * channels)``.

    A patch is real when any of its steps is; the steps past a series' end inside its last
    patch are zeros, as padding is. Fewer, wider steps make long series (150 steps and more)
    far easier for attention and recurrence than one step at a time.
    """
    if size == 1:
        return values, mask
    batch, steps, channels = values.shape
    extra = -steps % size
    if extra:
        values = torch.cat([values, values.new_zeros(batch, extra, channels)], dim=1)
        mask = torch.cat([mask, mask.new_zeros(batch, extra)], dim=1)
    values = values.reshape(batch, -1, size * channels)
    return values, mask.reshape(batch, -1, size).any(dim=2)
