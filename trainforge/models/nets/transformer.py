"""A Transformer encoder for token ids or series: embeddings (tokens, or time steps projected),
sinusoidal positions, pre-norm blocks, CLS or mean pooling, padding masks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from trainforge.models.nets.inputs import masked_mean, patches, values_and_mask

POOLING = ("cls", "mean")


@dataclass(frozen=True)
class TransformerConfig:
    """The network's shape.

    Attributes:
        tokens: inputs are token ids (embedded) rather than series (each step projected).
        n_inputs: vocabulary size for tokens, channels for series.
        n_outputs: classes, or 1 for regression.
        d_model / heads / layers / ff_dim: block width, attention heads, blocks, MLP width.
        pooling: ``cls`` (a learned token in front) or ``mean`` over real steps.
        patch: series steps projected together as one position (1 for tokens).
    """

    tokens: bool
    n_inputs: int
    n_outputs: int
    d_model: int = 64
    heads: int = 4
    layers: int = 2
    ff_dim: int = 128
    dropout: float = 0.1
    pooling: str = "cls"
    patch: int = 1


class Block(nn.Module):
    """Pre-norm: x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, d_model: int, heads: int, ff_dim: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, ff_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_dim, d_model)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        attended, _ = self.attention(h, h, h, key_padding_mask=padding, need_weights=False)
        x = x + self.dropout(attended)
        return x + self.dropout(self.mlp(self.norm2(x)))


class TransformerEncoder(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        if config.tokens:
            self.embed = nn.Embedding(config.n_inputs, config.d_model, padding_idx=0)
        else:
            self.embed = nn.Linear(config.n_inputs * config.patch, config.d_model)
        self.cls = nn.Parameter(torch.zeros(1, 1, config.d_model))
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(config.d_model, config.heads, config.ff_dim, config.dropout)
            for _ in range(config.layers)
        )
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values, mask = values_and_mask(x, self.config.tokens)
        if not self.config.tokens:
            values, mask = patches(values, mask, self.config.patch)
        h = self.embed(values)
        h = h + positions(h.shape[1], h.shape[2], h.device, h.dtype)
        if self.config.pooling == "cls":
            h = torch.cat([self.cls.expand(h.shape[0], -1, -1), h], dim=1)
            mask = torch.cat([mask.new_ones(h.shape[0], 1), mask], dim=1)
        h = self.dropout(h)
        for block in self.blocks:
            h = block(h, ~mask)
        h = self.norm(h)
        pooled = h[:, 0] if self.config.pooling == "cls" else masked_mean(h, mask)
        return self.head(pooled)


def positions(steps: int, width: int, device, dtype) -> torch.Tensor:
    """Sinusoidal position encodings ``(1, steps, width)`` (fixed, so nothing to save)."""
    position = torch.arange(steps, device=device, dtype=torch.float32)[:, None]
    rate = torch.exp(
        torch.arange(0, width, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / width)
    )
    table = torch.zeros(steps, width, device=device)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)[:, : width // 2]
    return table[None].to(dtype)
