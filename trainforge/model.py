"""A trained model as users meet it: raw rows in, predictions in the original labels out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trainforge.data.features import feature_frame
from trainforge.data.images import image_shape_of, images_frame, is_image_array
from trainforge.data.read import as_frame, read_table
from trainforge.data.schema import Schema
from trainforge.errors import DataError


class Model:
    """A fitted pipeline (preprocessing + estimator) with the schema it was trained through.

    Args:
        pipeline: a fitted scikit-learn Pipeline taking the schema's feature frame.
        schema: the training schema; prediction rows are read through it.
        family: the model family's name.
        threshold: for binary tasks, the probability of the second class from which it is
            predicted (tuned on validation data under class imbalance); None means 0.5 via the
            more probable class.
    """

    def __init__(self, pipeline, schema: Schema, family: str, threshold: float | None = None):
        self.pipeline = pipeline
        self.schema = schema
        self.family = family
        self.threshold = threshold
        self.about: dict = {}  # from bundle.json: the candidate and its validation scores

    def __repr__(self) -> str:
        parts = [f"family={self.family!r}", f"task={self.task!r}", f"target={self.schema.target!r}"]
        if self.classes:
            shown = ", ".join(map(repr, self.classes[:5])) + (
                ", ..." if len(self.classes) > 5 else ""
            )
            parts.append(f"classes=[{shown}]")
        parts.append(f"columns={len(self.schema.columns)}")
        parts += self._parts()
        scores = self.about.get("validation") or {}
        if scores:
            metric, value = next(iter(scores.items()))
            parts.append(f"validation {metric}={value:.4g}")
        if self.about.get("candidate"):
            parts.append(f"candidate={self.about['candidate']!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def _parts(self) -> list[str]:
        """More for ``repr``: what a model of several models is made of."""
        return []

    @property
    def task(self) -> str:
        return self.schema.task

    @property
    def classes(self) -> list:
        return list(self.schema.classes)

    @property
    def has_proba(self) -> bool:
        return self.task != "regression" and hasattr(self.pipeline, "predict_proba")

    def loaded(self) -> Model:
        """The model itself, in memory (a model kept on disk loads here; trainforge.bundle)."""
        return self

    def features(self, data) -> pd.DataFrame:
        """Rows (frame, path, array, or list of dicts) -> the typed feature frame."""
        return feature_frame(_rows(data, self.schema), self.schema)

    def predict(self, data) -> np.ndarray:
        """Predictions in the training target's own labels (or values, for regression)."""
        return self.decide(self.features(data))[0]

    def predict_proba(self, data) -> pd.DataFrame:
        """One ``proba_<class>`` column per class, rows in input order."""
        if not self.has_proba:
            raise DataError(f"{self.family} gives no class probabilities for a {self.task} task")
        return self._proba(self.raw_predict(self.features(data))[1])

    def predict_frame(self, data) -> pd.DataFrame:
        """The input rows in order, with a ``prediction`` column and the class probabilities."""
        rows = _rows(data, self.schema).reset_index(drop=True)
        labels, proba = self.decide(feature_frame(rows, self.schema))
        out = rows.assign(prediction=labels)
        return out if proba is None else pd.concat([out, self._proba(proba)], axis=1)

    def decide(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels (or values) and class probabilities (None for regression) for a feature frame."""
        raw, proba = self.raw_predict(features)
        if self.task == "regression":
            return raw, None
        return np.asarray(self.classes, dtype=object)[raw], proba

    def raw_predict(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """Class codes ``0..K-1`` (or regression values) and class probabilities.

        A classifier's label is its most probable class, or for a binary model with a tuned
        ``threshold`` the second class wherever its probability reaches the threshold. Labels
        and probabilities come from one pass through the model.
        """
        if self.task == "regression":
            return np.asarray(self.pipeline.predict(features), dtype=float), None
        if not self.has_proba:
            return np.asarray(self.pipeline.predict(features), dtype=int), None
        return self.labelled(self.pipeline.predict_proba(features))

    def labelled(self, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Class codes for class probabilities (the tuned threshold applied), and the
        probabilities as float64 rows summing to 1."""
        proba = normalised(np.asarray(proba, dtype=np.float64))
        if self.threshold is not None and proba.shape[1] == 2:
            return (proba[:, 1] >= self.threshold).astype(int), proba
        return proba.argmax(axis=1), proba

    def _proba(self, proba) -> pd.DataFrame:
        return pd.DataFrame(proba, columns=[f"proba_{c}" for c in self.classes])


class BaggedModel(Model):
    """A cross-validated candidate: the k models fitted on its folds' training rows, predicting
    their average (probabilities for classes, values for regression).

    Every fold model saw only its own training rows, so each training row has an out-of-fold
    prediction from a model that never saw it; those score the candidate, and there is no
    refit on all rows whose score nobody could check (bagging, as in AutoGluon).

    Args:
        folds: the fold models, in fold order; each is a plain Model with no threshold.
    """

    def __init__(self, folds: list[Model], schema: Schema, family: str, threshold=None):
        super().__init__(None, schema, family, threshold)
        self.folds = folds

    def _parts(self) -> list[str]:
        return [f"folds={len(self.folds)}"]

    @property
    def has_proba(self) -> bool:
        return all(fold.has_proba for fold in self.folds)

    def raw_predict(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        outputs = [fold.raw_predict(features) for fold in self.folds]
        if self.task == "regression":
            return np.mean([pred for pred, _ in outputs], axis=0), None
        if not self.has_proba:  # no probabilities to average: the most common label
            votes = np.stack([pred for pred, _ in outputs])
            counts = np.apply_along_axis(np.bincount, 0, votes, minlength=len(self.classes))
            return counts.argmax(axis=0), None
        return self.labelled(np.mean([proba for _, proba in outputs], axis=0))


def _rows(data, schema: Schema) -> pd.DataFrame:
    if isinstance(data, (str, Path)):
        return read_table(data)
    if isinstance(data, list):
        return pd.DataFrame(data)
    if is_image_array(data, "image_classification") and image_shape_of(
        c.name for c in schema.columns
    ):  # a model trained on images: (N, H, W[, C]) -> pixel columns; other arrays are series
        return images_frame(data)
    if isinstance(data, np.ndarray) and data.ndim == 2:
        return _array_rows(data, schema)
    return as_frame(data)


def _array_rows(array: np.ndarray, schema: Schema) -> pd.DataFrame:
    """A 2-D array's columns are the model's input columns, in training order."""
    names = [c.name for c in schema.columns]
    if array.shape[1] != len(names):
        shown = ", ".join(map(repr, names[:8])) + (", ..." if len(names) > 8 else "")
        raise DataError(
            f"the array has {array.shape[1]} column(s) but the model reads {len(names)} "
            f"({shown}), in that order; pass them in that order, or a DataFrame"
        )
    return pd.DataFrame(array, columns=names)


class EnsembleModel(Model):
    """A weighted average of member models' probabilities (or predictions, for regression),
    or with ``meta`` set, a stacked model: ``meta`` (a fitted logistic or ridge regression)
    combines the members' outputs. Built by trainforge.ensemble.

    Members read the same feature frame, so rows are typed once for all of them.
    """

    def __init__(
        self,
        members: dict[str, Model],
        weights: dict[str, float],
        schema: Schema,
        threshold: float | None = None,
        meta=None,
    ):
        super().__init__(None, schema, "stacking" if meta is not None else "ensemble", threshold)
        self.members = members
        self.weights = weights
        self.meta = meta

    def _parts(self) -> list[str]:
        return [f"members={list(self.members)}"]

    @property
    def has_proba(self) -> bool:
        return self.task != "regression"

    def raw_predict(self, features: pd.DataFrame):
        outputs = {name: self._output(model, features) for name, model in self.members.items()}
        if self.meta is not None:
            Z = stacked_outputs(outputs, self.task)
            mixed = (
                self.meta.predict(Z) if self.task == "regression" else self.meta.predict_proba(Z)
            )
        else:
            mixed = sum(self.weights[name] * out for name, out in outputs.items())
            if self.task != "regression":
                mixed = normalised(mixed)
        if self.task == "regression":
            return mixed, None
        return self.labelled(mixed)

    def _output(self, model: Model, features):
        pred, proba = model.raw_predict(features)
        return pred if self.task == "regression" else proba


def stacked_outputs(outputs: dict[str, np.ndarray], task: str) -> np.ndarray:
    """Members' outputs side by side, as a stacked model's meta-learner reads them:
    predictions, or log-probabilities (binary: class 1 only)."""
    columns = []
    for output in outputs.values():
        if task == "regression":
            columns.append(np.asarray(output, float).reshape(-1, 1))
        else:
            logp = np.log(np.clip(output, 1e-6, 1))
            columns.append(logp[:, 1:] if output.shape[1] == 2 else logp)
    return np.hstack(columns)


def normalised(proba: np.ndarray) -> np.ndarray:
    """Rows summing to 1 in float64 (float32 members, such as the MLP's softmax, are off by
    about 1e-7, which scikit-learn's log loss warns about)."""
    return proba / proba.sum(axis=1, keepdims=True)


class StackedModel(Model):
    """First-layer members, whose outputs widen each row, and a second-layer model on top
    (built by trainforge.stacking)."""

    def __init__(self, members: dict[str, Model], top: Model, schema: Schema, threshold=None):
        super().__init__(None, schema, "stack", threshold)
        self.members = members
        self.top = top

    def _parts(self) -> list[str]:
        return [f"members={list(self.members)}", f"top={self.top.family!r}"]

    @property
    def has_proba(self) -> bool:
        return self.task != "regression"

    def raw_predict(self, features: pd.DataFrame):
        outputs = {}
        for name, model in self.members.items():
            pred, proba = model.raw_predict(features)
            outputs[name] = pred if self.task == "regression" else proba
        widened = features.assign(**stack_columns(outputs, self.task))
        pred, proba = self.top.raw_predict(widened)
        if proba is None:
            return pred, None
        return self.labelled(proba)


def stack_columns(outputs: dict[str, np.ndarray], task: str) -> dict[str, np.ndarray]:
    """A stacked model's new columns: each member's prediction (regression), probability of the
    second class (binary) or of each class (multiclass)."""
    columns = {}
    for name, output in outputs.items():
        if task == "regression":
            columns[f"stack:{name}"] = np.asarray(output, float)
        elif output.shape[1] == 2:
            columns[f"stack:{name}"] = output[:, 1]
        else:
            for k in range(output.shape[1]):
                columns[f"stack:{name}:{k}"] = output[:, k]
    return columns
