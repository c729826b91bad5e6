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

    @property
    def task(self) -> str:
        return self.schema.task

    @property
    def classes(self) -> list:
        return list(self.schema.classes)

    @property
    def has_proba(self) -> bool:
        return self.task != "regression" and hasattr(self.pipeline, "predict_proba")

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
        return self._proba(self.pipeline.predict_proba(self.features(data)))

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
        proba = self.pipeline.predict_proba(features)
        if self.threshold is not None and proba.shape[1] == 2:
            return (proba[:, 1] >= self.threshold).astype(int), proba
        return proba.argmax(axis=1), proba

    def _proba(self, proba) -> pd.DataFrame:
        return pd.DataFrame(proba, columns=[f"proba_{c}" for c in self.classes])


def _rows(data, schema: Schema) -> pd.DataFrame:
    if isinstance(data, (str, Path)):
        return read_table(data)
    if isinstance(data, list):
        return pd.DataFrame(data)
    if is_image_array(data, "image_classification") and image_shape_of(
        c.name for c in schema.columns
    ):  # a model trained on images: (N, H, W[, C]) -> pixel columns; other arrays are series
        return images_frame(data)
    return as_frame(data)
