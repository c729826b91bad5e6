"""Saving and loading trained models with no pickle on the load path.

A bundle is a folder:

    bundle.json   what the model is: format, family, schema, versions, sha256 of each file
    model.skops   the fitted scikit-learn pipeline, in skops' format
    estimator/    only for estimators that save themselves: neural nets (JSON + safetensors)
                  and boosting libraries (JSON + the library's own model file), while
                  model.skops then holds the preprocessing steps

Loading checks each file's sha256 against bundle.json, then lets skops load only the types in
``TRUSTED_TYPES``; anything else in the file (a pickle payload, an unknown class) is refused.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import uuid
from pathlib import Path

from trainforge import __version__
from trainforge.atomic import fsync_dir, fsync_tree
from trainforge.data.read import file_sha256
from trainforge.data.schema import Schema
from trainforge.errors import BundleError
from trainforge.model import Model

FORMAT = "trainforge.bundle/1"
ENSEMBLE_FORMAT = "trainforge.ensemble/1"  # member bundles plus weights (trainforge.ensemble)
MODEL_FILE = "model.skops"
INFO_FILE = "bundle.json"
ESTIMATOR_DIR = "estimator"

# Estimators that save themselves as JSON plus tensors or a native model file
# (``save_files`` / ``load_files``) instead of going through skops; the bundle then holds the
# preprocessing in model.skops and the estimator in estimator/. Only these classes are ever
# rebuilt on load.
SELF_SAVING = {
    "trainforge.models.neural.MLPClassifier",
    "trainforge.models.neural.MLPRegressor",
    *(
        f"trainforge.models.boosting.{library}{kind}"
        for library in ("XGBoost", "LightGBM", "CatBoost")
        for kind in ("Classifier", "Regressor")
    ),
    "trainforge.models.umap_reducer.UMAPReducer",
    "trainforge.models.image.CNNClassifier",
    "trainforge.models.sequence.RNNClassifier",
    "trainforge.models.sequence.RNNRegressor",
    "trainforge.models.sequence.TransformerClassifier",
    "trainforge.models.sequence.TransformerRegressor",
}

# Every type a trainforge pipeline may contain beyond what skops trusts by default (it trusts
# scikit-learn's estimators and builtin containers). Explicit on purpose: the tests save and
# reload every registered family with exactly this list, and saving refuses anything else.
TRUSTED_TYPES = [
    "functools.partial",  # with check_array, inside histogram gradient boosting
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.model_selection._split.KFold",  # target encoding's seeded folds
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.tree._tree.Tree",
    "sklearn.utils.validation.check_array",
]


def save_bundle(model: Model, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``model`` to the folder ``path`` atomically (it must not exist yet)."""
    import skops.io as sio

    path = Path(path)
    if path.exists():
        raise BundleError(f"{path} already exists; choose a new folder for the model")
    if model.family in ("ensemble", "stacking"):
        from trainforge.ensemble import save_ensemble

        return save_ensemble(model, path, extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    staging.mkdir()
    try:
        pipeline, estimator = _split_self_saving(model.pipeline)
        sio.dump(pipeline, staging / MODEL_FILE)
        _refuse_untrusted(staging / MODEL_FILE, "cannot be saved safely")
        names = [MODEL_FILE]
        if estimator is not None:
            written = estimator.save_files(staging / ESTIMATOR_DIR)
            names += [f"{ESTIMATOR_DIR}/{name}" for name in written]
        info = {
            "format": FORMAT,
            "family": model.family,
            "schema": model.schema.to_dict(),
            "versions": _versions(),
            "files": {name: file_sha256(staging / name) for name in names},
            "threshold": getattr(model, "threshold", None),  # binary models only
            **(extra or {}),
        }
        if estimator is not None:
            info["estimator"] = _dotted(type(estimator))
        (staging / INFO_FILE).write_text(json.dumps(info, indent=2, default=str) + "\n")
        fsync_tree(staging)
        os.replace(staging, path)
        fsync_dir(path.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def load_bundle(path: str | Path) -> Model:
    """Load a bundle folder, refusing files that changed or hold untrusted types."""
    import skops.io as sio

    path = Path(path)
    info = read_info(path)
    if info["format"] == ENSEMBLE_FORMAT:
        from trainforge.ensemble import load_ensemble

        return load_ensemble(path, info)
    for name, expected in info.get("files", {}).items():
        if not (path / name).is_file():
            raise BundleError(f"{path}: {name} is missing; the bundle is incomplete")
        if file_sha256(path / name) != expected:
            raise BundleError(
                f"{path / name} does not match the sha256 recorded when it was saved; "
                "refusing to load a changed model file"
            )
    model_file = path / MODEL_FILE
    _refuse_untrusted(model_file, "refusing to load it")
    pipeline = sio.load(model_file, trusted=TRUSTED_TYPES)
    if "estimator" in info:
        pipeline = _join_self_saving(pipeline, info["estimator"], path / ESTIMATOR_DIR)
    schema = Schema.from_dict(info["schema"])
    if schema.task in ("clustering", "reduction"):
        from trainforge.unsupervised.model import UnsupervisedModel

        return UnsupervisedModel(pipeline, schema, info["family"])
    return Model(pipeline, schema, info["family"], info.get("threshold"))


def _split_self_saving(pipeline):
    """``(preprocessing, estimator)`` when the final estimator saves itself, else
    ``(pipeline, None)``."""
    final = pipeline[-1]
    if _dotted(type(final)) in SELF_SAVING:
        return pipeline[:-1], final
    return pipeline, None


def _join_self_saving(features, dotted: str, folder: Path):
    from sklearn.pipeline import Pipeline

    if dotted not in SELF_SAVING:
        raise BundleError(f"{folder.parent}: estimator type {dotted} is not one trainforge loads")
    module, _, name = dotted.rpartition(".")
    estimator = getattr(importlib.import_module(module), name).load_files(folder)
    return Pipeline([*features.steps, ("model", estimator)])


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _refuse_untrusted(model_file: Path, consequence: str) -> None:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=model_file)
    except Exception as exc:  # skops raises zipfile/json errors for files it cannot parse
        kind = type(exc).__name__
        raise BundleError(f"{model_file} is not a skops model file ({kind})") from None
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise BundleError(
            f"{model_file} holds types trainforge does not trust ({', '.join(refused)}); "
            f"{consequence}"
        )


def read_info(path: Path) -> dict:
    if not (path / INFO_FILE).is_file():
        raise BundleError(f"{path} is not a trainforge model (no {INFO_FILE})")
    try:
        info = json.loads((path / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path / INFO_FILE} cannot be read ({exc})") from None
    if info.get("format") not in (FORMAT, ENSEMBLE_FORMAT):
        raise BundleError(f"{path}: bundle format {info.get('format')!r} is not {FORMAT!r}")
    return info


def _versions() -> dict:
    from importlib.metadata import version

    names = ["scikit-learn", "numpy", "pandas", "scipy", "skops"]
    return {"trainforge": __version__, **{name: version(name) for name in names}}
