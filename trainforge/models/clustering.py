"""The clustering families: k-means (mini-batch on large data), Gaussian mixtures, agglomerative,
HDBSCAN and DBSCAN, and the data-driven choices that let them work without tuning.

Settings that depend on the data itself rather than its shape (the number of clusters, DBSCAN's
eps) cannot live in ``initial``; ``auto_settings`` chooses them on the preprocessed rows before
the final fit, and says how in a ``Choice`` whose curve is saved as a figure.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field

import numpy as np

import trainforge.models.classical  # noqa: F401  (registered first: the catalogue's order
import trainforge.models.neural_families  # noqa: F401  must not depend on what is imported first)
from trainforge.errors import DataError
from trainforge.models.registry import Family, Prep, Profile, Substitution, register

SCALED = Prep(scale=True, categorical="onehot")

K_RANGE = (2, 15)  # k searched from 2 to 15 (at most rows - 1)
SCORE_SAMPLE = 3000  # silhouette (for choosing k and for the leaderboard) on a seeded sample
KMEANS_MAX_ROWS = 50_000  # above: mini-batch k-means
AGGLOMERATIVE_MAX_ROWS = 10_000  # its distance matrix grows with rows squared
HDBSCAN_MAX_ROWS = 50_000


@dataclass
class Choice:
    """A setting chosen from the data, and the curve it was chosen on (for the figure).

    Attributes:
        settings: the chosen estimator settings, e.g. ``{"n_clusters": 4}``.
        x, y: the curve, e.g. k against silhouette.
        x_label, y_label: axis names; ``chosen`` is the x of the choice.
    """

    settings: dict
    x: list = field(default_factory=list)
    y: list = field(default_factory=list)
    x_label: str = ""
    y_label: str = ""
    chosen: float | None = None
    figure: str = ""


def _none(profile: Profile) -> dict:
    return {}


def _hdbscan(profile: Profile) -> dict:
    # The default of 5 splits 10,000 digits into hundreds of tiny clusters; 1% of the rows
    # (at least 5) asks for clusters of a size a person would call a group.
    return {"min_cluster_size": max(5, profile.n_rows // 100), "copy": True}


def _kmeans_too_big(profile: Profile) -> Substitution | None:
    if profile.n_rows <= KMEANS_MAX_ROWS:
        return None
    return Substitution(
        use="minibatch_kmeans",
        notice=f"kmeans: {profile.n_rows:,} rows is past {KMEANS_MAX_ROWS:,}; training "
        "minibatch_kmeans instead (name kmeans in the spec's models to force it)",
    )


def _skip_above(name: str, limit: int, why: str):
    def rule(profile: Profile) -> Substitution | None:
        if profile.n_rows <= limit:
            return None
        return Substitution(
            notice=f"{name}: skipped on {profile.n_rows:,} rows (over {limit:,}), {why}; name "
            "it in the spec's models to train it anyway"
        )

    return rule


K_DOC = f"n_clusters: the k in {K_RANGE[0]}..{K_RANGE[1]} with the best silhouette"
register(
    Family(
        name="kmeans",
        summary="k-means",
        classes={"clustering": "sklearn.cluster.KMeans"},
        prep=SCALED,
        probabilities=False,
        sample_weight=False,
        initial=_none,
        initial_doc=f"{K_DOC}; minibatch_kmeans past {KMEANS_MAX_ROWS:,} rows",
        ladder=1,
        substitute=_kmeans_too_big,
    )
)
register(
    Family(
        name="minibatch_kmeans",
        summary="mini-batch k-means for large data",
        classes={"clustering": "sklearn.cluster.MiniBatchKMeans"},
        prep=SCALED,
        probabilities=False,
        sample_weight=False,
        initial=_none,
        initial_doc=K_DOC,
    )
)
register(
    Family(
        name="gaussian_mixture",
        summary="Gaussian mixture",
        classes={"clustering": "sklearn.mixture.GaussianMixture"},
        prep=SCALED,
        probabilities=False,
        sample_weight=False,
        initial=lambda p: {"covariance_type": "full" if p.n_columns <= 20 else "diag"},
        initial_doc=f"n_components: the k in {K_RANGE[0]}..{K_RANGE[1]} with the lowest BIC; "
        "covariance_type full up to 20 columns, else diag",
        ladder=2,
    )
)
register(
    Family(
        name="agglomerative",
        summary="agglomerative (ward, complete, average or single linkage)",
        classes={"clustering": "sklearn.cluster.AgglomerativeClustering"},
        prep=SCALED,
        probabilities=False,
        sample_weight=False,
        initial=lambda p: {"linkage": "ward"},
        initial_doc=f"linkage=ward; {K_DOC}; skipped past {AGGLOMERATIVE_MAX_ROWS:,} rows",
        ladder=3,
        substitute=_skip_above(
            "agglomerative", AGGLOMERATIVE_MAX_ROWS, "where its distance matrix gets too big"
        ),
    )
)
register(
    Family(
        name="hdbscan",
        summary="HDBSCAN (density-based, finds k itself, marks noise as -1)",
        classes={"clustering": "sklearn.cluster.HDBSCAN"},
        prep=SCALED,
        probabilities=False,
        sample_weight=False,
        initial=_hdbscan,
        initial_doc="min_cluster_size = 1% of the rows (at least 5)",
        ladder=4,
        substitute=_skip_above("hdbscan", HDBSCAN_MAX_ROWS, "where it gets slow"),
    )
)
register(
    Family(
        name="dbscan",
        summary="DBSCAN (density-based, marks noise as -1)",
        classes={"clustering": "sklearn.cluster.DBSCAN"},
        prep=SCALED,
        probabilities=False,
        sample_weight=False,
        initial=lambda p: {"min_samples": int(min(20, max(4, 2 * p.n_columns)))},
        initial_doc="min_samples = 2 x columns (4..20); eps at the knee of the sorted "
        "distances to the min_samples-th neighbour",
    )
)


# -- settings chosen from the data -----------------------------------------------------------


def auto_settings(family: Family, profile: Profile, params: dict, X: np.ndarray) -> Choice:
    """The data-driven settings a family needs that the user did not set.

    Args:
        X: the preprocessed training rows.

    Raises:
        DataError: a requested number of clusters is larger than the number of rows.
    """
    key = {"gaussian_mixture": "n_components", "hdbscan": None, "dbscan": None}.get(
        family.name, "n_clusters"
    )
    if key is not None and key in params:
        check_k(int(params[key]), len(X), f"models.{family.name}.{key}")
        return Choice({})
    if family.name == "dbscan":
        return Choice({}) if "eps" in params else knee_eps(family, profile, params, X)
    if key is None:
        return Choice({})
    return search_k(family, profile, params, X, key)


def check_k(k: int, rows: int, where: str) -> None:
    if k > rows:
        raise DataError(f"{where} is {k} but the data has only {rows} row(s); use at most {rows}")


def search_k(family: Family, profile: Profile, params: dict, X, key: str) -> Choice:
    """Fit each k in K_RANGE; keep the best silhouette (the lowest BIC for mixtures)."""
    top = min(K_RANGE[1], len(X) - 1)
    if top < K_RANGE[0]:
        raise DataError(f"clustering needs at least 3 rows to choose k; the data has {len(X)}")
    ks = list(range(K_RANGE[0], top + 1))
    scores = []
    with tempfile.TemporaryDirectory() as cache:  # agglomerative: build the tree once
        for k in ks:
            extra = {"memory": cache, "compute_full_tree": True}
            model = family.build(profile, {**params, key: k, **extra})
            if family.name == "gaussian_mixture":
                model.fit(X)
                scores.append(float(model.bic(X)))
            else:
                scores.append(silhouette(X, model.fit_predict(X), profile.seed))
    if family.name == "gaussian_mixture":
        best, label = ks[int(np.argmin(scores))], "BIC (lower is better)"
    else:
        finite = np.nan_to_num(np.asarray(scores), nan=-np.inf)
        best, label = ks[int(np.argmax(finite))], "silhouette"
    return Choice({key: best}, ks, scores, "k (clusters)", label, best, "k_curve.png")


def silhouette(X, labels, seed: int) -> float:
    """Silhouette on a seeded sample of SCORE_SAMPLE rows; NaN with fewer than 2 clusters."""
    from sklearn.metrics import silhouette_score

    n_labels = len(np.unique(labels))
    if n_labels < 2 or n_labels >= len(X):
        return float("nan")
    size = SCORE_SAMPLE if len(X) > SCORE_SAMPLE else None
    return float(silhouette_score(X, labels, sample_size=size, random_state=seed))


def knee_eps(family: Family, profile: Profile, params: dict, X) -> Choice:
    """DBSCAN's eps at the knee of the sorted k-distance curve (on a seeded sample).

    The knee is the point farthest from the straight line joining the curve's ends, with both
    axes scaled to 0..1: past it, distances grow fast, so those points are noise.
    """
    from sklearn.neighbors import NearestNeighbors

    min_samples = int(params.get("min_samples", family.initial(profile)["min_samples"]))
    if len(X) <= min_samples:
        raise DataError(
            f"dbscan: min_samples is {min_samples} but the data has only {len(X)} row(s); "
            "set a smaller min_samples"
        )
    rows = np.random.default_rng(profile.seed).permutation(len(X))[:SCORE_SAMPLE]
    sample = X[np.sort(rows)]
    distances, _ = (
        NearestNeighbors(n_neighbors=min(min_samples, len(sample) - 1) + 1)
        .fit(sample)
        .kneighbors(sample)
    )
    curve = np.sort(distances[:, -1])
    eps = float(curve[knee(curve)]) if curve[-1] > 0 else 1e-3
    eps = max(eps, 1e-9)
    x = list(range(len(curve)))
    return Choice(
        {"eps": eps},
        x,
        curve.tolist(),
        "rows, sorted",
        f"distance to neighbour {min_samples}",
        knee(curve),
        "k_distance.png",
    )


def knee(curve: np.ndarray) -> int:
    """Index of the point farthest below the chord of an increasing curve (0..1 scaled)."""
    if len(curve) < 3 or curve[-1] == curve[0]:
        return len(curve) // 2
    x = np.linspace(0.0, 1.0, len(curve))
    y = (curve - curve[0]) / (curve[-1] - curve[0])
    return int(np.argmax(x - y))
