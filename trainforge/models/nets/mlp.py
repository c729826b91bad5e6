"""A multi-layer perceptron for tables: linear blocks with activation, norm, dropout, and
optional residual connections."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
}
NORMS = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}


@dataclass(frozen=True)
class MLPConfig:
    """The network's shape.

    Attributes:
        n_inputs / n_outputs: input features and output units (classes, 1 for regression).
        hidden: hidden layer widths, e.g. ``(256, 128)``.
        dropout: one rate for every hidden layer, or one per layer.
        norm: ``batch``, ``layer`` or None, after each hidden linear layer.
        residual: add each block's input to its output where the widths match.
    """

    n_inputs: int
    n_outputs: int
    hidden: tuple[int, ...] = (256, 128)
    activation: str = "relu"
    dropout: float | tuple[float, ...] = 0.1
    norm: str | None = None
    residual: bool = False

    def dropouts(self) -> tuple[float, ...]:
        if isinstance(self.dropout, (int, float)):
            return (float(self.dropout),) * len(self.hidden)
        if len(self.dropout) != len(self.hidden):
            raise ValueError(
                f"dropout has {len(self.dropout)} rates for {len(self.hidden)} hidden layers"
            )
        return tuple(float(d) for d in self.dropout)


class Block(nn.Module):
    """Linear -> norm -> activation -> dropout, plus the input when ``residual``."""

    def __init__(self, n_in: int, n_out: int, config: MLPConfig, dropout: float):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.norm = NORMS[config.norm](n_out) if config.norm else nn.Identity()
        self.activation = ACTIVATIONS[config.activation]()
        self.dropout = nn.Dropout(dropout)
        self.residual = config.residual and n_in == n_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dropout(self.activation(self.norm(self.linear(x))))
        return x + out if self.residual else out


class MLP(nn.Module):
    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        widths = (config.n_inputs, *config.hidden)
        self.blocks = nn.Sequential(
            *[Block(a, b, config, d) for a, b, d in zip(widths, widths[1:], config.dropouts())]
        )
        self.head = nn.Linear(widths[-1], config.n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))
