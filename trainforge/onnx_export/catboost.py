"""trainforge's CatBoost models as their own ONNX graph appended to the converted preprocessing.

CatBoost writes ONNX itself (``save_model(format="onnx")``): a ``TreeEnsembleClassifier`` (or
``...Regressor``) on one float input ``features``, and for classifiers a ``ZipMap`` that turns
the probabilities into a list of dictionaries. Here the ZipMap is dropped (the tree ensemble's
own probability tensor is the output, as for every other family) and the trees read the
preprocessing's feature matrix. CatBoost's ONNX format has no categorical features, so a model
that trained on category columns is refused before CatBoost is asked.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx
from onnx import helper

from trainforge.errors import DataError

FEATURES = "catboost_features"


def with_catboost(prep: onnx.ModelProto, estimator, classification: bool) -> onnx.ModelProto:
    """``prep`` (outputs the feature matrix) followed by ``estimator``'s trees."""
    from trainforge.onnx_export.mlp import _renamed_output

    trees = _catboost_graph(estimator)
    current = _renamed_output(prep.graph, FEATURES)
    nodes = [n for n in trees.graph.node if n.op_type != "ZipMap"]
    for node in nodes:
        node.input[:] = [current if name == "features" else name for name in node.input]
    if classification:
        ensemble = next(n for n in nodes if n.op_type == "TreeEnsembleClassifier")
        ensemble.output[:] = ["catboost_label", "probabilities"]
        output = helper.make_tensor_value_info(
            "probabilities", onnx.TensorProto.FLOAT, [None, len(estimator.classes_)]
        )
    else:
        final = trees.graph.output[0].name
        for node in nodes:
            node.output[:] = ["variable" if name == final else name for name in node.output]
        output = helper.make_tensor_value_info("variable", onnx.TensorProto.FLOAT, [None, 1])
    graph = prep.graph
    graph.node.extend(nodes)
    graph.initializer.extend(trees.graph.initializer)
    del graph.output[:]
    graph.output.append(output)
    return prep


def _catboost_graph(estimator) -> onnx.ModelProto:
    """CatBoost's own ONNX graph of the fitted booster, or a one-line refusal."""
    categories = estimator._categorical(estimator.n_features_in_)
    if categories:
        raise DataError(
            f"export: this CatBoost model splits on {len(categories)} category column(s) and "
            "CatBoost's ONNX format has no categorical features; train catboost on numeric "
            "columns only, or export another family"
        )
    with tempfile.TemporaryDirectory(prefix="trainforge-catboost-") as folder:
        path = Path(folder) / "model.onnx"
        try:
            estimator.booster_.save_model(str(path), format="onnx")
        except Exception as exc:  # noqa: BLE001 - CatBoost's refusal, said in one line
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            message = f"export: CatBoost cannot write this model as ONNX ({reason})"
            raise DataError(message) from None
        return onnx.load(str(path))
