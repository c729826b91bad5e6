"""UMAP as a scikit-learn estimator that saves itself without pickle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from trainforge.errors import DataError


class UMAPReducer(TransformerMixin, BaseEstimator):
    """umap-learn's UMAP with a seed, saved without pickle.

    A saved reducer holds its parameters, its training rows (float32, what UMAP computes on)
    and the embedding. UMAP with a fixed seed is deterministic, so a loaded reducer refits on
    those rows the first time it must transform new ones, and checks that the refit reproduces
    the saved embedding exactly before trusting it.

    Args:
        n_components: dimensions of the embedding.
        n_neighbors: size of the neighbourhood UMAP preserves.
        min_dist: how tightly points may pack in the embedding.
        metric: distance in the input space.
        random_state: the seed (makes UMAP single-threaded and repeatable).
    """

    def __init__(
        self, n_components=2, n_neighbors=15, min_dist=0.1, metric="euclidean", random_state=None
    ):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.random_state = random_state

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float32)
        if self.n_neighbors >= len(X):
            raise DataError(
                f"umap: n_neighbors is {self.n_neighbors} but the data has {len(X)} rows; "
                "set n_neighbors below the number of rows"
            )
        self.umap_ = self._new_umap().fit(X)
        self.training_rows_ = X
        self.embedding_ = self.umap_.embedding_
        return self

    def fit_transform(self, X, y=None):
        return self.fit(X).embedding_

    def transform(self, X):
        check_is_fitted(self, "embedding_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        if getattr(self, "umap_", None) is None:
            self._refit()
        return self.umap_.transform(X)

    def _new_umap(self):
        import warnings

        import umap

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return umap.UMAP(
                n_components=self.n_components,
                n_neighbors=self.n_neighbors,
                min_dist=self.min_dist,
                metric=self.metric,
                random_state=self.random_state,
                n_jobs=1,
            )

    def _refit(self) -> None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = self._new_umap().fit(self.training_rows_)
        if not np.array_equal(fitted.embedding_, self.embedding_):
            raise DataError(
                "umap: refitting the saved model did not reproduce its embedding (different "
                "umap-learn or numba version?); retrain it with this installation"
            )
        self.umap_ = fitted

    def save_files(self, folder: Path) -> list[str]:
        """Write ``estimator.json`` (parameters) and ``arrays.safetensors`` (rows, embedding)."""
        from safetensors.numpy import save_file

        check_is_fitted(self, "embedding_")
        folder.mkdir(parents=True, exist_ok=True)
        fitted = {"n_features_in_": int(self.n_features_in_)}
        (folder / "estimator.json").write_text(
            json.dumps({"params": self.get_params(), "fitted": fitted}, indent=1)
        )
        arrays = {
            "training_rows": np.ascontiguousarray(self.training_rows_),
            "embedding": np.ascontiguousarray(self.embedding_),
        }
        save_file(arrays, folder / "arrays.safetensors")
        return ["estimator.json", "arrays.safetensors"]

    @classmethod
    def load_files(cls, folder: Path) -> UMAPReducer:
        """Rebuild a reducer written by ``save_files`` (JSON and arrays only)."""
        from safetensors.numpy import load_file

        saved = json.loads((folder / "estimator.json").read_text())
        reducer = cls(**saved["params"])
        for key, value in saved["fitted"].items():
            setattr(reducer, key, value)
        arrays = load_file(folder / "arrays.safetensors")
        reducer.training_rows_ = arrays["training_rows"]
        reducer.embedding_ = arrays["embedding"]
        reducer.umap_ = None
        return reducer
