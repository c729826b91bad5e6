"""Saving and loading trained models with no pickle on the load path: every on-disk model
format lives here.

A bundle is a folder:

    bundle.json   what the model is: format, family, schema, versions, sha256 of each file
    model.skops   the fitted scikit-learn pipeline, in skops' format
    estimator/    only for estimators that save themselves: neural nets (JSON + safetensors)
                  and boosting libraries (JSON + the library's own model file), while
                  model.skops then holds the preprocessing steps

A cross-validated (bagged) model is a folder of its fold models, ``folds/0``, ``folds/1``, ...,
each a bundle as above; an ensemble is a folder of its members, ``members/<candidate>``, each a
bundle of either kind, plus the stacked model's meta-learner (``meta.skops``) when it has one;
a second-layer stack is its members plus ``top``, the bagged model that reads their outputs.

Loading checks each file's sha256 against bundle.json, then lets skops load only the types in
``TRUSTED_TYPES``; anything else in the file (a pickle payload, an unknown class) is refused.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

from trainforge import __version__
from trainforge.atomic import fsync_dir, fsync_tree
from trainforge.bundle_checks import check_trees, inside, no_links, read_key, verify
from trainforge.data.read import file_sha256
from trainforge.data.schema import Schema
from trainforge.errors import BundleError
from trainforge.model import BaggedModel, EnsembleModel, Model, StackedModel
from trainforge.models.compact import dotted
from trainforge.rundir import CANDIDATE_NAME
from trainforge.skops_import import skops_io

FORMAT = "trainforge.bundle/1"
BAGGED_FORMAT = "trainforge.bagged/1"  # fold bundles, averaged
ENSEMBLE_FORMAT = "trainforge.ensemble/1"  # member bundles plus weights (trainforge.ensemble)
STACKED_FORMAT = "trainforge.stacked/1"  # member bundles plus a second layer (trainforge.stacking)
FORMATS = (FORMAT, BAGGED_FORMAT, ENSEMBLE_FORMAT, STACKED_FORMAT)
MODEL_FILE = "model.skops"
INFO_FILE = "bundle.json"
ESTIMATOR_DIR = "estimator"
META_FILE = "meta.skops"
# A member's folder name is its candidate name: nothing that could leave the bundle's folder.
MEMBER_NAME = CANDIDATE_NAME

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
    "trainforge.data.preprocess.TextFeatures",  # free text in a table: TF-IDF + SVD
]


def save_bundle(
    model: Model, path: str | Path, extra: dict | None = None, saved: dict | None = None
) -> Path:
    """Write ``model`` to the folder ``path`` atomically (it must not exist yet).

    Args:
        extra: more fields for bundle.json (such as the candidate's name).
        saved: for an ensemble, ``{member name: folder}`` of members already saved as bundles
            (a run's candidates): they are copied instead of written again.
    """
    path = Path(path)
    if path.exists():
        raise BundleError(f"{path} already exists; choose a new folder for the model")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    staging.mkdir()
    try:
        info = {
            "family": model.family,
            "schema": model.schema.to_dict(),
            "versions": _versions(),
            "threshold": getattr(model, "threshold", None),  # binary models only
        }
        if isinstance(model, StackedModel):
            info.update(_write_members(model.members, staging, saved or {}))
            save_bundle(model.top, staging / "top")
            info["format"] = STACKED_FORMAT
        elif isinstance(model, EnsembleModel):
            info.update(_write_ensemble(model, staging, saved or {}))
        elif isinstance(model, BaggedModel):
            info.update(_write_bagged(model, staging))
        else:
            info.update(_write_pipeline(model.pipeline, staging))
        info.update(extra or {})
        (staging / INFO_FILE).write_text(json.dumps(info, indent=2, default=str) + "\n")
        fsync_tree(staging)
        os.replace(staging, path)
        fsync_dir(path.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


class SavedModel(Model):
    """A model saved as a bundle folder, loaded on first use. An ensemble built from a run's
    saved candidates holds these, so building and saving it (which copies the folders) loads
    no member; predicting loads them."""

    def __init__(self, path: Path):
        self.path = Path(path)
        info = read_info(self.path)
        super().__init__(None, _schema(self.path, info), info["family"])
        self._loaded: Model | None = None

    @property
    def has_proba(self) -> bool:
        return self.loaded().has_proba

    @property
    def in_memory(self) -> Model | None:
        """The model if it has been loaded, else None."""
        return self._loaded

    def loaded(self) -> Model:
        if self._loaded is None:
            self._loaded = load_bundle(self.path)
        return self._loaded

    def raw_predict(self, features):
        return self.loaded().raw_predict(features)


def _write_pipeline(pipeline, folder: Path) -> dict:
    """model.skops (and estimator/ for a self-saving estimator); bundle.json's fields."""
    sio = skops_io()

    pipeline, estimator = _split_self_saving(pipeline)
    sio.dump(pipeline, folder / MODEL_FILE)
    _refuse_untrusted(folder / MODEL_FILE, "cannot be saved safely")
    names = [MODEL_FILE]
    if estimator is not None:
        written = estimator.save_files(folder / ESTIMATOR_DIR)
        names += [f"{ESTIMATOR_DIR}/{name}" for name in written]
    info = {"format": FORMAT, "files": {name: file_sha256(folder / name) for name in names}}
    if estimator is not None:
        info["estimator"] = dotted(type(estimator))
    return info


def _write_bagged(model: BaggedModel, folder: Path) -> dict:
    for index, fold in enumerate(model.folds):
        (folder / "folds" / str(index)).mkdir(parents=True)
        info = _write_pipeline(fold.pipeline, folder / "folds" / str(index))
        info.update(family=fold.family, schema=fold.schema.to_dict(), threshold=None)
        (folder / "folds" / str(index) / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return {"format": BAGGED_FORMAT, "folds": len(model.folds)}


def _write_ensemble(model: EnsembleModel, folder: Path, saved: dict) -> dict:
    info = {"format": ENSEMBLE_FORMAT, **_write_members(model.members, folder, saved)}
    info["weights"] = model.weights
    if model.meta is not None:
        sio = skops_io()

        sio.dump(model.meta, folder / META_FILE)
        info["meta_sha256"] = file_sha256(folder / META_FILE)
    return info


def _write_members(members: dict, folder: Path, saved: dict) -> dict:
    """members/<name>, each a bundle (linked from its saved folder when there is one)."""
    for name, member in members.items():
        _member_name(name, folder)
        source = member.path if isinstance(member, SavedModel) else saved.get(name)
        if source is not None and (Path(source) / INFO_FILE).is_file():
            _link_tree(Path(source), folder / "members" / name)
        else:
            save_bundle(member, folder / "members" / name, extra={"candidate": name})
    return {"members": list(members)}


def _link_tree(source: Path, target: Path) -> None:
    """Copy a saved bundle as hard links where the file system allows (its files are never
    written again, so sharing them is safe and costs no time or space), else as copies."""

    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


def load_bundle(path: str | Path, key=None, first_fold: bool = False, trust=None) -> Model:
    """Load a bundle folder, refusing files that changed or hold untrusted types, paths that
    leave the folder, symbolic links and malformed trees (trainforge.bundle_checks).

    Args:
        key: with a signing key (bytes, or a key file's path), the bundle must carry a valid
            signature made with it (``trainforge sign``).
        first_fold: load a bagged model as its first fold model only, in an ensemble or stack
            too (what the permutation importance measures: trainforge.artifacts.first_fold).
        trust: packages or full type names the bundle may hold beyond what trainforge
            trusts (your own estimators' classes; trainforge.models.external).
    """
    if trust:
        with trusting([trust] if isinstance(trust, str) else trust):
            return load_bundle(path, key, first_fold)
    path = Path(path)
    no_links(path)
    if key is not None:
        verify(path, read_key(key))
    info = read_info(path)
    model = _load(path, info, first_fold)
    about = {k: info[k] for k in ("candidate", "validation") if k in info}
    if isinstance(about.get("validation"), dict):
        model.about = about
    return model


def _load(path: Path, info: dict, first_fold: bool = False) -> Model:
    schema = _schema(path, info)
    if info["format"] == ENSEMBLE_FORMAT:
        return _load_ensemble(path, info, schema, first_fold)
    if info["format"] == STACKED_FORMAT:
        members = _load_members(path, info.get("members"), first_fold)
        top = load_bundle(path / "top", first_fold=first_fold)
        return StackedModel(members, top, schema, info.get("threshold"))
    if info["format"] == BAGGED_FORMAT:
        count = _fold_count(path, info)
        if first_fold:
            return _load_plain(path / "folds" / "0")
        folds = [_load_plain(path / "folds" / str(k)) for k in range(count)]
        return BaggedModel(folds, schema, info["family"], info.get("threshold"))
    if schema.task in ("clustering", "reduction"):
        from trainforge.unsupervised.model import UnsupervisedModel

        return UnsupervisedModel(_read_pipeline(path, info), schema, info["family"])
    if schema.task == "generation":
        from trainforge.generation.model import GenerativeModel

        return GenerativeModel(_read_pipeline(path, info), schema, info["family"])
    return Model(_read_pipeline(path, info), schema, info["family"], info.get("threshold"))


def _load_plain(path: Path) -> Model:
    info = read_info(path)
    if info["format"] != FORMAT:
        raise BundleError(f"{path}: a fold model must be a plain bundle, not {info['format']}")
    schema = _schema(path, info)
    return Model(_read_pipeline(path, info), schema, info["family"], None)


def _schema(path: Path, info: dict) -> Schema:
    """The bundle's schema; a malformed one refuses the bundle."""
    try:
        schema = Schema.from_dict(info["schema"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise BundleError(
            f"{path / INFO_FILE}: 'schema' is malformed; refusing the bundle"
        ) from None
    if not isinstance(info.get("family"), str):
        raise BundleError(f"{path / INFO_FILE}: 'family' must be a family's name")
    threshold = info.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not 0.0 <= threshold <= 1.0
    ):
        raise BundleError(f"{path / INFO_FILE}: 'threshold' must be a probability or null")
    return schema


def _fold_count(path: Path, info: dict) -> int:
    count = info.get("folds")
    if not isinstance(count, int) or not 2 <= count <= 50:
        raise BundleError(f"{path / INFO_FILE}: 'folds' must be a fold count from 2 to 50")
    return count


def _load_ensemble(path: Path, info: dict, schema: Schema, first_fold: bool) -> EnsembleModel:
    """Load the members (each checked as its own bundle) and combine them."""
    weights = info.get("weights")
    if not isinstance(weights, dict) or not weights:
        raise BundleError(f"{path / INFO_FILE}: 'weights' must name the ensemble's members")
    members = _load_members(path, list(weights), first_fold)
    weights = {str(k): float(v) for k, v in weights.items()}
    meta = _load_meta(path / META_FILE, info["meta_sha256"]) if info.get("meta_sha256") else None
    return EnsembleModel(members, weights, schema, info.get("threshold"), meta)


def _load_members(path: Path, names, first_fold: bool) -> dict[str, Model]:
    if not isinstance(names, list) or not names:
        raise BundleError(f"{path / INFO_FILE}: the bundle names no members")
    members = {}
    for name in names:
        folder = path / "members" / _member_name(name, path)
        if not folder.is_dir():
            raise BundleError(f"{path}: member {name} is missing; the model is incomplete")
        members[name] = load_bundle(folder, first_fold=first_fold)
    return members


def _member_name(name, path: Path) -> str:
    if not isinstance(name, str) or not MEMBER_NAME.match(name):
        raise BundleError(f"{path}: {name!r} is not a member name trainforge writes; refusing it")
    return name


def _load_meta(path: Path, expected: str):
    """The stacked model's meta-learner: a plain linear model in skops format, checked against
    its recorded sha256 and loaded with no types beyond scikit-learn's own."""

    if not path.is_file() or file_sha256(path) != expected:
        raise BundleError(f"{path} is missing or changed since it was saved; refusing to load it")
    return _load_skops(path, [])


def _read_pipeline(path: Path, info: dict):
    """The fitted pipeline of a plain bundle, its files checked first."""

    files = info.get("files")
    if not isinstance(files, dict) or MODEL_FILE not in files:
        raise BundleError(f"{path / INFO_FILE}: 'files' must list {MODEL_FILE} and its sha256")
    for name, expected in files.items():
        file = inside(path, name)
        if not file.is_file():
            raise BundleError(f"{path}: {name} is missing; the bundle is incomplete")
        if file_sha256(file) != expected:
            raise BundleError(
                f"{file} does not match the sha256 recorded when it was saved; "
                "refusing to load a changed model file"
            )
    pipeline = _load_skops(path / MODEL_FILE, TRUSTED_TYPES)
    if "estimator" in info:
        pipeline = _join_self_saving(pipeline, info["estimator"], path / ESTIMATOR_DIR)
    check_trees(pipeline)
    return pipeline


def _split_self_saving(pipeline):
    """``(preprocessing, estimator)`` when the final estimator saves itself, else
    ``(pipeline, None)``."""
    from trainforge.models.registry import self_saving_classes

    final = pipeline[-1]
    if dotted(type(final)) in self_saving_classes():
        return pipeline[:-1], final
    return pipeline, None


def _join_self_saving(features, class_name: str, folder: Path):
    from sklearn.pipeline import Pipeline

    from trainforge.models.registry import self_saving_classes

    if not isinstance(class_name, str) or class_name not in self_saving_classes():
        raise BundleError(
            f"{folder.parent}: estimator type {class_name} is not one trainforge loads"
        )
    if not folder.is_dir():
        raise BundleError(f"{folder.parent}: {ESTIMATOR_DIR}/ is missing; the bundle is incomplete")
    module, _, name = class_name.rpartition(".")
    try:
        estimator = getattr(importlib.import_module(module), name).load_files(folder)
    except BundleError:
        raise
    except Exception as exc:  # noqa: BLE001 - a crafted or broken file must only be refused
        message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise BundleError(
            f"{folder}: the estimator cannot be loaded ({type(exc).__name__}: {message}); "
            "refusing the bundle"
        ) from None
    return Pipeline([*features.steps, ("model", estimator)])


# Packages or type names trusted beyond TRUSTED_TYPES while a load or a run is in progress:
# ``load_bundle(trust=...)``, and a run trusts the packages of the estimators its spec names.
_TRUSTING: list[str] = []


@contextmanager
def trusting(names):
    """Trust ``names`` (packages such as ``"imblearn"``, or full type names) while inside."""
    added = [str(name) for name in names or ()]
    _TRUSTING.extend(added)
    try:
        yield
    finally:
        for name in added:
            _TRUSTING.remove(name)


def trusted_module(module: str) -> bool:
    """Whether the load in progress may import ``module`` (a builder's: trainforge never
    imports a module a saved model names unless its caller trusts it)."""
    return _caller_trusts(module)


def _caller_trusts(kind: str) -> bool:
    return any(kind == name or kind.startswith(name + ".") for name in _TRUSTING)


def _load_skops(model_file: Path, trusted: list[str]):
    """A skops file's object, refused (one parse: skops audits the types before it builds
    anything) when it holds types outside ``trusted`` (and what the caller trusts) or is no
    skops file."""
    sio = skops_io()
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        if _TRUSTING:
            found = sio.get_untrusted_types(file=model_file)
            trusted = [*trusted, *(kind for kind in found if _caller_trusts(kind))]
        return sio.load(model_file, trusted=trusted)
    except UntrustedTypesFoundException:
        refused = sorted(set(sio.get_untrusted_types(file=model_file)) - set(trusted))
        raise BundleError(
            f"{model_file} holds types trainforge does not trust ({', '.join(refused)}); "
            f"refusing to load it{_how_to_trust(refused)}"
        ) from None
    except Exception as exc:  # skops raises zipfile/json errors for files it cannot parse
        kind = type(exc).__name__
        raise BundleError(f"{model_file} is not a skops model file ({kind})") from None


def _refuse_untrusted(model_file: Path, consequence: str, trusted=TRUSTED_TYPES) -> None:
    sio = skops_io()

    try:
        untrusted = sio.get_untrusted_types(file=model_file)
    except Exception as exc:  # skops raises zipfile/json errors for files it cannot parse
        kind = type(exc).__name__
        raise BundleError(f"{model_file} is not a skops model file ({kind})") from None
    refused = sorted(k for k in set(untrusted) - set(trusted) if not _caller_trusts(k))
    if refused:
        raise BundleError(
            f"{model_file} holds types trainforge does not trust ({', '.join(refused)}); "
            f"{consequence}"
        )


def _how_to_trust(types: list[str]) -> str:
    """What to do when the types are yours (a package's classes, as named in the spec)."""
    names = sorted({kind.split(".")[0] for kind in types})
    if not names or names == ["trainforge"] or "builtins" in names:
        return ""
    listed = ", ".join(repr(name) for name in names)
    return (
        f"; if you trust them, load with trust=[{listed}] (trainforge predict --trust "
        f"{','.join(names)})"
    )


def read_info(path: Path) -> dict:
    if not (path / INFO_FILE).is_file():
        raise BundleError(f"{path} is not a trainforge model (no {INFO_FILE})")
    try:
        info = json.loads((path / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path / INFO_FILE} cannot be read ({exc})") from None
    if isinstance(info, dict) and not isinstance(info.get("schema"), dict):
        raise BundleError(f"{path / INFO_FILE}: 'schema' must describe the model's columns")
    if not isinstance(info, dict) or info.get("format") not in FORMATS:
        found = info.get("format") if isinstance(info, dict) else None
        raise BundleError(f"{path}: bundle format {found!r} is not one of {', '.join(FORMATS)}")
    return info


def _versions() -> dict:
    from importlib.metadata import version

    names = ["scikit-learn", "numpy", "pandas", "scipy", "skops"]
    return {"trainforge": __version__, **{name: version(name) for name in names}}
