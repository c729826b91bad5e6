"""The dimensionality-reduction families: PCA, truncated SVD, UMAP and t-SNE.

PCA and truncated SVD keep as many components as reach an explained-variance target (the curve
is saved as a figure); UMAP and t-SNE embed in two dimensions. UMAP is wrapped in
``umap_reducer.UMAPReducer``, an estimator that saves itself as JSON and safetensors
(umap-learn's objects hold numba code and search trees that only pickle could store).
"""

from __future__ import annotations

import numpy as np

from trainforge.errors import DataError
from trainforge.models.clustering import SCALED, Choice
from trainforge.models.registry import Family, Profile, register

VARIANCE_TARGET = 0.9  # PCA/SVD keep the fewest components explaining 90% of the variance
SVD_MAX_COMPONENTS = 100
TSNE_MAX_ROWS = 5_000  # t-SNE embeds a seeded sample of this many rows on larger data


def _two(profile: Profile) -> dict:
    return {"n_components": 2}


def _tsne(profile: Profile) -> dict:
    # perplexity must stay below the number of rows; 30 is the usual value
    rows = min(profile.n_rows, TSNE_MAX_ROWS)
    return {"n_components": 2, "init": "pca", "perplexity": float(min(30.0, (rows - 1) / 3))}


def _umap(profile: Profile) -> dict:
    return {"n_components": 2, "n_neighbors": int(min(15, max(2, profile.n_rows - 1)))}


VARIANCE_DOC = f"n_components: the fewest reaching {VARIANCE_TARGET:.0%} explained variance"
register(
    Family(
        name="pca",
        summary="principal component analysis",
        classes={"reduction": "sklearn.decomposition.PCA"},
        prep=SCALED,
        probabilities=False,
        sample_weight=False,
        initial=lambda p: {},
        initial_doc=f"{VARIANCE_DOC} (at least 2)",
        ladder=1,
    )
)
register(
    Family(
        name="truncated_svd",
        summary="truncated SVD (no centring; suits sparse, one-hot heavy data)",
        classes={"reduction": "sklearn.decomposition.TruncatedSVD"},
        prep=SCALED,
        probabilities=False,
        sample_weight=False,
        initial=lambda p: {},
        initial_doc=f"{VARIANCE_DOC} of the first {SVD_MAX_COMPONENTS} (at least 2)",
    )
)
register(
    Family(
        name="umap",
        timed_predict=False,
        saves_itself=True,
        summary="UMAP (umap-learn); transforms new rows",
        classes={"reduction": "trainforge.models.umap_reducer.UMAPReducer"},
        prep=SCALED,
        probabilities=False,
        sample_weight=False,
        initial=_umap,
        initial_doc="n_components=2, n_neighbors=15 (fewer on tiny data), min_dist=0.1",
        ladder=2,
        requires=("umap",),
    )
)
register(
    Family(
        name="tsne",
        summary="t-SNE; embeds the training rows only (no transform of new rows)",
        classes={"reduction": "sklearn.manifold.TSNE"},
        prep=SCALED,
        probabilities=False,
        sample_weight=False,
        initial=_tsne,
        initial_doc=f"n_components=2, init=pca, perplexity=30 (less on tiny data); a seeded "
        f"sample of {TSNE_MAX_ROWS:,} rows on larger data",
        ladder=3,
        fit_rows=TSNE_MAX_ROWS,
    )
)


def auto_components(family: Family, profile: Profile, params: dict, X: np.ndarray) -> Choice:
    """PCA/SVD: the fewest components reaching VARIANCE_TARGET, from the full variance curve."""
    if family.name not in ("pca", "truncated_svd"):
        return Choice({})
    top = min(X.shape) if family.name == "pca" else min(SVD_MAX_COMPONENTS, X.shape[1] - 1)
    if "n_components" in params:
        wanted = params["n_components"]
        if isinstance(wanted, int) and wanted > top:
            raise DataError(
                f"models.{family.name}.n_components is {wanted} but the data allows at most {top}"
            )
    if top < 2:
        raise DataError(
            f"{family.name} needs at least 2 rows and 2 feature columns after preprocessing to "
            f"embed in 2 dimensions; the data has {X.shape[0]} x {X.shape[1]}"
        )
    full = family.build(profile, {**params, "n_components": top}).fit(X)
    curve = np.cumsum(full.explained_variance_ratio_)
    if "n_components" in params:
        return Choice(
            {},
            list(range(1, top + 1)),
            curve.tolist(),
            "components",
            "explained variance (cumulative)",
            None,
            "variance_curve.png",
        )
    reached = np.flatnonzero(curve >= VARIANCE_TARGET)
    k = int(reached[0]) + 1 if len(reached) else top
    k = max(2, k)
    return Choice(
        {"n_components": k},
        list(range(1, top + 1)),
        curve.tolist(),
        "components",
        "explained variance (cumulative)",
        k,
        "variance_curve.png",
    )
