"""A residual block for networks written as layers (trainforge.models.layers)."""

from __future__ import annotations

import torch


class Residual(torch.nn.Module):
    """``x + inner(x)``."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.inner(x)
