"""Joining converted pipelines into the one graph a user gets.

Every part (one pipeline: a plain model, a fold model of a bagged one, a member of an
ensemble) was converted with the same inputs. Its node and value names get a prefix, its
inputs stay shared, and the graph ends in a weighted sum of the parts' probabilities (or
values) followed by the label: the most probable class, or for a binary model with a tuned
threshold the second class from that probability on, as the Python model decides.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def joined(parts: list[tuple[onnx.ModelProto, float]], classes: list | None, threshold=None):
    """One model from ``(converted pipeline, weight)`` parts; ``classes`` None for regression.

    Outputs: ``label`` (strings, the class names) and ``probabilities`` ``(rows, classes)``,
    or ``value`` ``(rows, 1)`` for regression.
    """
    first = parts[0][0]
    shared = {value.name for value in first.graph.input}
    nodes, initializers, sums = [], [], []
    wanted = "probabilities" if classes is not None else "variable"
    for index, (part, weight) in enumerate(parts):
        graph = _prefixed(part.graph, f"p{index}_", shared)
        nodes += graph.node
        initializers += graph.initializer
        output = next(o.name for o in graph.output if o.name.endswith(wanted))
        name = f"p{index}_weight"
        initializers.append(numpy_helper.from_array(np.array(weight, np.float32), name))
        nodes.append(helper.make_node("Mul", [output, name], [f"p{index}_weighted"]))
        sums.append(f"p{index}_weighted")
    if classes is None:
        nodes.append(helper.make_node("Sum", sums, ["value"]))
        outputs = [helper.make_tensor_value_info("value", TensorProto.FLOAT, [None, 1])]
    else:
        nodes.append(helper.make_node("Sum", sums, ["probabilities"]))
        nodes += _label_nodes(classes, threshold, initializers)
        outputs = [
            helper.make_tensor_value_info("label", TensorProto.STRING, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, len(classes)]),
        ]
    graph = helper.make_graph(
        nodes, "trainforge", list(first.graph.input), outputs, initializer=initializers
    )
    model = helper.make_model(graph, opset_imports=list(first.opset_import))
    model.ir_version = first.ir_version
    model.producer_name = "trainforge"
    onnx.checker.check_model(model)
    return model


def _label_nodes(classes: list, threshold, initializers: list) -> list:
    """``label``: the class names at the chosen class indices."""
    names = np.array([str(c) for c in classes], dtype=object)
    initializers.append(numpy_helper.from_array(names, "class_names"))
    if threshold is not None and len(classes) == 2:
        initializers.append(numpy_helper.from_array(np.array([1], np.int64), "second"))
        initializers.append(numpy_helper.from_array(np.array(threshold, np.float32), "cut"))
        nodes = [
            helper.make_node("Gather", ["probabilities", "second"], ["second_p"], axis=1),
            helper.make_node("GreaterOrEqual", ["second_p", "cut"], ["above"]),
            helper.make_node("Cast", ["above"], ["chosen_2d"], to=TensorProto.INT64),
            helper.make_node("Reshape", ["chosen_2d", "flat"], ["chosen"]),
        ]
        initializers.append(numpy_helper.from_array(np.array([-1], np.int64), "flat"))
    else:
        nodes = [helper.make_node("ArgMax", ["probabilities"], ["chosen"], axis=1, keepdims=0)]
    return nodes + [helper.make_node("Gather", ["class_names", "chosen"], ["label"], axis=0)]


def _prefixed(graph: onnx.GraphProto, prefix: str, keep: set[str]) -> onnx.GraphProto:
    """A copy of ``graph`` with every name but those in ``keep`` (the shared inputs) prefixed."""
    graph = onnx.GraphProto.FromString(graph.SerializeToString())

    def rename(name: str) -> str:
        return name if not name or name in keep else prefix + name

    for index, node in enumerate(graph.node):
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
        node.name = f"{prefix}{node.name}" if node.name else f"{prefix}node{index}"
    for initializer in graph.initializer:
        initializer.name = rename(initializer.name)
    for value in list(graph.value_info) + list(graph.output):
        value.name = rename(value.name)
    return graph
