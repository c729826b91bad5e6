"""A recurrent network (LSTM or GRU) for token ids or series, pooled over time."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from trainforge.models.nets.inputs import masked_max, masked_mean, patches, values_and_mask

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}
POOLING = ("last", "mean", "max")


@dataclass(frozen=True)
class RNNConfig:
    """The network's shape.

    Attributes:
        tokens: inputs are token ids (embedded) rather than series (read as they are).
        n_inputs: vocabulary size for tokens, channels for series.
        n_outputs: classes, or 1 for regression.
        cell: ``lstm`` or ``gru``.
        embedding_dim: token embedding width (unused for series).
        pooling: ``last`` (final state of each direction), ``mean`` or ``max`` over real steps.
        patch: series steps read together as one step (1 for tokens).
    """

    tokens: bool
    n_inputs: int
    n_outputs: int
    cell: str = "gru"
    embedding_dim: int = 64
    hidden_size: int = 64
    layers: int = 1
    bidirectional: bool = True
    pooling: str = "mean"
    dropout: float = 0.1
    patch: int = 1


class RNN(nn.Module):
    """Padded steps are skipped (packed sequences), so they never touch the state."""

    def __init__(self, config: RNNConfig):
        super().__init__()
        self.config = config
        width = config.n_inputs * config.patch
        if config.tokens:
            self.embed = nn.Embedding(config.n_inputs, config.embedding_dim, padding_idx=0)
            width = config.embedding_dim
        self.rnn = CELLS[config.cell](
            width,
            config.hidden_size,
            num_layers=config.layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.layers > 1 else 0.0,
            batch_first=True,
        )
        self.dropout = nn.Dropout(config.dropout)
        directions = 2 if config.bidirectional else 1
        self.head = nn.Linear(directions * config.hidden_size, config.n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values, mask = values_and_mask(x, self.config.tokens)
        if self.config.tokens:
            h = self.embed(values)
        else:
            h, mask = patches(values, mask, self.config.patch)
        lengths = mask.sum(dim=1).cpu()
        packed = pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        directions = 2 if self.config.bidirectional else 1
        if self.config.pooling == "last" and torch.onnx.is_in_onnx_export():
            pooled = _ends(out, lengths.to(x.device), h.shape[1], directions)
        elif self.config.pooling == "last":
            final = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
            pooled = torch.cat(list(final[-directions:]), dim=1)
        else:
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=h.shape[1])
            steps = torch.arange(h.shape[1], device=x.device)
            valid = steps[None, :] < lengths.to(x.device)[:, None]
            pool = masked_mean if self.config.pooling == "mean" else masked_max
            pooled = pool(out, valid)
        return self.head(self.dropout(pooled))


def _ends(packed, lengths: torch.Tensor, steps: int, directions: int) -> torch.Tensor:
    """The last layer's final states read from its outputs (the forward direction's at each
    series' last step, the backward direction's at its first): the same values as the packed
    RNN's final state, in ops ONNX export can trace (it cannot read that state)."""
    out, _ = pad_packed_sequence(packed, batch_first=True, total_length=steps)
    hidden = out.shape[2] // directions
    last = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, out.shape[2])
    forward = out.gather(1, last)[:, 0, :hidden]
    if directions == 1:
        return forward
    return torch.cat([forward, out[:, 0, hidden:]], dim=1)
