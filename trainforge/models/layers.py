"""Networks written as a list of layers in the spec: the ``net`` family (docs/models.md).

    models:
      - name: net
        layers:
          - {type: dense, units: 128, activation: relu}
          - {type: dropout, rate: 0.3}
          - {type: dense, units: 64, activation: relu}
          - {type: dropout, rate: 0.2}

Layers for tables: ``dense`` (units, activation, bias), ``dropout`` (rate), ``batch_norm``,
``layer_norm``, ``activation`` (name), ``residual`` (layers: its own list, whose output is added
to its input). The output layer (one unit per class, or one value) is added after the list; a
softmax is the loss's business, not a layer's. The list is checked with the spec, each error
naming the layer's index and field; the network trains on the MLP's loop and is saved as the
list (JSON) and safetensors weights.
"""

from __future__ import annotations

from numbers import Integral, Real

from trainforge.errors import SpecError

ACTIVATIONS = ("relu", "gelu", "silu", "tanh", "sigmoid", "elu", "leaky_relu")
# type: {field: (kind, required, default)}; kinds: units (int >= 1), rate (0 <= x < 1),
# activation (a name or None), bool, layers (a nested list)
FIELDS = {
    "dense": {"units": ("units", True, None), "activation": ("activation", False, None),
              "bias": ("bool", False, True)},
    "dropout": {"rate": ("rate", True, None)},
    "batch_norm": {},
    "layer_norm": {},
    "activation": {"name": ("activation", True, None)},
    "residual": {"layers": ("layers", True, None)},
}  # fmt: skip
BUILDER = "trainforge.models.layers:build"


def check(layers, path: str, width: int | None = None) -> int | None:
    """Raise SpecError naming ``path[i].field`` for the first thing wrong in ``layers``;
    returns the width they end at (None while it depends on the data's width)."""
    if not isinstance(layers, list) or not layers:
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
        if kind == "dense":
            width = int(layer["units"])
        elif kind == "residual":
            out = check(layer["layers"], f"{where}.layers", width)
            if None not in (out, width) and out != width:
                raise SpecError(
                    f"{where}.layers: end at width {out} and the residual's input has width "
                    f"{width}; they must match to be added"
                )
    return width


def _check_value(value, kind: str, where: str) -> None:
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


def build(n_inputs: int, n_outputs: int, layers: list):
    """The network: ``layers`` in order, then the output layer."""
    import torch

    body, width = _stack(layers, n_inputs)
    return torch.nn.Sequential(body, torch.nn.Linear(width, n_outputs))


def _stack(layers: list, width: int):
    import torch

    modules = []
    for layer in layers:
        module, width = _layer(layer, width)
        modules.append(module)
    return torch.nn.Sequential(*modules), width


def _layer(layer: dict, width: int):
    import torch

    kind = layer["type"]
    defaults = {key: default for key, (_, _, default) in FIELDS[kind].items()}
    settings = {**defaults, **{k: v for k, v in layer.items() if k != "type"}}
    if kind == "dense":
        linear = torch.nn.Linear(width, int(settings["units"]), bias=settings["bias"])
        if settings["activation"] is None:
            return linear, int(settings["units"])
        return torch.nn.Sequential(linear, _activation(settings["activation"])), linear.out_features
    if kind == "dropout":
        return torch.nn.Dropout(float(settings["rate"])), width
    if kind == "batch_norm":
        return torch.nn.BatchNorm1d(width), width
    if kind == "layer_norm":
        return torch.nn.LayerNorm(width), width
    if kind == "activation":
        return _activation(settings["name"]), width
    from trainforge.models.nets.residual import Residual

    inner, out = _stack(settings["layers"], width)
    if out != width:
        raise SpecError(
            f"residual: its layers end at width {out} and its input has width {width}; they "
            "must match to be added"
        )
    return Residual(inner), width


def _activation(name: str):
    import torch

    from trainforge.models.nets.mlp import ACTIVATIONS as MLP_ACTIVATIONS

    return {**MLP_ACTIVATIONS, "sigmoid": torch.nn.Sigmoid}[name]()
