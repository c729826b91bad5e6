"""Validation metrics per task, and which one ranks the leaderboard by default.

Labels are integer codes ``0..K-1`` here (the runner encodes them), so ``proba[:, k]`` is the
probability of class ``k``. scikit-learn is imported only when a metric is computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

CLASSIFICATION = ("binary", "multiclass")


@dataclass(frozen=True)
class Metric:
    name: str
    tasks: tuple[str, ...]
    greater_is_better: bool
    needs_proba: bool
    compute: Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` beats score ``b`` (NaN never beats anything; ties do not)."""
        if math.isnan(a):
            return False
        if math.isnan(b):
            return True
        return a > b if self.greater_is_better else a < b


def _roc_auc(y, pred, proba):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(y, proba[:, 1])


def _roc_auc_ovr(y, pred, proba):
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < proba.shape[1]:
        return math.nan  # undefined when a class is absent from the validation rows
    return roc_auc_score(y, proba, multi_class="ovr")


def _pr_auc(y, pred, proba):
    from sklearn.metrics import average_precision_score

    return average_precision_score(y, proba[:, 1])


def _log_loss(y, pred, proba):
    from sklearn.metrics import log_loss

    return log_loss(y, proba, labels=np.arange(proba.shape[1]))


def _sk(name: str, **kwargs) -> Callable:
    def compute(y, pred, proba):
        import sklearn.metrics

        return getattr(sklearn.metrics, name)(y, pred, **kwargs)

    return compute


def _rmse(y, pred, proba):
    return float(np.sqrt(np.mean((np.asarray(y, dtype=float) - pred) ** 2)))


_B, _M, _R = ("binary",), ("multiclass",), ("regression",)
METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("roc_auc", _B, True, True, _roc_auc),
        Metric("roc_auc_ovr", _M, True, True, _roc_auc_ovr),
        Metric("log_loss", CLASSIFICATION, False, True, _log_loss),
        Metric("accuracy", CLASSIFICATION, True, False, _sk("accuracy_score")),
        Metric("balanced_accuracy", CLASSIFICATION, True, False, _sk("balanced_accuracy_score")),
        Metric("f1", _B, True, False, _sk("f1_score")),
        Metric("f1_macro", CLASSIFICATION, True, False, _sk("f1_score", average="macro")),
        Metric("pr_auc", _B, True, True, _pr_auc),
        Metric("mcc", CLASSIFICATION, True, False, _sk("matthews_corrcoef")),
        Metric("rmse", _R, False, False, _rmse),
        Metric("mae", _R, False, False, _sk("mean_absolute_error")),
        Metric("r2", _R, True, False, _sk("r2_score")),
    ]
}

DEFAULT_PRIMARY = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}

# The order metrics appear in a leaderboard, primary first.
STANDARD = {
    "binary": ["roc_auc", "log_loss", "accuracy", "balanced_accuracy", "f1"],
    "multiclass": ["log_loss", "accuracy", "balanced_accuracy", "f1_macro", "roc_auc_ovr"],
    "regression": ["rmse", "mae", "r2"],
}


# Added to the leaderboard when the classes are imbalanced: they stay honest where accuracy and
# ROC AUC flatter a model that ignores the small classes.
IMBALANCED = {"binary": ["pr_auc", "mcc"], "multiclass": ["mcc"], "regression": []}


def metric_names(task: str, primary: str, imbalanced: bool = False) -> list[str]:
    """The leaderboard's metrics in order: the primary one, the task's standard ones, and the
    imbalance-proof ones when the classes are imbalanced."""
    names = [primary] + [m for m in STANDARD[task] if m != primary]
    extra = IMBALANCED[task] if imbalanced else []
    return names + [m for m in extra if m not in names]


def primary_metric(requested: str, task: str) -> Metric:
    """The metric that ranks candidates: the requested one, or the task's default."""
    from trainforge.errors import SpecError

    name = DEFAULT_PRIMARY[task] if requested == "auto" else requested
    metric = METRICS[name]
    if task not in metric.tasks:
        allowed = ", ".join(n for n, m in METRICS.items() if task in m.tasks)
        raise SpecError(f"metric: {name!r} does not apply to a {task} task; use one of {allowed}")
    return metric


def score_all(task: str, y, pred, proba, names: list[str] | None = None) -> dict[str, float]:
    """The named metrics (default: the task's standard ones); those needing probabilities are
    NaN when the model gives none."""
    scores = {}
    for name in names or STANDARD[task]:
        metric = METRICS[name]
        if metric.needs_proba and proba is None:
            scores[name] = math.nan
        else:
            scores[name] = float(metric.compute(y, pred, proba))
    return scores


# Clustering and reduction: scored on the training rows by trainforge.unsupervised.scoring
# (they need the features, not only predictions); these entries let a spec name them.
def _unsupervised(y, pred, proba):
    raise NotImplementedError("computed by trainforge.unsupervised.scoring")


for _name, _task, _greater in [
    ("silhouette", "clustering", True),
    ("calinski_harabasz", "clustering", True),
    ("davies_bouldin", "clustering", False),
    ("ari", "clustering", True),
    ("nmi", "clustering", True),
    ("trustworthiness", "reduction", True),
    ("knn_preservation", "reduction", True),
]:
    METRICS[_name] = Metric(_name, (_task,), _greater, False, _unsupervised)
DEFAULT_PRIMARY.update(clustering="silhouette", reduction="trustworthiness")
STANDARD["clustering"] = ["silhouette", "calinski_harabasz", "davies_bouldin", "ari", "nmi"]
STANDARD["reduction"] = ["trustworthiness", "knn_preservation"]


# Generation: generated rows against real rows kept aside, by trainforge.generation.scores.
def _generation(y, pred, proba):
    raise NotImplementedError("computed by trainforge.generation.scores")


for _name, _greater in [
    ("two_sample_auc", False),
    ("column_distance_mean", False),
    ("correlation_difference", False),
    ("utility_ratio", True),
    ("frechet_distance", False),
]:
    METRICS[_name] = Metric(_name, ("generation",), _greater, False, _generation)
DEFAULT_PRIMARY["generation"] = "two_sample_auc"
STANDARD["generation"] = ["two_sample_auc", "column_distance_mean", "correlation_difference"]
