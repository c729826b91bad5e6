"""Class imbalance: detecting it, weighting classes, resampling training rows, tuning thresholds.

Everything here touches training rows only. Validation rows are never resampled or weighted, and
a tuned threshold is scored on validation rows it was not chosen on (see ``crossfit_threshold``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATIO = 4.0  # imbalanced when the largest class has at least this many times the smallest's rows
# Metrics of probabilities or of their order get no class weights by default: weights shift
# predicted probabilities away from the true frequencies, and an order of rows does not need
# them (one LightGBM on six imbalanced portfolio tables: higher ROC AUC without weights on four,
# benchmarks/RESULTS.md; AutoGluon and FLAML do not weight either). A tuned threshold, not
# weights, moves a binary model's labels (``threshold``).
UNWEIGHTED_METRICS = {"log_loss", "roc_auc", "roc_auc_ovr", "pr_auc"}
THRESHOLD_METRICS = ("f1", "balanced_accuracy", "mcc")


@dataclass(frozen=True)
class Imbalance:
    """What a run does about class imbalance.

    Attributes:
        shares: each class's share of the training rows, by class label.
        imbalanced: the largest class has at least ``RATIO`` times the rows of the smallest.
        class_weight: weight training rows inversely to their class's frequency.
        threshold_metric: for binary tasks, the metric a tuned decision threshold maximises
            (None: predict the more probable class).
        resample: ``none``, ``smote``, ``under`` or ``over`` (training rows only).
    """

    shares: dict[str, float]
    imbalanced: bool
    class_weight: bool
    threshold_metric: str | None
    resample: str

    @property
    def noteworthy(self) -> bool:
        """Worth a notice: imbalanced, or handled as if it were."""
        return self.imbalanced or self.class_weight or self.resample != "none"

    def describe(self) -> str:
        shown = ", ".join(f"{k} {v:.1%}" for k, v in self.shares.items())
        actions = [
            "class weights" if self.class_weight else None,
            f"a decision threshold tuned for {self.threshold_metric}"
            if self.threshold_metric
            else None,
            f"{self.resample} resampling" if self.resample != "none" else None,
        ]
        done = ", ".join(a for a in actions if a)
        if not done:
            return (
                f"class imbalance: {shown}; stratified splits and imbalance metrics only (no "
                "class weights with a metric of probabilities or their order; "
                "imbalance.class_weight: balanced forces them)"
            )
        return f"class imbalance: {shown}; using {done}"


def plan_imbalance(y: np.ndarray, classes, task: str, primary: str, spec) -> Imbalance | None:
    """Decide from the training labels and the spec's ``imbalance`` settings (None: regression)."""
    if task == "regression":
        return None
    counts = np.bincount(y, minlength=len(classes))
    shares = {str(c): float(n / counts.sum()) for c, n in zip(classes, counts)}
    imbalanced = bool(counts.max() >= RATIO * max(counts.min(), 1))
    if spec.class_weight == "auto":
        weight = imbalanced and primary not in UNWEIGHTED_METRICS
    else:
        weight = spec.class_weight == "balanced"
    tune = task == "binary" and (
        spec.threshold == "tuned" or (spec.threshold == "auto" and imbalanced)
    )
    return Imbalance(
        shares, imbalanced, weight, spec.threshold_metric if tune else None, spec.resample
    )


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Per-row weights ``n / (k * count(class))``, so every class weighs the same in total."""
    counts = np.bincount(y)
    return (len(y) / (np.count_nonzero(counts) * counts[y])).astype(np.float64)


def sampler(method: str, seed: int, categorical_mask=None):
    """An imbalanced-learn sampler for a pipeline's fit (it never runs at prediction)."""
    from imblearn.over_sampling import SMOTE, SMOTENC, RandomOverSampler
    from imblearn.under_sampling import RandomUnderSampler

    if method == "under":
        return RandomUnderSampler(random_state=seed)
    if method == "over":
        return RandomOverSampler(random_state=seed)
    if categorical_mask and any(categorical_mask):
        return SMOTENC(categorical_features=list(categorical_mask), random_state=seed)
    return SMOTE(random_state=seed)


def tune_threshold(y: np.ndarray, p1: np.ndarray, metric: str) -> float:
    """The probability cut-off for class 1 that maximises ``metric`` on these rows.

    Candidates are the midpoints between distinct predicted probabilities (at most 200 quantiles
    of them), so the result does not depend on ties or on the row order. Confusion counts for
    all cut-offs come from one sort, so this is fast on large validation sets.
    """
    values = np.unique(p1)
    if len(values) > 200:
        values = np.unique(np.quantile(p1, np.linspace(0, 1, 201)))
    if len(values) < 2:
        return 0.5
    cuts = (values[:-1] + values[1:]) / 2
    scores = _threshold_scores(np.asarray(y) == 1, p1, cuts, metric)
    return float(cuts[int(np.argmax(scores))])


def _threshold_scores(positive: np.ndarray, p1: np.ndarray, cuts: np.ndarray, metric: str):
    """``metric`` at each cut-off (predict class 1 where ``p1 >= cut``), from confusion counts."""
    pos_sorted, neg_sorted = np.sort(p1[positive]), np.sort(p1[~positive])
    n_pos, n_neg = len(pos_sorted), len(neg_sorted)
    tp = n_pos - np.searchsorted(pos_sorted, cuts, side="left")
    fp = n_neg - np.searchsorted(neg_sorted, cuts, side="left")
    fn, tn = n_pos - tp, n_neg - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "f1":
            score = 2 * tp / (2 * tp + fp + fn)
        elif metric == "balanced_accuracy":
            score = (tp / max(n_pos, 1) + tn / max(n_neg, 1)) / 2
        elif metric == "mcc":
            denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn).astype(float))
            score = (tp * tn - fp * fn) / denominator
        else:
            raise ValueError(f"no threshold tuning for {metric!r}; use one of {THRESHOLD_METRICS}")
    return np.nan_to_num(score, nan=0.0)


def crossfit_threshold(y: np.ndarray, p1: np.ndarray, metric: str, seed: int):
    """Predictions made with thresholds tuned on the *other* half of the rows, and the threshold
    tuned on all of them (the one to keep).

    Scoring a threshold on the rows it was tuned on would flatter every metric that depends on
    it; each half here is scored with the threshold the other half chose.
    """
    rng = np.random.default_rng(seed)
    half = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):  # stratified halves
        rows = np.flatnonzero(y == label)
        half[rng.permutation(rows)[: len(rows) // 2]] = True
    pred = np.zeros(len(y), dtype=int)
    for chosen in (half, ~half):
        other = ~chosen
        if len(np.unique(y[other])) < 2:
            cut = 0.5
        else:
            cut = tune_threshold(y[other], p1[other], metric)
        pred[chosen] = (p1[chosen] >= cut).astype(int)
    return pred, tune_threshold(y, p1, metric)
