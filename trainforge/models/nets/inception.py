"""InceptionTime (Ismail Fawaz et al. 2020): an ensemble of Inception networks for series.

Each member: ``depth`` Inception modules (a 1x1 bottleneck, three convolutions of
``kernel``, ``kernel / 2`` and ``kernel / 4`` steps, and a max-pooled 1x1 branch, concatenated,
batch-normalised, ReLU) with a residual shortcut every three modules, then a global average over
the series' real steps and a linear layer. Steps after a series' end are zeroed after every
module, so a series' output does not depend on how much padding follows it.

In training mode the network returns every member's output ``(batch, members, outputs)`` so
that each member learns from its own loss (trainforge.models.inception.MemberLoss); in eval mode
it returns the ensemble: the log of the members' mean probabilities for classes (log-probs
are valid logits), or their mean output for regression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from trainforge.models.nets.inputs import masked_mean, values_and_mask


@dataclass(frozen=True)
class InceptionConfig:
    """The network's shape.

    Attributes:
        n_inputs: channels of the series.
        n_outputs: classes, or 1 for regression.
        classify: outputs are class logits (the ensemble averages probabilities).
        members: networks in the ensemble (5 as published).
        depth: Inception modules per network (6 as published).
        filters: filters per branch (32; a module outputs 4 x filters channels).
        kernel: the longest convolution (40 as published; odd lengths are used: 39, 19, 9).
    """

    n_inputs: int
    n_outputs: int
    classify: bool = True
    members: int = 5
    depth: int = 6
    filters: int = 32
    kernel: int = 40


class _Module(nn.Module):
    def __init__(self, width: int, filters: int, kernel: int):
        super().__init__()
        self.bottleneck = nn.Conv1d(width, filters, 1, bias=False) if width > 1 else None
        inner = filters if width > 1 else width
        sizes = [max(3, (kernel // 2**i) - 1 + (kernel // 2**i) % 2) for i in range(3)]
        self.convs = nn.ModuleList(
            nn.Conv1d(inner, filters, k, padding=k // 2, bias=False) for k in sizes
        )
        self.pool = nn.MaxPool1d(3, stride=1, padding=1)
        self.pool_conv = nn.Conv1d(width, filters, 1, bias=False)
        self.norm = nn.BatchNorm1d(4 * filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, channels, steps)
        inner = self.bottleneck(x) if self.bottleneck is not None else x
        branches = [conv(inner) for conv in self.convs] + [self.pool_conv(self.pool(x))]
        return torch.relu(self.norm(torch.cat(branches, dim=1)))


class _Member(nn.Module):
    def __init__(self, config: InceptionConfig):
        super().__init__()
        width = 4 * config.filters
        self.blocks = nn.ModuleList(
            _Module(config.n_inputs if i == 0 else width, config.filters, config.kernel)
            for i in range(config.depth)
        )
        self.shortcuts = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(config.n_inputs if i == 0 else width, width, 1, bias=False),
                nn.BatchNorm1d(width),
            )
            for i in range(config.depth // 3)
        )
        self.head = nn.Linear(width, config.n_outputs)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        residual = x
        for index, block in enumerate(self.blocks):
            x = block(x) * keep
            if index % 3 == 2:
                x = torch.relu(x + self.shortcuts[index // 3](residual)) * keep
                residual = x
        return self.head(masked_mean(x.transpose(1, 2), keep[:, 0] > 0))


class InceptionTime(nn.Module):
    def __init__(self, config: InceptionConfig):
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(_Member(config) for _ in range(config.members))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values, mask = values_and_mask(x, tokens=False)
        keep = mask.unsqueeze(1).to(values.dtype)  # (batch, 1, steps)
        series = values.transpose(1, 2) * keep
        outputs = torch.stack([member(series, keep) for member in self.members], dim=1)
        if self.training:
            return outputs
        if self.config.classify:
            log_p = torch.log_softmax(outputs.float(), dim=2)
            return torch.logsumexp(log_p, dim=1) - math.log(len(self.members))
        return outputs.mean(dim=1)
