"""trainforge's MLP as ONNX nodes appended to its converted preprocessing.

The network is written from its weights (no tracing): per block Gemm, then the norm
(BatchNormalization with the running statistics, or LayerNormalization), the activation and the
residual add; dropout is the identity at prediction. The head's logits end in a Softmax
(``probabilities``) or, for regression, are scaled back to the target (``variable``).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from trainforge.errors import DataError

_ACTIVATIONS = {"relu": "Relu", "tanh": "Tanh", "elu": "Elu", "leaky_relu": "LeakyRelu"}


def with_network(prep: onnx.ModelProto, estimator, classification: bool) -> onnx.ModelProto:
    """``prep`` (outputs the feature matrix) followed by ``estimator``'s network."""
    network = estimator.model_
    config = network.config
    nodes, weights = [], []
    current = _renamed_output(prep.graph, "mlp_features")

    def constant(name: str, value) -> str:
        weights.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    for index, block in enumerate(network.blocks):
        name = f"mlp{index}"
        out = _gemm(nodes, constant, block.linear, current, name)
        out = _norm(nodes, constant, block.norm, out, name)
        out = _activation(nodes, config.activation, block.activation, out, name)
        if block.residual:
            nodes.append(helper.make_node("Add", [current, out], [f"{name}_residual"]))
            out = f"{name}_residual"
        current = out
    logits = _gemm(nodes, constant, network.head, current, "head")
    if classification:
        nodes.append(helper.make_node("Softmax", [logits], ["probabilities"], axis=1))
        output = helper.make_tensor_value_info(
            "probabilities", onnx.TensorProto.FLOAT, [None, config.n_outputs]
        )
    else:
        scale = constant("y_scale", [estimator.y_scale_])
        mean = constant("y_mean", [estimator.y_mean_])
        nodes.append(helper.make_node("Mul", [logits, scale], ["scaled"]))
        nodes.append(helper.make_node("Add", ["scaled", mean], ["variable"]))
        output = helper.make_tensor_value_info("variable", onnx.TensorProto.FLOAT, [None, 1])
    graph = prep.graph
    graph.node.extend(nodes)
    graph.initializer.extend(weights)
    del graph.output[:]
    graph.output.append(output)
    return prep


def _renamed_output(graph, name: str) -> str:
    """Name the preprocessing's output ``name`` (skl2onnx calls it ``variable``, as the
    regression output is called)."""
    old = graph.output[0].name
    for node in graph.node:
        node.output[:] = [name if n == old else n for n in node.output]
        node.input[:] = [name if n == old else n for n in node.input]
    return name


def _gemm(nodes, constant, linear, current: str, name: str) -> str:
    weight = linear.weight.detach().cpu().numpy()
    bias = linear.bias.detach().cpu().numpy()
    inputs = [current, constant(f"{name}_w", weight), constant(f"{name}_b", bias)]
    nodes.append(helper.make_node("Gemm", inputs, [f"{name}_linear"], transB=1))
    return f"{name}_linear"


def _norm(nodes, constant, norm, current: str, name: str) -> str:
    import torch

    if isinstance(norm, torch.nn.Identity):
        return current
    if isinstance(norm, torch.nn.BatchNorm1d):
        inputs = [
            current,
            constant(f"{name}_gamma", norm.weight.detach().cpu().numpy()),
            constant(f"{name}_beta", norm.bias.detach().cpu().numpy()),
            constant(f"{name}_mean", norm.running_mean.cpu().numpy()),
            constant(f"{name}_var", norm.running_var.cpu().numpy()),
        ]
        nodes.append(
            helper.make_node("BatchNormalization", inputs, [f"{name}_norm"], epsilon=norm.eps)
        )
        return f"{name}_norm"
    inputs = [
        current,
        constant(f"{name}_gamma", norm.weight.detach().cpu().numpy()),
        constant(f"{name}_beta", norm.bias.detach().cpu().numpy()),
    ]
    nodes.append(
        helper.make_node("LayerNormalization", inputs, [f"{name}_norm"], axis=-1, epsilon=norm.eps)
    )
    return f"{name}_norm"


def _activation(nodes, kind: str, module, current: str, name: str) -> str:
    out = f"{name}_act"
    if kind == "silu":
        nodes.append(helper.make_node("Sigmoid", [current], [f"{name}_sigmoid"]))
        nodes.append(helper.make_node("Mul", [current, f"{name}_sigmoid"], [out]))
    elif kind == "gelu":  # exact GELU: x * (1 + erf(x / sqrt 2)) / 2 (opset 17 has no Gelu)
        nodes += [
            helper.make_node("Div", [current, "mlp_sqrt2"], [f"{name}_scaled"]),
            helper.make_node("Erf", [f"{name}_scaled"], [f"{name}_erf"]),
            helper.make_node("Add", [f"{name}_erf", "mlp_one"], [f"{name}_plus"]),
            helper.make_node("Mul", [current, f"{name}_plus"], [f"{name}_times"]),
            helper.make_node("Mul", [f"{name}_times", "mlp_half"], [out]),
        ]
        _gelu_constants(nodes)
    elif kind in _ACTIVATIONS:
        attributes = {}
        if kind == "leaky_relu":
            attributes["alpha"] = float(module.negative_slope)
        if kind == "elu":
            attributes["alpha"] = float(module.alpha)
        nodes.append(helper.make_node(_ACTIVATIONS[kind], [current], [out], **attributes))
    else:
        raise DataError(f"export: the MLP's activation {kind!r} has no ONNX form here")
    return out


def _gelu_constants(nodes) -> None:
    if any(n.output and n.output[0] == "mlp_sqrt2" for n in nodes):
        return
    for name, value in (("mlp_sqrt2", np.sqrt(2.0)), ("mlp_one", 1.0), ("mlp_half", 0.5)):
        tensor = numpy_helper.from_array(np.array(value, dtype=np.float32), name)
        nodes.insert(0, helper.make_node("Constant", [], [name], value=tensor))
