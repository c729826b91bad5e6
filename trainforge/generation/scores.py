"""How good generated samples are, measured against real rows the generator never saw.

Every score compares generated samples with HELD-OUT real rows: compared with the training
rows, a generator that memorised its data would look perfect. Each function's docstring says
what its number means and which direction is better; ``table_scores`` and ``image_scores``
gather them into one flat dict of floats, ready for JSON.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score, roc_auc_score, root_mean_squared_error
from sklearn.model_selection import StratifiedKFold, cross_val_score

from trainforge.errors import DataError
from trainforge.generation.table_codec import NUMERIC, TableCodec, column_kind
from trainforge.threads import fit_threads, limited

TASKS = ("binary", "multiclass", "regression")


def two_sample_auc(real, fake, seed: int = 0, folds: int = 5, max_rows: int = 5000) -> float:
    """How easily a classifier tells real from generated samples: its cross-validated ROC AUC.

    Equal numbers of real and generated samples (at most ``max_rows`` each, drawn with
    ``seed``) are labelled and a small histogram gradient boosting classifier is scored by
    ``folds``-fold cross-validation. 0.5 means the classifier cannot tell them apart (best);
    1.0 means it always can. Tables (DataFrames) are compared through a ``TableCodec`` fitted
    on both; images (arrays ``(N, H, W[, C])`` or flat rows) through their flattened pixels.
    """
    if isinstance(real, pd.DataFrame):
        real, fake = _encoded_pair(real, fake)
    else:
        real = np.asarray(real, dtype=np.float32).reshape(len(real), -1)
        fake = np.asarray(fake, dtype=np.float32).reshape(len(fake), -1)
    n = min(len(real), len(fake), max_rows)
    if n < folds:
        raise DataError(f"two_sample_auc needs at least {folds} real and generated samples")
    rng = np.random.default_rng(seed)
    X = np.vstack(
        [
            real[rng.choice(len(real), n, replace=False)],
            fake[rng.choice(len(fake), n, replace=False)],
        ]
    )
    y = np.repeat([1, 0], n)
    classifier = HistGradientBoostingClassifier(
        max_iter=100, max_leaf_nodes=15, early_stopping=False, random_state=seed
    )
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with limited(fit_threads(len(X))):
        return float(cross_val_score(classifier, X, y, cv=splits, scoring="roc_auc").mean())


def column_distances(real: pd.DataFrame, fake: pd.DataFrame) -> dict:
    """How far each column's distribution is from the real one, ignoring the other columns.

    Numeric columns: the Kolmogorov-Smirnov statistic, the largest gap between the two
    empirical distribution functions, with missing values counted as a value below all others
    (so a wrong missing rate widens the gap). Categorical columns: the total variation
    distance, half the summed absolute differences of the level frequencies (missing is a
    level). Both lie in [0, 1]: 0 means the same distribution (best), 1 disjoint ones.

    Returns:
        ``{"columns": {name: distance}, "mean": mean distance}`` over the real table's columns.
    """
    _check_columns(real, fake, "generated")
    distances = {}
    for name in real.columns:
        if column_kind(real[name]) == NUMERIC:
            distances[name] = _ks_statistic(real[name], fake[name])
        else:
            distances[name] = _total_variation(real[name], fake[name])
    return {"columns": distances, "mean": float(np.mean(list(distances.values())))}


def correlation_difference(real: pd.DataFrame, fake: pd.DataFrame) -> float:
    """How differently the columns relate to each other in generated and real rows.

    Both tables are encoded by one ``TableCodec`` fitted on both (standardised numbers,
    missing indicators, one 0/1 column per level) and the Pearson correlation matrix of each
    encoding is taken; the score is the mean absolute difference over all pairs of encoded
    columns. 0 means the same pairwise linear associations (best); it cannot exceed 2. A
    constant encoded column counts as correlated with nothing.
    """
    real_matrix, fake_matrix = _encoded_pair(real, fake)
    if real_matrix.shape[1] < 2:
        return 0.0
    upper = np.triu_indices(real_matrix.shape[1], k=1)
    return float(np.abs(_correlation(real_matrix) - _correlation(fake_matrix))[upper].mean())


def utility(
    synthetic: pd.DataFrame,
    real_train: pd.DataFrame,
    real_test: pd.DataFrame,
    target: str,
    task: str,
    seed: int = 0,
) -> dict:
    """How useful generated rows are for learning ``target``: train on synthetic, test on real.

    The same histogram gradient boosting model is trained once on ``synthetic`` and once on
    ``real_train``, and both are scored on ``real_test``: ROC AUC for ``binary`` tasks,
    accuracy for ``multiclass``, RMSE for ``regression``. A synthetic table with one class
    only gives a model that predicts that class (AUC 0.5).

    Returns:
        ``{"metric": name, "synthetic": score, "real": score, "ratio": ratio}``, where the
        ratio is synthetic / real for AUC and accuracy and real / synthetic for RMSE, so 1.0
        means as useful as the real rows and lower is worse. A chance-level AUC gives
        0.5 / real AUC, not 0.
    """
    if task not in TASKS:
        raise DataError(f"utility: task must be one of {TASKS}, got {task!r}")
    if target not in real_train.columns:
        raise DataError(f"utility: the training rows lack the target column {target!r}")
    _check_columns(real_train, synthetic, "generated")
    _check_columns(real_train, real_test, "test")
    synthetic, real_train, real_test = (
        t[t[target].notna()] for t in (synthetic, real_train, real_test)
    )
    features = [c for c in real_train.columns if c != target]
    codec = TableCodec().fit(pd.concat([real_train[features], synthetic[features]]))
    X_test, y_test = codec.encode(real_test), real_test[target].to_numpy()
    scores = {}
    for name, table in (("synthetic", synthetic), ("real", real_train)):
        model = _model(task, table[target], seed)
        with limited(fit_threads(len(table))):
            model.fit(codec.encode(table), table[target].to_numpy())
        scores[name] = _metric(task, model, X_test, y_test)
    metric = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}[task]
    if task == "regression":
        ratio = scores["real"] / scores["synthetic"] if scores["synthetic"] else 1.0
    else:
        ratio = scores["synthetic"] / scores["real"]
    return {"metric": metric, **scores, "ratio": float(ratio)}


def table_scores(
    real_test: pd.DataFrame,
    fake: pd.DataFrame,
    seed: int = 0,
    *,
    real_train: pd.DataFrame | None = None,
    target: str | None = None,
    task: str | None = None,
) -> dict[str, float]:
    """Every table score in one flat dict of floats (see each function for its meaning).

    Keys: ``two_sample_auc``, ``column_distance_mean``, ``column_distance.<column>`` for each
    column, ``correlation_difference``, and, when ``target``, ``task`` and ``real_train``
    are given, ``utility_<metric>_synthetic``, ``utility_<metric>_real`` and
    ``utility_ratio``.
    """
    distances = column_distances(real_test, fake)
    scores = {
        "two_sample_auc": two_sample_auc(real_test, fake, seed),
        "column_distance_mean": distances["mean"],
        **{f"column_distance.{name}": value for name, value in distances["columns"].items()},
        "correlation_difference": correlation_difference(real_test, fake),
    }
    if target is not None:
        if real_train is None or task is None:
            raise DataError("table_scores: the utility score needs real_train and task too")
        useful = utility(fake, real_train, real_test, target, task, seed)
        scores[f"utility_{useful['metric']}_synthetic"] = useful["synthetic"]
        scores[f"utility_{useful['metric']}_real"] = useful["real"]
        scores["utility_ratio"] = useful["ratio"]
    return scores


def image_scores(real, fake, seed: int = 0, labels=None) -> dict[str, float]:
    """The image scores in one flat dict of floats.

    ``two_sample_auc``: see ``two_sample_auc`` (on flattened pixels; 0.5 best).
    ``frechet_distance``: trainforge.models.gan_quality's Frechet distance between the
    features of a small CNN, trained on ``real`` with ``labels`` when given, else fixed and
    random; 0 means the same feature statistics, lower is better. Both image sets are scaled
    to [-1, 1] by the real images' pixel range, as the GAN scales its training images.
    """
    import torch

    from trainforge.models.gan_quality import frechet_distance, image_features
    from trainforge.models.image import as_images

    real_images = as_images(real)
    fake_images = as_images(fake, shape=real_images.shape[1:])
    low, high = float(real_images.min()), float(real_images.max())

    def scaled(images: np.ndarray) -> np.ndarray:
        return (2 * (images - low) / ((high - low) or 1.0) - 1).transpose(0, 3, 1, 2)

    features = image_features(scaled(real_images), labels, seed)
    distance = frechet_distance(
        features(torch.as_tensor(scaled(real_images))),
        features(torch.as_tensor(scaled(fake_images))),
    )
    auc = two_sample_auc(real_images, fake_images, seed)
    return {"two_sample_auc": auc, "frechet_distance": distance}


def _check_columns(real: pd.DataFrame, other: pd.DataFrame, what: str) -> None:
    lacking = [name for name in real.columns if name not in other.columns]
    if lacking:
        raise DataError(f"the {what} table lacks the real column(s) {lacking}")


def _encoded_pair(real: pd.DataFrame, fake: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Both tables encoded by one codec fitted on both, so either side's levels have columns."""
    _check_columns(real, fake, "generated")
    fake = fake[list(real.columns)]
    codec = TableCodec().fit(pd.concat([real, fake], ignore_index=True))
    return codec.encode(real), codec.encode(fake)


def _correlation(matrix: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):  # constant columns give NaN
        return np.nan_to_num(np.corrcoef(matrix, rowvar=False))


def _ks_statistic(real: pd.Series, fake: pd.Series) -> float:
    """KS statistic with missing (and, in ``fake``, non-numeric) values below all numbers."""
    a, b = (
        np.sort(pd.to_numeric(s, errors="coerce").to_numpy(np.float64, na_value=-np.inf))
        for s in (real, fake)
    )
    points = np.concatenate([a, b])
    gaps = np.searchsorted(a, points, "right") / len(a) - np.searchsorted(b, points, "right") / len(
        b
    )
    return float(np.abs(gaps).max())


def _total_variation(real: pd.Series, fake: pd.Series) -> float:
    both = pd.concat([real.astype(object), fake.astype(object)], ignore_index=True)
    codes, levels = pd.factorize(both.where(both.notna(), None), use_na_sentinel=False)
    counts_real = np.bincount(codes[: len(real)], minlength=len(levels)) / len(real)
    counts_fake = np.bincount(codes[len(real) :], minlength=len(levels)) / len(fake)
    return float(np.abs(counts_real - counts_fake).sum() / 2)


def _model(task: str, labels: pd.Series, seed: int):
    if task == "regression":
        return HistGradientBoostingRegressor(random_state=seed)
    if labels.nunique() < 2:
        return DummyClassifier(strategy="most_frequent")
    return HistGradientBoostingClassifier(random_state=seed)


def _metric(task: str, model, X: np.ndarray, y: np.ndarray) -> float:
    if task == "regression":
        return float(root_mean_squared_error(y, model.predict(X)))
    if task == "multiclass":
        return float(accuracy_score(y, model.predict(X)))
    # The AUC of the last class's probability: the same number for either class of two.
    return float(roc_auc_score(y == model.classes_[-1], model.predict_proba(X)[:, -1]))
