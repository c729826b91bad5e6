"""A convolutional network for images: a stack of conv blocks, global pooling and a linear head.

Each block is ``convs_per_block`` convolutions (each conv -> batch norm -> ReLU), then pooling
and dropout. With ``residual`` a block adds its input (through a 1x1 convolution where the
channels change) before its last ReLU, which makes a small residual network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


@dataclass(frozen=True)
class CNNConfig:
    """The network's shape.

    Attributes:
        in_channels / n_outputs: image channels and output units (classes).
        channels: output channels of each block, e.g. ``(32, 64, 128)``.
        kernel_size / stride: of every convolution (padding keeps the size at stride 1).
        pooling: ``max``, ``avg`` or None: halves height and width after each block.
        batch_norm: batch norm after each convolution.
        dropout: after each block (spatial dropout); the head uses twice this, at most 0.5.
        convs_per_block: convolutions in each block.
        residual: add a shortcut around each block.
        pooled_size: the head averages the last feature map down to this many rows and
            columns (1: global average pooling; 7 on 28x28 inputs after 2 pooled blocks: the
            whole map, as a flattening head).
    """

    in_channels: int
    n_outputs: int
    channels: tuple[int, ...] = (32, 64, 128)
    kernel_size: int = 3
    stride: int = 1
    pooling: str | None = "max"
    batch_norm: bool = True
    dropout: float = 0.1
    convs_per_block: int = 1
    residual: bool = False
    pooled_size: int = 1


class ConvBlock(nn.Module):
    """``convs_per_block`` x (conv -> norm -> ReLU), optional shortcut, then pool and dropout."""

    def __init__(self, n_in: int, n_out: int, config: CNNConfig):
        super().__init__()
        layers: list[nn.Module] = []
        for index in range(config.convs_per_block):
            stride = config.stride if index == 0 else 1
            layers.append(
                nn.Conv2d(
                    n_in if index == 0 else n_out,
                    n_out,
                    config.kernel_size,
                    stride=stride,
                    padding=config.kernel_size // 2,
                    bias=not config.batch_norm,
                )
            )
            layers.append(nn.BatchNorm2d(n_out) if config.batch_norm else nn.Identity())
            layers.append(nn.ReLU())
        if config.residual:
            layers.pop()  # the last ReLU comes after the shortcut is added
        self.convs = nn.Sequential(*layers)
        self.shortcut = None
        if config.residual:
            same = n_in == n_out and config.stride == 1
            self.shortcut = nn.Identity() if same else nn.Conv2d(n_in, n_out, 1, config.stride)
        self.pool = HalvingPool(config.pooling) if config.pooling else nn.Identity()
        self.dropout = nn.Dropout2d(config.dropout) if config.dropout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convs(x)
        if self.shortcut is not None:
            out = torch.relu(out + self.shortcut(x))
        return self.dropout(self.pool(out))


class HalvingPool(nn.Module):
    """2x2 max or average pooling, which halves height and width; a map already down to one
    row or column is passed on as it is, so small images go through every block. No
    parameters: saved models are unchanged."""

    def __init__(self, kind: str):
        super().__init__()
        self.pool = POOLS[kind](2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if min(x.shape[-2:]) < 2 else self.pool(x)


class AveragePool(nn.Module):
    """Adaptive average pooling to ``size`` x ``size`` cells, written as two small matrix
    products: each output cell is the mean of the same input window ``nn.AdaptiveAvgPool2d``
    uses (start ``floor(i * n / size)``, end ``ceil((i + 1) * n / size)``). CUDA has no
    deterministic backward for adaptive pooling with more than one output cell, so in
    trainforge's default deterministic mode it failed at the first backward pass; matrix
    products have one. It has no parameters, so saved models are unchanged."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self._windows: dict[tuple, torch.Tensor] = {}  # made once per input size and device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.size == 1:  # a plain mean: deterministic everywhere
            return x.mean(dim=(2, 3), keepdim=True)
        rows = self._window(x.shape[2], x)
        cols = self._window(x.shape[3], x)
        return torch.einsum("ih,nchw,jw->ncij", rows, x, cols)

    def _window(self, n: int, like: torch.Tensor) -> torch.Tensor:
        key = (n, like.dtype, like.device)
        if key not in self._windows:
            self._windows[key] = _windows(n, self.size, like)
        return self._windows[key]


def _windows(n: int, size: int, like: torch.Tensor) -> torch.Tensor:
    """``(size, n)``: row i averages the inputs adaptive pooling gives output i."""
    weights = torch.zeros(size, n, dtype=like.dtype, device=like.device)
    for i in range(size):
        start, end = (i * n) // size, -(-((i + 1) * n) // size)
        weights[i, start:end] = 1.0 / (end - start)
    return weights


class CNN(nn.Module):
    """Conv blocks, average pooling, dropout and a linear head; input ``(N, C, H, W)``."""

    def __init__(self, config: CNNConfig):
        super().__init__()
        self.config = config
        widths = (config.in_channels, *config.channels)
        self.blocks = nn.Sequential(*[ConvBlock(a, b, config) for a, b in zip(widths, widths[1:])])
        self.head = nn.Sequential(
            AveragePool(config.pooled_size),
            nn.Flatten(),
            nn.Dropout(min(2 * config.dropout, 0.5)),
            nn.Linear(widths[-1] * config.pooled_size**2, config.n_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Channels-last runs the convolutions of small batches about a third faster on a CPU.
        return self.head(self.blocks(x.contiguous(memory_format=torch.channels_last)))
