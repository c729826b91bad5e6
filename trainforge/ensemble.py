"""Ensemble candidates built from the others' validation predictions.

Greedy ensemble selection (Caruana et al. 2004): start from the best single candidate and keep
adding, with replacement, whichever candidate most improves the averaged prediction's primary
metric; a candidate's weight is how often it was added. The members never trained on the
validation rows the weights are chosen on (under cross-validation these are out-of-fold
predictions for every training row), and the ensemble's own leaderboard score is cross-fitted:
weights chosen on one half of those rows score the other half, and the other way round, so
choosing the weights does not flatter the score. The saved ensemble uses the weights chosen on
all validation rows.

With cross-validation, a stacked candidate is also built: a logistic (or ridge) regression on
the members' out-of-fold predictions, cross-fitted on the same two halves.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

from trainforge.candidates import CandidateResult, Predictions
from trainforge.metrics import Metric, score_all
from trainforge.model import EnsembleModel, normalised, stacked_outputs
from trainforge.models.registry import is_baseline

ROUNDS = 50
# Members are chosen from the best this many candidates and search trials by primary metric,
# plus the best of every family not among them (different families err differently).
MAX_MEMBERS = 25
COMBINED = ("ensemble", "stacking")  # candidates built from others, never members
STACK_MEMBERS = 10  # the stacked model's meta-learner reads the best this many


def select(outputs: dict[str, np.ndarray], y: np.ndarray, primary: Metric, task: str) -> dict:
    """Greedy selection with replacement: ``{name: weight}``, weights summing to 1."""
    names = list(outputs)
    score = scorer(y, primary, task)
    counts = dict.fromkeys(names, 0)
    best = max(names, key=lambda n: signed(score(outputs[n]), primary))
    counts[best], total = 1, outputs[best].copy()
    for size in range(2, ROUNDS + 1):
        trial = {n: signed(score((total + outputs[n]) / size), primary) for n in names}
        chosen = max(names, key=lambda n: trial[n])  # ties: the earlier (simpler) candidate
        counts[chosen] += 1
        total = total + outputs[chosen]
    return {n: c / ROUNDS for n, c in counts.items() if c}


def build_ensemble(results: list[CandidateResult], primary: Metric, task: str, seed: int, model_of):
    """The ensemble candidate's result (its model in ``model``), or None when fewer than two
    usable candidates exist.

    Args:
        model_of: a candidate result -> its fitted Model (results read back from an earlier
            attempt keep theirs on disk only).
    """
    usable = usable_members(results, primary, task)
    if len(usable) < 2:
        return None
    y = usable[0].valid.y
    outputs = {r.name: member_output(r, task) for r in usable}
    halves = split_halves(y, task, seed)
    crossfit = np.zeros_like(next(iter(outputs.values())))
    for chosen in (halves, ~halves):
        weights = select({n: o[~chosen] for n, o in outputs.items()}, y[~chosen], primary, task)
        crossfit[chosen] = sum(w * outputs[n][chosen] for n, w in weights.items())
    weights = select(outputs, y, primary, task)
    if task != "regression":
        crossfit = normalised(crossfit)
    result = CandidateResult("ensemble", "ensemble", {"weights": weights, "rounds": ROUNDS})
    names = list(usable[0].metrics)
    pred, proba = (crossfit, None) if task == "regression" else (crossfit.argmax(1), crossfit)
    result.metrics = score_all(task, y, pred, proba, names)
    result.valid = Predictions(y, pred, proba, usable[0].valid.fold, usable[0].valid.row)
    result.fit_seconds = sum(r.fit_seconds for r in usable if r.name in weights)
    result.predict_ms_per_1k = sum(r.predict_ms_per_1k for r in usable if r.name in weights)
    members = {r.name: model_of(r) for r in usable if r.name in weights}
    schema = next(iter(members.values())).schema
    result.model = EnsembleModel(members, weights, schema)
    return result


def build_stack(results: list[CandidateResult], primary: Metric, task: str, seed: int, model_of):
    """The stacked candidate under cross-validation, or None with fewer than two usable
    candidates.

    Every candidate's validation predictions are then out-of-fold predictions for all training
    rows, so a logistic regression (ridge for regression) can learn from them how to combine
    the members. Its score comes from predicting each half of those rows with a meta-learner
    fitted on the other half (the halves the ensemble and the final pick use); the saved one is
    fitted on all rows.
    """
    from sklearn.base import clone

    from trainforge.threads import fit_threads, limited

    usable = usable_members(results, primary, task)[:STACK_MEMBERS]
    if len(usable) < 2:
        return None
    y = usable[0].valid.y
    Z = stacked_outputs({r.name: member_output(r, task) for r in usable}, task)
    meta = _meta_learner(task)
    halves = split_halves(y, task, seed)
    crossfit = None
    # BLAS threads held like a candidate's: on covid_test_result (11,643 rows, 30 inputs) the
    # logistic regression took 3.6 s on 2 threads against 0.7 s on one
    with limited(fit_threads(len(y))):
        for chosen in (halves, ~halves):
            part = _meta_output(clone(meta).fit(Z[~chosen], y[~chosen]), Z[chosen], task)
            if crossfit is None:
                crossfit = np.zeros((len(y),) + part.shape[1:])
            crossfit[chosen] = part
        meta.fit(Z, y)
    names = list(usable[0].metrics)
    pred, proba = (crossfit, None) if task == "regression" else (crossfit.argmax(1), crossfit)
    result = CandidateResult("stacking", "stacking", {"members": [r.name for r in usable]})
    result.metrics = score_all(task, y, pred, proba, names)
    result.valid = Predictions(y, pred, proba, usable[0].valid.fold, usable[0].valid.row)
    result.fit_seconds = sum(r.fit_seconds for r in usable)
    result.predict_ms_per_1k = sum(r.predict_ms_per_1k for r in usable)
    members = {r.name: model_of(r) for r in usable}
    schema = next(iter(members.values())).schema
    weights = dict.fromkeys(members, 1.0 / len(members))
    result.model = EnsembleModel(members, weights, schema, meta=meta)
    return result


def _meta_learner(task: str):
    from sklearn.linear_model import LogisticRegression, Ridge

    return Ridge(alpha=1.0) if task == "regression" else LogisticRegression(max_iter=2000)


def _meta_output(meta, Z: np.ndarray, task: str) -> np.ndarray:
    return meta.predict(Z) if task == "regression" else meta.predict_proba(Z)


def usable_members(results: list[CandidateResult], primary: Metric, task: str) -> list:
    """Successful candidates and search trials with validation predictions (and probabilities
    for classes) that can join an ensemble, best first: the MAX_MEMBERS best, then the best of
    each family not yet among them. The baseline, pruned trials and combined candidates are
    left out."""
    usable = [
        r
        for r in results
        if r.status == "ok"
        and r.family not in COMBINED
        and not is_baseline(r.family)
        and r.valid is not None
        and (task == "regression" or r.valid.proba is not None)
        and not math.isnan(r.metrics.get(primary.name, math.nan))
        and (r.trial or {}).get("state") != "PRUNED"
    ]
    usable.sort(key=lambda r: -signed(r.metrics[primary.name], primary))
    chosen = usable[:MAX_MEMBERS]
    families = {r.family for r in chosen}
    for result in usable[MAX_MEMBERS:]:
        if result.family not in families:
            chosen.append(result)
            families.add(result.family)
    return chosen


def member_output(result: CandidateResult, task: str) -> np.ndarray:
    return result.valid.pred.astype(float) if task == "regression" else result.valid.proba


def scorer(y, primary: Metric, task: str):
    """The primary metric as a function of a mixed output. Selection calls it thousands of
    times, so ROC AUC and log loss have direct NumPy versions (equal to scikit-learn's)."""
    if primary.name == "roc_auc":
        positives = y == 1
        n_pos, n_neg = positives.sum(), (~positives).sum()

        def auc(output: np.ndarray) -> float:
            ranks = rankdata(output[:, 1])
            return (ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)

        return auc
    if primary.name == "log_loss":
        rows = np.arange(len(y))

        def log_loss(output: np.ndarray) -> float:
            p = output / output.sum(axis=1, keepdims=True)
            return float(-np.log(np.clip(p[rows, y], 1e-15, 1)).mean())

        return log_loss

    def score(output: np.ndarray) -> float:
        if task == "regression":
            return primary.compute(y, output, None)
        return primary.compute(y, output.argmax(axis=1), output)

    return score


def signed(value: float, primary: Metric) -> float:
    """Higher is better, whatever the metric's direction; NaN ranks last."""
    if math.isnan(value):
        return -math.inf
    return value if primary.greater_is_better else -value


def split_halves(y: np.ndarray, task: str, seed: int) -> np.ndarray:
    """A seeded split of the validation rows in two (stratified for classes)."""
    rng = np.random.default_rng(seed)
    half = np.zeros(len(y), dtype=bool)
    groups = (
        [np.arange(len(y))]
        if task == "regression"
        else [np.flatnonzero(y == label) for label in np.unique(y)]
    )
    for rows in groups:
        half[rng.permutation(rows)[: len(rows) // 2]] = True
    return half
