"""Networks written as a list of layers in the spec: the ``net`` family (docs/models.md).

    models:
      - name: net
        layers:
          - {type: dense, units: 128, activation: relu}
          - {type: dropout, rate: 0.3}
          - {type: dense, units: 64, activation: relu}
          - {type: dropout, rate: 0.2}

The same family reads tables, images, series and text; the layers say what to do with them:

- any input: ``dense`` (units, activation, bias; on sequences, applied to each step),
  ``dropout`` (rate), ``activation`` (name), ``residual`` (layers: its own list, whose output
  is added to its input);
- rows of numbers: ``batch_norm``, ``layer_norm``;
- images: ``conv`` (filters, kernel, stride, activation), ``pool`` (kind max|avg, size),
  ``batch_norm``, ``global_pool`` (kind avg|max) or ``flatten`` to end in rows of numbers;
- text: ``embedding`` (dim) first, turning token ids into a sequence;
- sequences (series, or text after its embedding): ``conv`` and ``pool`` along time,
  ``layer_norm``, ``recurrent`` (cell gru|lstm, units, bidirectional, sequences: false to end
  in its final state), ``positions`` (sinusoidal), ``attention`` (a pre-norm Transformer block:
  heads, ff, rate), and ``global_pool`` (kind avg|max over the real steps).

The output layer (one unit per class, or one value) is added after the list; a softmax is the
loss's business, not a layer's. This module checks the list with the spec, each error naming
the layer's index and field; trainforge.models.nets.layered builds the network, where an
input the layers cannot take is an error naming the layer. A trained net is saved as the list
(JSON) and safetensors weights.
"""

from __future__ import annotations

from numbers import Integral, Real

from trainforge.errors import SpecError

ACTIVATIONS = ("relu", "gelu", "silu", "tanh", "sigmoid", "elu", "leaky_relu")
# type: {field: (kind, required, default)}; kinds: units (int >= 1), rate (0 <= x < 1),
# activation (a name or None), bool, layers (a nested list), or a tuple of allowed words
FIELDS = {
    "dense": {"units": ("units", True, None), "activation": ("activation", False, None),
              "bias": ("bool", False, True)},
    "dropout": {"rate": ("rate", True, None)},
    "batch_norm": {},
    "layer_norm": {},
    "activation": {"name": ("activation", True, None)},
    "residual": {"layers": ("layers", True, None)},
    "conv": {"filters": ("units", True, None), "kernel": ("units", False, 3),
             "stride": ("units", False, 1), "activation": ("activation", False, None)},
    "pool": {"kind": (("max", "avg"), False, "max"), "size": ("units", False, 2)},
    "global_pool": {"kind": (("avg", "max"), False, "avg")},
    "flatten": {},
    "embedding": {"dim": ("units", True, None)},
    "recurrent": {"units": ("units", True, None), "cell": (("gru", "lstm"), False, "gru"),
                  "bidirectional": ("bool", False, False), "sequences": ("bool", False, True)},
    "positions": {},
    "attention": {"heads": ("units", False, 4), "ff": ("units", False, None),
                  "rate": ("rate", False, 0.1)},
}  # fmt: skip
# the layers whose output width is a field of theirs (the others keep their input's width)
WIDTH = {"dense": "units", "conv": "filters", "embedding": "dim"}


def settings(layer: dict) -> dict:
    """A layer's fields with the defaults of those it leaves out."""
    defaults = {key: default for key, (_, _, default) in FIELDS[layer["type"]].items()}
    return {**defaults, **{k: v for k, v in layer.items() if k != "type"}}


def check(layers, path: str, width: int | None = None) -> int | None:
    """Raise SpecError naming ``path[i].field`` for the first thing wrong in ``layers``;
    returns the width they end at (None while it depends on the data)."""
    if not isinstance(layers, (list, tuple)) or not layers:
        raise SpecError(f"{path}: expected a list of layers ({{type: dense, units: 64}}, ...)")
    for index, layer in enumerate(layers):
        where = f"{path}[{index}]"
        if not isinstance(layer, dict) or "type" not in layer:
            raise SpecError(f"{where}: expected a mapping with a type ({', '.join(FIELDS)})")
        kind = layer["type"]
        if kind not in FIELDS:
            raise SpecError(
                f"{where}.type: unknown layer {kind!r}; choose from {', '.join(FIELDS)}"
            )
        fields = FIELDS[kind]
        for key in layer:
            if key != "type" and key not in fields:
                known = ", ".join(fields) or "none"
                raise SpecError(f"{where}.{key}: unknown field for {kind} (fields: {known})")
        for key, (value_kind, required, _) in fields.items():
            if key not in layer:
                if required:
                    raise SpecError(f"{where}.{key}: {kind} needs {key}")
                continue
            if value_kind != "layers":
                _check_value(layer[key], value_kind, f"{where}.{key}")
        if kind in WIDTH:
            width = int(layer[WIDTH[kind]])
        elif kind == "recurrent":
            width = int(layer["units"]) * (2 if layer.get("bidirectional") else 1)
        elif kind == "residual":
            out = check(layer["layers"], f"{where}.layers", width)
            if None not in (out, width) and out != width:
                raise SpecError(
                    f"{where}.layers: end at width {out} and the residual's input has width "
                    f"{width}; they must match to be added"
                )
    return width


def _check_value(value, kind, where: str) -> None:
    if kind == "units" and (
        isinstance(value, bool) or not isinstance(value, Integral) or value < 1
    ):
        raise SpecError(f"{where}: expected an integer >= 1, got {value!r}")
    if kind == "rate" and (
        isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < 1
    ):
        raise SpecError(f"{where}: expected a number from 0 up to (not including) 1, got {value!r}")
    if kind == "activation" and value is not None and value not in ACTIVATIONS:
        raise SpecError(f"{where}: expected one of {', '.join(ACTIVATIONS)}, got {value!r}")
    if kind == "bool" and not isinstance(value, bool):
        raise SpecError(f"{where}: expected true or false, got {value!r}")
    if isinstance(kind, tuple) and value not in kind:
        raise SpecError(f"{where}: expected one of {', '.join(kind)}, got {value!r}")
