"""``trainforge export``: a model as one ONNX graph, verified against the Python model before it
is written (docs/export.md).

    trainforge export RUN_OR_MODEL -o model.onnx

writes ``model.onnx`` and ``model.onnx.json`` (its manifest: source, families, opset, inputs,
outputs, classes, verification figures, sha256). A graph that does not match the Python model
within the tolerance is never written: the export is refused in one line naming the family and
the largest difference.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from trainforge.errors import DataError

# Families whose fitted pipelines skl2onnx converts (with trainforge's fixes): the rest are
# refused before conversion with this list in the message.
EXPORTABLE = (
    "logistic_regression",
    "linear_regression",
    "ridge",
    "lasso",
    "elastic_net",
    "naive_bayes",
    "decision_tree",
    "random_forest",
    "extra_trees",
    "hist_gradient_boosting",
    "lightgbm",
    "xgboost",
    "catboost",
    "svm",
    "linear_svm",
    "mlp",
    "cnn",
    "rnn",
    "transformer",
    "inception_time",
)
# Why some families are not in EXPORTABLE (said when an export of one is refused).
NOT_EXPORTABLE = {
    "knn": "its float32 distances change which rows are neighbours: differences up to 0.91 "
    "on adult",
    "baseline": "skl2onnx has no converter for DummyClassifier",
    "rocket": "its thousands of random dilated kernels would be a graph of thousands of "
    "convolutions",
}


def export(
    source, out: str | Path, rows: pd.DataFrame | None = None, features: pd.DataFrame | None = None
) -> dict:
    """Export the best model of a run folder (or a model bundle folder) to ``out`` as ONNX.

    Args:
        rows: raw rows to verify on (by default the run's training data, read through the
            model's schema).
        features: instead of ``rows``, rows already read through the schema (a run's data).

    Returns:
        the manifest written beside the file.

    Raises:
        DataError: a family with no ONNX form, or a graph that does not match the model.
    """
    from trainforge.bundle import load_bundle
    from trainforge.data.features import feature_frame
    from trainforge.onnx_export import nets
    from trainforge.onnx_export.combine import joined
    from trainforge.onnx_export.convert import ML_OPSET, OPSET
    from trainforge.onnx_export.verify import check_rows, feeds, tolerance, verify

    folder, run = _model_folder(Path(source))
    model = load_bundle(folder)
    parts = _parts(model)
    networks = _networks(parts)
    classes = None if model.task == "regression" else list(model.classes)
    converted = [(_graph(part, classes is not None, networks), w) for part, w in parts]
    graph = joined(converted, classes, getattr(model, "threshold", None))
    if features is None:
        data = rows if rows is not None else _training_rows(run, model)
        features = feature_frame(data, model.schema)
    if networks:
        features = nets.check_rows(features, parts[0][0])
        inputs = nets.feeds(parts[0][0], features)
    else:
        features = check_rows(features, model.schema)
        inputs = feeds(features, model.schema)
    payload = graph.SerializeToString()
    checked = verify(model, payload, features, inputs, tolerance(p.family for p, _ in parts))
    if not checked.passed:
        raise DataError(_refusal(checked, parts, converted, classes, features, inputs))
    manifest = {
        "format": "onnx",
        "source": str(folder),
        "candidate": model.about.get("candidate"),
        "families": sorted({p.family for p, _ in parts}),
        "parts": len(parts),
        "opset": {"": OPSET, "ai.onnx.ml": ML_OPSET},
        "inputs": [_described(i) for i in graph.graph.input],
        "outputs": [o.name for o in graph.graph.output],
        "classes": [str(c) for c in classes] if classes is not None else None,
        "verification": checked.record(),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    tokenizer = nets.tokenizer_json(parts[0][0]) if networks else None
    if tokenizer is not None:
        manifest["tokenizer"] = f"{Path(out).name}.tokenizer.json"
        manifest["tokens"] = int(graph.graph.input[0].type.tensor_type.shape.dim[1].dim_value)
    _write(Path(out), payload, manifest, tokenizer)
    return manifest


def _networks(parts) -> bool:
    """Whether the parts are image or sequence nets (one array input), never mixed with
    families that read table columns."""
    from trainforge.onnx_export.nets import is_net

    found = {is_net(part) for part, _ in parts}
    if len(found) > 1:
        raise DataError(
            "export: an ensemble of nets and models on table columns has no one ONNX input "
            "here; export a member instead (its folder under candidates/<name>/model)"
        )
    return found == {True}


def _graph(part, classification: bool, network: bool):
    from trainforge.onnx_export.convert import OPSET, pipeline_graph
    from trainforge.onnx_export.nets import net_graph

    if network:
        return net_graph(part.pipeline[-1], classification, OPSET)
    return pipeline_graph(part.pipeline, part.schema, classification)


def _refusal(checked, parts, converted, classes, features, inputs) -> str:
    """One line: the families whose own graphs differ (checked one by one only now), the
    largest difference, and what to do."""
    from trainforge.onnx_export.combine import joined
    from trainforge.onnx_export.verify import verify

    def differs(part, graph) -> bool:
        alone = joined([(graph, 1.0)], classes).SerializeToString()
        return not verify(part, alone, features, inputs, checked.tolerance).passed

    culprits = sorted(
        {part.family for (part, _), (one, _) in zip(parts, converted) if differs(part, one)}
    ) or sorted({p.family for p, _ in parts})
    return (
        f"export refused: the ONNX graph of {', '.join(culprits)} differs from the model by up "
        f"to {checked.max_difference:.3g} (tolerance {checked.tolerance:g}; labels agree on "
        f"{checked.labels_agree:.1%} of {checked.rows} check rows); nothing was written"
        f"{_hint(culprits)}"
    )


def _write(out: Path, payload: bytes, manifest: dict, tokenizer: str | None = None) -> None:
    """The manifest (and a text model's tokenizer), then the graph under its final name in one
    rename: a file named ``model.onnx`` is always whole."""
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".partial")
    temporary.write_bytes(payload)
    if tokenizer is not None:
        out.with_name(manifest["tokenizer"]).write_text(tokenizer)
    Path(str(out) + ".json").write_text(json.dumps(manifest, indent=1))
    temporary.replace(out)


def _hint(families: list[str]) -> str:
    if "hist_gradient_boosting" in families:
        return (
            " (skl2onnx converts its native categorical splits wrongly; on a table with "
            "categories export another family, such as random_forest)"
        )
    return ""


def _model_folder(source: Path) -> tuple[Path, Path | None]:
    """The bundle to export and the run folder it came from (None for a bare bundle)."""
    if (source / "bundle.json").is_file():
        run = source.parents[2] if source.parent.parent.name == "candidates" else None
        return source, run
    manifest = source / "manifest.json"
    if not manifest.is_file():
        raise DataError(f"export: {source} is neither a run folder nor a model bundle folder")
    best = (json.loads(manifest.read_text()).get("best") or {}).get("candidate")
    if not isinstance(best, str):
        raise DataError(f"export: {source} has no best model (did the run complete?)")
    from trainforge.bundle_checks import inside

    return inside(source / "candidates", best) / "model", source


def _parts(model) -> list[tuple[object, float]]:
    """The plain models whose weighted outputs make ``model``'s."""
    from trainforge.model import BaggedModel, EnsembleModel, Model, StackedModel

    if isinstance(model, StackedModel) or getattr(model, "meta", None) is not None:
        raise DataError("export: a stacked model has no ONNX form here; export a member instead")
    if isinstance(model, EnsembleModel):
        total = sum(model.weights.values())
        return [
            (part, weight * model.weights[name] / total)
            for name, member in model.members.items()
            for part, weight in _parts(member.loaded())
        ]
    if isinstance(model, Model) and model.family not in EXPORTABLE:  # bagged ones too
        raise DataError(
            f"export: {model.family} has no ONNX export{_why_not(model.family)}; families that "
            f"export: {', '.join(EXPORTABLE)} (retrain with models: [...] to choose one)"
        )
    if isinstance(model, BaggedModel):
        return [(fold, 1.0 / len(model.folds)) for fold in model.folds]
    return [(model, 1.0)]


def _why_not(family: str) -> str:
    return f" ({NOT_EXPORTABLE[family]})" if family in NOT_EXPORTABLE else " yet"


def _training_rows(run: Path | None, model) -> pd.DataFrame:
    if run is None:
        raise DataError("export: a bare model bundle needs rows to verify on (pass rows=...)")
    from trainforge.data.read import read_table

    spec = json.loads((run / "manifest.json").read_text()).get("inputs") or {}
    path = (spec.get("train") or {}).get("path") if isinstance(spec.get("train"), dict) else None
    if not path or not Path(path).is_file():
        raise DataError(
            f"export: the run's training file is not at hand ({path}); pass rows to verify on"
        )
    from trainforge.data.images import is_image_source, read_images

    if is_image_source(path):
        return read_images(path, model.schema.target)
    return read_table(Path(path))


def _described(value) -> dict:
    from onnx import TensorProto

    kind = value.type.tensor_type.elem_type
    names = {TensorProto.STRING: "string", TensorProto.INT64: "int64"}
    shape = [d.dim_value or d.dim_param or None for d in value.type.tensor_type.shape.dim]
    return {"name": value.name, "type": names.get(kind, "float32"), "shape": shape}
