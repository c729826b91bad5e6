"""The network of a list of layers (the ``net`` family; the list is checked and documented in
trainforge.models.layers).

The input decides what the first layer sees: rows of numbers ``(batch, width)`` for tables,
images ``(batch, channels, height, width)``, series ``(batch, steps, channels + 1)`` (values and
the real-step mask, trainforge.models.nets.inputs) or token ids ``(batch, steps)``. Each layer
becomes a step that takes and returns ``(values, mask)``; the mask (True on real steps) follows
sequences through every layer, so padding never changes a prediction: convolutions and pooling
along time see padded steps as zeros (or as minus infinity, for max pooling), recurrent layers
skip them, attention ignores them and global pooling averages real steps only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from trainforge.errors import DataError
from trainforge.models import layers as spec_layers
from trainforge.models.nets.inputs import masked_max, masked_mean, values_and_mask
from trainforge.models.nets.transformer import Block, positions

INPUTS = ("table", "image", "series", "tokens")


@dataclass(frozen=True)
class LayeredConfig:
    """The network's shape.

    Attributes:
        input: ``table``, ``image``, ``series`` or ``tokens``.
        shape: ``(width,)`` for tables, ``(channels, height, width)`` for images, ``(channels,)``
            for series, ``(vocabulary,)`` for tokens.
        n_outputs: classes, or 1 for regression.
        layers: the spec's list of layers.
    """

    input: str
    shape: tuple[int, ...]
    n_outputs: int
    layers: tuple


# What a layer receives: ("rows", width), ("image", channels, height, width),
# ("steps", width) or ("tokens", vocabulary).
FIRST = {"table": "rows", "image": "image", "series": "steps", "tokens": "tokens"}


class LayeredNet(nn.Module):
    def __init__(self, config: LayeredConfig):
        super().__init__()
        self.config = config
        form = (FIRST[config.input], *config.shape)
        self.body, form = _steps(list(config.layers), form, "layers")
        if form[0] != "rows":
            ending = "flatten or global_pool" if form[0] == "image" else "global_pool, or "
            if form[0] != "image":
                ending += "a recurrent layer with sequences: false"
            raise DataError(
                f"layers: they end in {_describe(form)}; end them with {ending}, so the output "
                "layer gets one row of numbers per example"
            )
        self.head = nn.Linear(form[1], config.n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = None
        if self.config.input in ("series", "tokens"):
            x, mask = values_and_mask(x, self.config.input == "tokens")
        for step in self.body:
            x, mask = step(x, mask)
        return self.head(x)


def _steps(layers: list, form: tuple, path: str) -> tuple[nn.ModuleList, tuple]:
    steps = nn.ModuleList()
    for index, layer in enumerate(layers):
        step, form = _step(layer, form, f"{path}[{index}]")
        steps.append(step)
    return steps, form


def _step(layer: dict, form: tuple, where: str) -> tuple[nn.Module, tuple]:
    kind, values = layer["type"], spec_layers.settings(layer)
    shape, width = form[0], form[1]
    if shape == "tokens" and kind != "embedding":
        raise DataError(f"{where} ({kind}): text comes as token ids; start with an embedding")
    if kind == "dense":
        if shape == "image":
            raise DataError(f"{where} (dense): images need flatten or global_pool before dense")
        linear = nn.Linear(width, values["units"], bias=values["bias"])
        return Each(_with_activation(linear, values["activation"])), (shape, values["units"])
    if kind in ("dropout", "activation"):
        module = nn.Dropout(values["rate"]) if kind == "dropout" else _activation(values["name"])
        return Each(module), form
    if kind == "residual":
        if shape == "steps" and any(inner["type"] == "pool" for inner in values["layers"]):
            raise DataError(f"{where}.layers: a pool inside a residual changes the sequence")
        inner, out = _steps(values["layers"], form, f"{where}.layers")
        if out != form:
            raise DataError(
                f"{where}.layers: end in {_describe(out)} but the residual's input is "
                f"{_describe(form)}; they must match to be added"
            )
        return Residual(inner), form
    if kind == "batch_norm" and shape in ("rows", "image"):
        return Each((nn.BatchNorm1d if shape == "rows" else nn.BatchNorm2d)(width)), form
    if kind == "layer_norm" and shape in ("rows", "steps"):
        return Each(nn.LayerNorm(width)), form
    if kind == "embedding":
        if shape != "tokens":
            raise DataError(f"{where} (embedding): it reads token ids (text), not {shape}")
        return Each(nn.Embedding(width, values["dim"], padding_idx=0)), ("steps", values["dim"])
    if kind in ("conv", "pool", "global_pool", "flatten") and shape == "image":
        return _image_step(kind, values, form, where)
    if kind in ("conv", "pool", "global_pool") and shape == "steps":
        return _time_step(kind, values, width, where)
    if kind in ("recurrent", "positions", "attention") and shape == "steps":
        return _sequence_step(kind, values, width, where)
    raise DataError(f"{where} ({kind}): does not take {_describe(form)}; {_WHERE[kind]}")


_WHERE = {
    "batch_norm": "it normalises rows of numbers or images (layer_norm on sequences)",
    "layer_norm": "it normalises rows of numbers or sequences (batch_norm on images)",
    "conv": "it reads images or sequences",
    "pool": "it reads images or sequences",
    "global_pool": "it reads images or sequences",
    "flatten": "it flattens images (global_pool for sequences)",
    "recurrent": "it reads sequences (series, or text after an embedding)",
    "positions": "it reads sequences (series, or text after an embedding)",
    "attention": "it reads sequences (series, or text after an embedding)",
}


def _image_step(kind: str, values: dict, form: tuple, where: str) -> tuple[nn.Module, tuple]:
    _, channels, height, width = form
    if kind == "conv":
        kernel, stride = values["kernel"], values["stride"]
        conv = nn.Conv2d(channels, values["filters"], kernel, stride, padding=kernel // 2)
        height = (height + 2 * (kernel // 2) - kernel) // stride + 1
        width = (width + 2 * (kernel // 2) - kernel) // stride + 1
        step = _with_activation(conv, values["activation"])
        return Each(step), _image(values["filters"], height, width, where)
    if kind == "pool":
        size = values["size"]
        pool = (nn.MaxPool2d if values["kind"] == "max" else nn.AvgPool2d)(size)
        return Each(pool), _image(channels, height // size, width // size, where)
    if kind == "flatten":
        return Each(nn.Flatten()), ("rows", channels * height * width)
    return GlobalPool(values["kind"]), ("rows", channels)


def _image(channels: int, height: int, width: int, where: str) -> tuple:
    if height < 1 or width < 1:
        raise DataError(f"{where}: the image shrinks to nothing here; use fewer pools or strides")
    return ("image", channels, height, width)


def _time_step(kind: str, values: dict, width: int, where: str) -> tuple[nn.Module, tuple]:
    if kind == "conv":
        if values["stride"] != 1:
            raise DataError(f"{where}.stride: along time only 1; use pool to shorten sequences")
        conv = nn.Conv1d(width, values["filters"], values["kernel"], padding="same")
        return AlongTime(conv, values["activation"]), ("steps", values["filters"])
    if kind == "pool":
        return TimePool(values["kind"], values["size"]), ("steps", width)
    return GlobalPool(values["kind"]), ("rows", width)


def _sequence_step(kind: str, values: dict, width: int, where: str) -> tuple[nn.Module, tuple]:
    if kind == "positions":
        return Positions(), ("steps", width)
    if kind == "attention":
        if width % values["heads"]:
            raise DataError(
                f"{where}.heads: the sequence's width ({width}) must be a multiple of heads "
                f"({values['heads']})"
            )
        block = Block(width, values["heads"], values["ff"] or 2 * width, values["rate"])
        return Attention(block), ("steps", width)
    directions = 2 if values["bidirectional"] else 1
    cell = {"gru": nn.GRU, "lstm": nn.LSTM}[values["cell"]]
    rnn = cell(width, values["units"], bidirectional=values["bidirectional"], batch_first=True)
    out = ("steps" if values["sequences"] else "rows", directions * values["units"])
    return Recurrent(rnn, values["sequences"]), out


def _describe(form: tuple) -> str:
    if form[0] == "image":
        return f"images of {form[1]} channels, {form[2]}x{form[3]}"
    if form[0] == "tokens":
        return "token ids"
    return f"{'rows' if form[0] == 'rows' else 'sequences'} of width {form[1]}"


def _activation(name: str) -> nn.Module:
    from trainforge.models.nets.mlp import ACTIVATIONS as MLP_ACTIVATIONS

    return {**MLP_ACTIVATIONS, "sigmoid": nn.Sigmoid}[name]()


def _with_activation(module: nn.Module, activation: str | None) -> nn.Module:
    return module if activation is None else nn.Sequential(module, _activation(activation))


# -- the steps: each takes and returns (values, mask) ----------------------------------------


class Each(nn.Module):
    """A module applied to the values as they are (to each step's last axis on sequences)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x, mask):
        return self.module(x), mask


class Residual(nn.Module):
    """``x + inner(x)``."""

    def __init__(self, inner: nn.ModuleList):
        super().__init__()
        self.inner = inner

    def forward(self, x, mask):
        h = x
        for step in self.inner:
            h, _ = step(h, mask)
        return x + h, mask


class AlongTime(nn.Module):
    """A 1-D convolution along time, padded steps read as zeros."""

    def __init__(self, conv: nn.Conv1d, activation: str | None):
        super().__init__()
        self.conv = conv
        self.activation = _activation(activation) if activation else nn.Identity()

    def forward(self, x, mask):
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0)
        return self.activation(self.conv(x.transpose(1, 2)).transpose(1, 2)), mask


class TimePool(nn.Module):
    """Max or average over ``size`` steps at a time; a window is real when any step in it is,
    and its average is over its real steps."""

    def __init__(self, kind: str, size: int):
        super().__init__()
        self.kind, self.size = kind, size

    def forward(self, x, mask):
        real = mask.unsqueeze(1).to(x.dtype)  # (batch, 1, steps)
        h = x.transpose(1, 2)
        if self.kind == "max":
            h = h.masked_fill(real == 0, float("-inf"))
            h = nn.functional.max_pool1d(h, self.size, ceil_mode=True)
        else:
            total = nn.functional.avg_pool1d(h * real, self.size, ceil_mode=True)
            h = total / nn.functional.avg_pool1d(real, self.size, ceil_mode=True).clamp(min=1e-9)
        mask = nn.functional.max_pool1d(real, self.size, ceil_mode=True)[:, 0] > 0
        h = h.transpose(1, 2).masked_fill(~mask.unsqueeze(-1), 0.0)
        return h, mask


class GlobalPool(nn.Module):
    """Average or maximum over an image's positions or a sequence's real steps."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def forward(self, x, mask):
        if mask is None:  # images (batch, channels, height, width)
            return (x.mean(dim=(2, 3)) if self.kind == "avg" else x.amax(dim=(2, 3))), None
        return (masked_mean if self.kind == "avg" else masked_max)(x, mask), None


class Recurrent(nn.Module):
    """A GRU or LSTM over the real steps (packed); every step's output, or the final state."""

    def __init__(self, rnn: nn.RNNBase, sequences: bool):
        super().__init__()
        self.rnn, self.sequences = rnn, sequences

    def forward(self, x, mask):
        lengths = mask.sum(dim=1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        if self.sequences:
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
            return out, mask
        final = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
        directions = 2 if self.rnn.bidirectional else 1
        return torch.cat(list(final[-directions:]), dim=1), None


class Positions(nn.Module):
    """Adds sinusoidal position encodings (fixed: nothing to learn or save)."""

    def forward(self, x, mask):
        return x + positions(x.shape[1], x.shape[2], x.device, x.dtype), mask


class Attention(nn.Module):
    """A pre-norm Transformer block whose attention skips padded steps."""

    def __init__(self, block: Block):
        super().__init__()
        self.block = block

    def forward(self, x, mask):
        return self.block(x, ~mask), mask
