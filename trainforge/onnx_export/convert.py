"""A trainforge model -> one ONNX graph from the feature columns to the label and probabilities.

The graph's inputs are the columns of the model's feature frame (trainforge.data.features),
each ``(rows, 1)``: numbers (booleans as 0/1, dates as their parts) as float32, categories as
strings with ``""`` for a missing value. Its outputs: ``label`` (int64 class codes, or for
regression the ``variable`` float32 value) and ``probabilities`` ``(rows, classes)``.

Plain pipelines go through skl2onnx after two fixes it needs: a copy of each string imputer
with ``missing_values=""`` (skl2onnx cannot compare strings with NaN), and imputers with
``add_indicator=True`` split into the imputer and an explicit indicator, which skl2onnx would
otherwise drop without a word. A bagged model's fold models and an ensemble's members are
converted one by one and joined in one graph that averages their probabilities (or values)
with the model's weights (trainforge.onnx_export.combine).
"""

from __future__ import annotations

import copy

import numpy as np

from trainforge.errors import DataError

OPSET = 17
ML_OPSET = 3


class MissingColumns:
    """What ``SimpleImputer(add_indicator=True)`` appends: 1.0 where a column it watched was
    missing. A stand-in with its own converter (``_indicator_converter``)."""

    def __init__(self, features: np.ndarray):
        self.features_ = np.asarray(features, dtype=np.int64)

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.isnan(np.asarray(X, dtype=float)[:, self.features_]).astype(float)


def input_types(schema) -> list:
    """skl2onnx's initial types: one ``(rows, 1)`` input per feature-frame column."""
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    from trainforge.data.features import feature_roles

    roles = feature_roles(schema)
    if roles["text"]:
        raise DataError(
            f"export: free-text columns ({', '.join(roles['text'])}) have no ONNX form here; "
            "train without them (columns: {name: ignore}) to export"
        )
    numeric = [(name, FloatTensorType([None, 1])) for name in roles["numeric"]]
    return numeric + [(name, StringTensorType([None, 1])) for name in roles["categorical"]]


def pipeline_graph(pipeline, schema, classification: bool):
    """One fitted scikit-learn pipeline as an ONNX model (outputs ``probabilities``, or
    ``variable`` for regression). trainforge's MLP is written from its weights after its
    converted preprocessing (trainforge.onnx_export.mlp), CatBoost's trees from CatBoost's own
    ONNX writer (trainforge.onnx_export.catboost)."""
    from skl2onnx import convert_sklearn

    _register()
    network, append = _own_graph(pipeline[-1])
    pipeline, scaler = _target_scaling(pipeline)
    fixed = _fixed(copy.deepcopy(pipeline[:-1] if network is not None else pipeline))
    options = {id(fixed): {"zipmap": False}} if classification and network is None else None
    types = input_types(schema)
    try:
        graph = convert_sklearn(
            fixed,
            initial_types=types,
            target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
            options=options,
        )
        graph = _named(graph, [name for name, _ in types])
        if network is not None:
            return append(graph, network, classification)
        return _rescaled(graph, scaler) if scaler is not None else graph
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - a converter's refusal, said in one line
        final = type(pipeline[-1]).__name__
        message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise DataError(
            f"export: {final} cannot be converted to ONNX ({type(exc).__name__}: {message})"
        ) from None


def _own_graph(final):
    """``(estimator, append)`` for a final step whose graph trainforge writes itself after the
    converted preprocessing (``append(prep, estimator, classification)``), else ``(None,
    None)``."""
    from trainforge.models.boosting import _CatBoost
    from trainforge.models.neural import MLPClassifier, MLPRegressor
    from trainforge.onnx_export.catboost import with_catboost
    from trainforge.onnx_export.mlp import with_network

    if isinstance(final, (MLPClassifier, MLPRegressor)):
        return final, with_network
    if isinstance(final, _CatBoost):
        return final, with_catboost
    return None, None


def _target_scaling(pipeline):
    """A pipeline ending in ``TransformedTargetRegressor`` (standardised target: the SVMs) as
    the pipeline ending in its regressor, and the fitted target scaler (else None)."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    final = pipeline[-1]
    if not isinstance(final, TransformedTargetRegressor):
        return pipeline, None
    if not isinstance(final.transformer_, StandardScaler) or final.func is not None:
        raise DataError("export: only a standardised target has an ONNX form here")
    return Pipeline([*pipeline.steps[:-1], ("model", final.regressor_)]), final.transformer_


def _rescaled(graph, scaler):
    """The regressor's standardised output scaled back to the target's units."""
    import numpy as np
    from onnx import helper, numpy_helper

    output = graph.graph.output[0]
    inner = output.name + "_standardised"
    for node in graph.graph.node:
        node.output[:] = [inner if n == output.name else n for n in node.output]
    for name, value in (("target_scale", scaler.scale_), ("target_mean", scaler.mean_)):
        array = np.asarray(value, dtype=np.float32).reshape(1, -1)
        graph.graph.initializer.append(numpy_helper.from_array(array, name))
    graph.graph.node.extend(
        [
            helper.make_node("Mul", [inner, "target_scale"], [inner + "_scaled"]),
            helper.make_node("Add", [inner + "_scaled", "target_mean"], [output.name]),
        ]
    )
    return graph


def _named(graph, names: list[str]):
    """The graph with its inputs named exactly as the columns (skl2onnx turns ``-`` and other
    characters into ``_``), in the same order."""
    inputs = list(graph.graph.input)
    if len(inputs) != len(names):
        raise DataError(f"export: the graph has {len(inputs)} inputs for {len(names)} columns")
    renamed = {i.name: name for i, name in zip(inputs, names) if i.name != name}
    for value in inputs:
        value.name = renamed.get(value.name, value.name)
    for node in graph.graph.node:
        node.input[:] = [renamed.get(n, n) for n in node.input]
    return graph


def _fixed(estimator):
    """The copy skl2onnx converts faithfully (see the module doc), changed in place."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import FeatureUnion, Pipeline

    if isinstance(estimator, Pipeline):
        estimator.steps = [(name, _fixed(step)) for name, step in estimator.steps]
    elif isinstance(estimator, ColumnTransformer):
        estimator.transformers_ = [
            (name, _fixed(step) if not isinstance(step, str) else step, columns)
            for name, step, columns in estimator.transformers_
        ]
    elif _booster_kind(estimator) is not None:
        return _wrapped_booster(estimator)
    elif isinstance(estimator, SimpleImputer):
        if estimator.statistics_.dtype == object:  # strings: skl2onnx compares with ""
            estimator.missing_values = ""
        if estimator.add_indicator and estimator.indicator_ is not None:
            features = estimator.indicator_.features_
            estimator.add_indicator, estimator.indicator_ = False, None
            union = FeatureUnion([("values", estimator), ("missing", MissingColumns(features))])
            union.transformer_list = [("values", estimator), ("missing", MissingColumns(features))]
            return union
    return estimator


def _booster_kind(estimator) -> str | None:
    from trainforge.models.boosting import _LightGBM, _XGBoost

    if isinstance(estimator, _LightGBM):
        return "lightgbm"
    if isinstance(estimator, _XGBoost):
        return "xgboost"
    return None


def _wrapped_booster(estimator):
    """onnxmltools' stand-in for a raw booster (trainforge keeps the trees up to the best
    round only, so the booster is the whole model), as a classifier or a regressor."""
    task = "classification" if hasattr(estimator, "classes_") else "regression"
    return _booster_classes()[_booster_kind(estimator), task](estimator.booster_)


_BOOSTERS: dict = {}


def _booster_classes() -> dict:
    """``{(library, task): class}``: onnxmltools' wrapped boosters, the classifiers marked as
    such so that skl2onnx gives them a label and probabilities."""
    if not _BOOSTERS:
        from onnxmltools.convert.lightgbm._parse import WrappedBooster as LightGBMBooster
        from onnxmltools.convert.xgboost._parse import WrappedBooster as XGBoostBooster
        from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

        for kind, base in (("lightgbm", LightGBMBooster), ("xgboost", XGBoostBooster)):
            for task, mixin in (
                ("classification", ClassifierMixin),
                ("regression", RegressorMixin),
            ):
                name = f"{kind.title()}{task.title()}Booster"
                _BOOSTERS[kind, task] = type(name, (mixin, BaseEstimator, base), {})
    return _BOOSTERS


_REGISTERED = False


def _register() -> None:
    """skl2onnx converters for trainforge's own pieces (once per process): the indicator
    stand-in, and trainforge's histogram boosting and forest classes under their parents'
    converters (they only add compact saving)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from skl2onnx import update_registered_converter
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from sklearn import ensemble

    from trainforge.models import forest
    from trainforge.models.hgb import HGBClassifier, HGBRegressor

    update_registered_converter(
        MissingColumns, "TrainforgeMissingColumns", _indicator_shape, _indicator_converter
    )
    _register_boosters(update_registered_converter)
    ours = {
        HGBClassifier: ensemble.HistGradientBoostingClassifier,
        HGBRegressor: ensemble.HistGradientBoostingRegressor,
        **{getattr(forest, name): getattr(ensemble, name) for name in forest.CLASSES},
    }
    for mine, parent in ours.items():
        sklearn_operator_name_map[mine] = sklearn_operator_name_map[parent]
    _REGISTERED = True


def _register_boosters(update) -> None:
    """LightGBM's and XGBoost's raw boosters through onnxmltools' converters."""
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx._parse import _parse_sklearn_classifier
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    converters = {"lightgbm": convert_lightgbm, "xgboost": convert_xgboost}
    options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    for (kind, task), cls in _booster_classes().items():
        classifier = task == "classification"
        update(
            cls,
            f"Trainforge{cls.__name__}",
            calculate_linear_classifier_output_shapes
            if classifier
            else calculate_linear_regressor_output_shapes,
            converters[kind],
            options=options if classifier else None,
            parser=_parse_sklearn_classifier if classifier else None,
        )


def _indicator_shape(operator) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    width = len(operator.raw_operator.features_)
    operator.outputs[0].type = FloatTensorType([operator.inputs[0].get_first_dimension(), width])


def _indicator_converter(scope, operator, container) -> None:
    from onnx import TensorProto
    from skl2onnx.algebra.onnx_ops import OnnxCast, OnnxGather, OnnxIsNaN

    features = operator.raw_operator.features_
    picked = OnnxGather(operator.inputs[0], features, axis=1, op_version=OPSET)
    flags = OnnxCast(
        OnnxIsNaN(picked, op_version=OPSET),
        to=TensorProto.FLOAT,
        op_version=OPSET,
        output_names=operator.outputs[:1],
    )
    flags.add_to(scope, container)
