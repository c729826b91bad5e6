"""Scores for clustering and reduction, computed on the preprocessed training rows.

Pairwise scores (silhouette, trustworthiness, neighbour preservation) cost rows squared, so on
more than ``SCORE_SAMPLE`` rows they use a seeded sample of that many rows; the others use every
row. DBSCAN/HDBSCAN noise (label -1) counts as one more cluster, so a model that calls most
rows noise is not rewarded for it.
"""

from __future__ import annotations

import math

import numpy as np

from trainforge.models.clustering import SCORE_SAMPLE, silhouette

NEIGHBOURS = 10  # k for trustworthiness and k-nearest-neighbour preservation


def clustering_scores(X: np.ndarray, assigned: np.ndarray, truth, seed: int) -> dict[str, float]:
    """Silhouette, Calinski-Harabasz, Davies-Bouldin; ARI and NMI when labels are given."""
    from sklearn.metrics import (
        adjusted_rand_score,
        calinski_harabasz_score,
        davies_bouldin_score,
        normalized_mutual_info_score,
    )

    n_clusters = len(np.unique(assigned))
    valid = 2 <= n_clusters < len(X)
    scores = {
        "silhouette": silhouette(X, assigned, seed),
        "calinski_harabasz": float(calinski_harabasz_score(X, assigned)) if valid else math.nan,
        "davies_bouldin": float(davies_bouldin_score(X, assigned)) if valid else math.nan,
        "ari": math.nan,
        "nmi": math.nan,
    }
    if truth is not None:
        known = _known(truth)
        scores["ari"] = float(adjusted_rand_score(truth[known], assigned[known]))
        scores["nmi"] = float(normalized_mutual_info_score(truth[known], assigned[known]))
    scores["clusters"] = float(len(set(assigned.tolist()) - {-1}))
    scores["noise_fraction"] = float(np.mean(assigned == -1))
    return scores


def reduction_scores(X: np.ndarray, embedding: np.ndarray, seed: int) -> dict[str, float]:
    """Trustworthiness and k-NN preservation on a seeded sample of the embedded rows.

    Rows without an embedding (t-SNE on a sample) are left out. k-NN preservation is the mean
    share of each row's NEIGHBOURS nearest neighbours in the input that are also among its
    nearest neighbours in the embedding.
    """
    from sklearn.manifold import trustworthiness

    rows = np.flatnonzero(np.isfinite(embedding).all(axis=1))
    rows = sample_rows(rows, seed)
    k = min(NEIGHBOURS, len(rows) // 2 - 1)
    if k < 1:
        return {"trustworthiness": math.nan, "knn_preservation": math.nan}
    high, low = X[rows], embedding[rows]
    return {
        "trustworthiness": float(trustworthiness(high, low, n_neighbors=k)),
        "knn_preservation": knn_preservation(high, low, k),
    }


def knn_preservation(high: np.ndarray, low: np.ndarray, k: int) -> float:
    from sklearn.neighbors import NearestNeighbors

    def neighbours(points):
        found = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)[1]
        return [set(row[row != i][:k].tolist()) for i, row in enumerate(found)]

    before, after = neighbours(high), neighbours(low)
    return float(np.mean([len(a & b) / k for a, b in zip(before, after)]))


def sample_rows(rows: np.ndarray, seed: int, size: int = SCORE_SAMPLE) -> np.ndarray:
    """At most ``size`` of ``rows``, chosen with ``seed``, in their original order."""
    if len(rows) <= size:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=size, replace=False))


def _known(truth: np.ndarray) -> np.ndarray:
    """Rows whose label is present (missing labels are left out of ARI/NMI)."""
    import pandas as pd

    return ~pd.isna(truth)
