"""A trained clustering or reduction model as users meet it: raw rows in, clusters or
coordinates out.

Only some methods can place rows they were not fitted on: k-means and Gaussian mixtures assign
new rows to clusters, PCA, truncated SVD and UMAP transform them. Agglomerative clustering,
DBSCAN, HDBSCAN and t-SNE describe their training rows only; asking them about new rows raises
a DataError that says so (their training rows' results are in the run folder).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainforge.data.features import feature_frame
from trainforge.data.schema import Schema
from trainforge.errors import DataError
from trainforge.model import _rows


class UnsupervisedModel:
    """A fitted pipeline (preprocessing + clusterer or reducer) with its training schema.

    Args:
        pipeline: a fitted scikit-learn Pipeline taking the schema's feature frame.
        schema: the training schema (task ``clustering`` or ``reduction``; no target).
        family: the model family's name.
    """

    def __init__(self, pipeline, schema: Schema, family: str):
        self.pipeline = pipeline
        self.schema = schema
        self.family = family

    @property
    def task(self) -> str:
        return self.schema.task

    @property
    def classes(self) -> list:
        return []

    @property
    def has_proba(self) -> bool:
        return False

    @property
    def can_predict(self) -> bool:
        """Whether new rows can be assigned to clusters (k-means, mixtures)."""
        return self.task == "clustering" and hasattr(self.pipeline[-1], "predict")

    @property
    def can_transform(self) -> bool:
        """Whether new rows can be embedded (PCA, truncated SVD, UMAP)."""
        return self.task == "reduction" and hasattr(self.pipeline[-1], "transform")

    def features(self, data) -> pd.DataFrame:
        return feature_frame(_rows(data, self.schema), self.schema)

    def predict(self, data) -> np.ndarray:
        """The cluster of each row (clustering models that support new rows)."""
        if not self.can_predict:
            raise DataError(
                self._cannot(
                    "assign new rows to clusters",
                    "kmeans, minibatch_kmeans or gaussian_mixture",
                    "assignments",
                )
            )
        return np.asarray(self.pipeline.predict(self.features(data)), dtype=int)

    def transform(self, data) -> pd.DataFrame:
        """Each row's coordinates, one ``component_<i>`` column per dimension."""
        if not self.can_transform:
            raise DataError(
                self._cannot("transform new rows", "pca, truncated_svd or umap", "embedding")
            )
        coordinates = self.pipeline.transform(self.features(data))
        return pd.DataFrame(coordinates, columns=component_names(coordinates.shape[1]))

    def predict_proba(self, data):
        raise DataError(f"{self.family} is a {self.task} model; it gives no class probabilities")

    def predict_frame(self, data) -> pd.DataFrame:
        """The input rows in order with a ``cluster`` column (clustering) or the
        ``component_<i>`` columns (reduction); what ``trainforge predict`` writes."""
        rows = _rows(data, self.schema).reset_index(drop=True)
        if self.task == "clustering":
            return rows.assign(cluster=self.predict(rows))
        return pd.concat([rows, self.transform(rows)], axis=1)

    def _cannot(self, action: str, alternatives: str, artifact: str) -> str:
        if self.task == "clustering" and action.startswith("transform"):
            return f"{self.family} is a clustering model; use predict to get each row's cluster"
        if self.task == "reduction" and action.startswith("assign"):
            return f"{self.family} is a reduction model; use transform to get coordinates"
        return (
            f"{self.family} cannot {action}; its training rows' results are in the run's "
            f"candidates/<name>/{artifact}.parquet, or train {alternatives} to get a model that can"
        )


def component_names(n: int) -> list[str]:
    return [f"component_{i}" for i in range(1, n + 1)]
