"""A Dataset: the typed features, encoded target, schema and validation folds of one run."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from trainforge.data.features import feature_frame, to_number
from trainforge.data.images import image_shape_of, image_tables, is_image_source
from trainforge.data.modality import resolve as resolve_modality
from trainforge.data.read import file_sha256, frame_sha256, read_table
from trainforge.data.schema import Schema, infer_schema
from trainforge.errors import DataError
from trainforge.spec import DataSpec


@dataclass
class Fold:
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_valid: pd.DataFrame
    y_valid: np.ndarray


@dataclass
class Dataset:
    """Everything a candidate needs. Targets are class codes ``0..K-1`` or floats.

    Attributes:
        folds: one fold for a holdout split or a validation file, k for cross-validation,
            where a candidate is the average of its k fold models (see ``bagged``).
        fingerprints: sha256 of every input file (or of in-memory frames).
    """

    schema: Schema
    X: pd.DataFrame
    y: np.ndarray
    folds: list[Fold]
    fingerprints: dict[str, str]
    notices: list[str] = field(default_factory=list)
    image_shape: tuple[int, int, int] | None = None  # (height, width, channels) for images

    @property
    def task(self) -> str:
        return self.schema.task

    @property
    def bagged(self) -> bool:
        """Cross-validated: each candidate keeps its k fold models and predicts their average,
        and its validation predictions are out-of-fold predictions for every training row."""
        return len(self.folds) > 1

    def splits(self) -> Iterator[Fold]:
        return iter(self.folds)


def load_dataset(
    spec: DataSpec,
    task: str,
    seed: int,
    train: pd.DataFrame | None = None,
    validation: pd.DataFrame | None = None,
) -> Dataset:
    """Read, type and split the data a spec names (or the frames given in Python)."""
    roles = {k: v.value for k, v in spec.columns.items()}
    images = task == "image_classification" or (train is None and is_image_source(spec.train, task))
    if images:  # images become pixel tables (see trainforge.data.images)
        train, validation, task, roles = image_tables(spec, train, validation)
    read_notes: list[str] = []
    train, train_id = _table(spec, spec.train, train, "train", read_notes)
    modal_notices: list[str] = []
    if not images:  # text columns and series (see trainforge.data.modality)
        task, roles, modal_notices = resolve_modality(train, spec.target, roles, task)
    schema, notices = infer_schema(train, spec.target, roles, task, spec.positive_class)
    notices = read_notes + modal_notices + notices
    keep = _rows_with_target(train, spec.target, notices)
    X = feature_frame(train, schema).loc[keep]
    X.index = np.flatnonzero(keep.to_numpy())  # each row's position in the training data
    y = encode_target(train[spec.target].loc[keep], schema)
    fingerprints = {"train": train_id}
    valid_frame, valid_id = _table(spec, spec.validation, validation, "validation", read_notes)
    if valid_frame is not None:
        fingerprints["validation"] = valid_id
        if spec.target not in valid_frame.columns:
            raise DataError(f"validation data has no target column {spec.target!r}")
        keep = _rows_with_target(valid_frame, spec.target, notices)
        X_valid = feature_frame(valid_frame, schema).loc[keep]
        X_valid.index = np.flatnonzero(keep.to_numpy())  # positions in the validation data
        folds = [
            Fold(
                X,
                y,
                X_valid,
                encode_target(valid_frame[spec.target].loc[keep], schema),
            )
        ]
    elif spec.split.strategy == "cv":
        _enough_of_each_class(y, schema)
        folds = _cv_folds(X, y, schema.task, spec.split.folds, seed)
    else:
        _enough_of_each_class(y, schema)
        tr, va = holdout(y, schema.task, spec.split.validation_fraction, seed, notices)
        folds = [_fold(X, y, tr, va)]
    shape = image_shape_of([c.name for c in schema.columns]) if images else None
    return Dataset(schema, X, y, folds, fingerprints, notices, shape)


def with_folds(dataset: Dataset, folds: int, seed: int) -> Dataset:
    """The same data scored by ``folds``-fold cross-validation (bagged fold models)."""
    return replace(dataset, folds=_cv_folds(dataset.X, dataset.y, dataset.task, folds, seed))


def _cv_folds(X, y, task: str, folds: int, seed: int) -> list[Fold]:
    return [_fold(X, y, tr, va) for tr, va in kfold(y, task, folds, seed)]


def encode_target(y: pd.Series, schema: Schema) -> np.ndarray:
    if schema.task == "regression":
        return to_number(y, schema.target).to_numpy()
    codes = {label: code for code, label in enumerate(schema.classes)}
    if pd.api.types.is_float_dtype(y) and all(isinstance(c, int) for c in schema.classes):
        y = y.astype("int64")
    encoded = y.map(codes)
    unknown = encoded.isna()
    if unknown.any():
        raise DataError(
            f"target {schema.target!r} holds {y[unknown].iloc[0]!r}, a class the training data "
            f"does not have (classes: {', '.join(map(repr, schema.classes))})"
        )
    return encoded.to_numpy(dtype=np.int64)


def _enough_of_each_class(y: np.ndarray, schema: Schema) -> None:
    """A class with a single row can be in the training rows or the validation rows, never
    both: scores would look perfect (or be undefined) without meaning anything."""
    if schema.task == "regression":
        return
    counts = np.bincount(y, minlength=len(schema.classes))
    if counts.min() < 2:
        label = schema.classes[int(counts.argmin())]
        raise DataError(
            f"class {label!r} of {schema.target!r} has {int(counts.min())} row(s): too few to "
            "both train on and validate (at least 2, and far more to learn it); add rows of it, "
            "or leave it out"
        )


def holdout(y, task: str, fraction: float, seed: int, notices: list[str]):
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    stratify = y if task != "regression" else None
    if stratify is not None and np.bincount(y).min() < 2:
        notices.append("a class has fewer than 2 rows: the validation split is not stratified")
        stratify = None
    train, valid = train_test_split(rows, test_size=fraction, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(valid)


def kfold(y, task: str, folds: int, seed: int):
    from sklearn.model_selection import KFold, StratifiedKFold

    if task == "regression":
        return list(KFold(folds, shuffle=True, random_state=seed).split(y))
    smallest = int(np.bincount(y).min())
    if smallest < folds:
        raise DataError(
            f"split.folds is {folds} but the smallest class has {smallest} row(s); "
            f"use at most {max(smallest, 2)} folds or a holdout split"
        )
    return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def _fold(X: pd.DataFrame, y: np.ndarray, train, valid) -> Fold:
    return Fold(X.iloc[train], y[train], X.iloc[valid], y[valid])


def _table(spec: DataSpec, path: Path | None, frame, role: str, notes: list[str]):
    if frame is not None:
        return frame, f"frame:{frame_sha256(frame)}"
    if path is None:
        if role == "train":
            raise DataError(f"data.{role}: no {role} data given; name a file or pass a frame")
        return None, None
    table = read_table(path, spec.sep, spec.decimal, notes)
    return table, f"sha256:{file_sha256(path)}"


def _rows_with_target(frame: pd.DataFrame, target: str, notices: list[str]) -> pd.Series:
    """A mask of the rows that have a target value; the others are left out with a notice.

    Features are typed on every row before the mask is applied, so an error about a cell names
    its row in the file, not in the table left after dropping rows.
    """
    missing = frame[target].isna()
    if missing.all():
        raise DataError(f"target {target!r} has no values; every row is missing it")
    if missing.any():
        notices.append(f"{int(missing.sum())} row(s) without a target value were left out")
    return ~missing
