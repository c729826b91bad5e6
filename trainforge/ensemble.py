"""Ensemble candidates built from the others' validation predictions.

Greedy ensemble selection (Caruana et al. 2004): start from the best single candidate and keep
adding, with replacement, whichever candidate most improves the averaged prediction's primary
metric; a candidate's weight is how often it was added. The members never trained on the
validation rows the weights are chosen on, and the ensemble's own leaderboard score is
cross-fitted: weights chosen on one half of those rows score the other half, and the other way
round, so choosing the weights does not flatter the score. The saved ensemble uses the weights
chosen on all validation rows.

With cross-validation, a stacked candidate is also built: a logistic (or ridge) regression on
the members' out-of-fold predictions, scored by cross-validation over those predictions.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from trainforge.atomic import fsync_dir, fsync_tree
from trainforge.candidates import CandidateResult, Predictions
from trainforge.data.schema import Schema
from trainforge.errors import BundleError
from trainforge.metrics import Metric, score_all
from trainforge.model import Model

ROUNDS = 50
META_FILE = "meta.skops"
MAX_MEMBERS = 12  # the best candidates by primary metric; more rarely helps and costs time


class EnsembleModel(Model):
    """A weighted average of member models' probabilities (or predictions, for regression),
    or with ``meta`` set, a stacked model: ``meta`` (a fitted logistic or ridge regression)
    combines the members' outputs.

    Members read the same feature frame, so rows are typed once for all of them.
    """

    def __init__(
        self,
        members: dict[str, Model],
        weights: dict[str, float],
        schema: Schema,
        threshold: float | None = None,
        meta=None,
    ):
        super().__init__(None, schema, "stacking" if meta is not None else "ensemble", threshold)
        self.members = members
        self.weights = weights
        self.meta = meta

    @property
    def has_proba(self) -> bool:
        return self.task != "regression"

    def raw_predict(self, features: pd.DataFrame):
        outputs = {name: self._output(model, features) for name, model in self.members.items()}
        if self.meta is not None:
            mixed = _meta_output(self.meta, _stacked(outputs, self.task), self.task)
        else:
            mixed = sum(self.weights[name] * out for name, out in outputs.items())
            if self.task != "regression":
                mixed = _normalised(mixed)
        if self.task == "regression":
            return mixed, None
        if self.threshold is not None and mixed.shape[1] == 2:
            return (mixed[:, 1] >= self.threshold).astype(int), mixed
        return mixed.argmax(axis=1), mixed

    def predict_proba(self, data) -> pd.DataFrame:
        return self._proba(self.raw_predict(self.features(data))[1])

    def _output(self, model: Model, features):
        pred, proba = model.raw_predict(features)
        return pred if self.task == "regression" else proba


def select(outputs: dict[str, np.ndarray], y: np.ndarray, primary: Metric, task: str) -> dict:
    """Greedy selection with replacement: ``{name: weight}``, weights summing to 1."""
    names = list(outputs)
    score = _scorer(y, primary, task)
    counts = dict.fromkeys(names, 0)
    best = max(names, key=lambda n: _signed(score(outputs[n]), primary))
    counts[best], total = 1, outputs[best].copy()
    for size in range(2, ROUNDS + 1):
        trial = {n: _signed(score((total + outputs[n]) / size), primary) for n in names}
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
    usable = _usable(results, primary, task)
    if len(usable) < 2:
        return None
    y = usable[0].valid.y
    outputs = {r.name: _member_output(r, task) for r in usable}
    halves = _halves(y, task, seed)
    crossfit = np.zeros_like(next(iter(outputs.values())))
    for chosen in (halves, ~halves):
        weights = select({n: o[~chosen] for n, o in outputs.items()}, y[~chosen], primary, task)
        crossfit[chosen] = sum(w * outputs[n][chosen] for n, w in weights.items())
    weights = select(outputs, y, primary, task)
    if task != "regression":
        crossfit = _normalised(crossfit)
    result = CandidateResult("ensemble", "ensemble", {"weights": weights, "rounds": ROUNDS})
    names = list(usable[0].metrics)
    pred, proba = (crossfit, None) if task == "regression" else (crossfit.argmax(1), crossfit)
    result.metrics = score_all(task, y, pred, proba, names)
    result.valid = Predictions(y, pred, proba)
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
    the members. Its score comes from predicting each row with a meta-learner that did not see
    it (5-fold cross-validation over those predictions); the saved one is fitted on all rows.
    """
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

    usable = _usable(results, primary, task)
    if len(usable) < 2:
        return None
    y = usable[0].valid.y
    Z = _stacked({r.name: _member_output(r, task) for r in usable}, task)
    meta = _meta_learner(task)
    splitter = KFold if task == "regression" else StratifiedKFold
    folds = splitter(n_splits=5, shuffle=True, random_state=seed)
    method = "predict" if task == "regression" else "predict_proba"
    crossfit = cross_val_predict(clone(meta), Z, y, cv=folds, method=method)
    meta.fit(Z, y)
    names = list(usable[0].metrics)
    pred, proba = (crossfit, None) if task == "regression" else (crossfit.argmax(1), crossfit)
    result = CandidateResult("stacking", "stacking", {"members": [r.name for r in usable]})
    result.metrics = score_all(task, y, pred, proba, names)
    result.valid = Predictions(y, pred, proba)
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


def _stacked(outputs: dict[str, np.ndarray], task: str) -> np.ndarray:
    """Members' outputs side by side: predictions, or log-probabilities (binary: class 1 only)."""
    columns = []
    for output in outputs.values():
        if task == "regression":
            columns.append(np.asarray(output, float).reshape(-1, 1))
        else:
            logp = np.log(np.clip(output, 1e-6, 1))
            columns.append(logp[:, 1:] if output.shape[1] == 2 else logp)
    return np.hstack(columns)


def _meta_output(meta, Z: np.ndarray, task: str) -> np.ndarray:
    return meta.predict(Z) if task == "regression" else meta.predict_proba(Z)


def _normalised(proba: np.ndarray) -> np.ndarray:
    """Rows summing to 1 in float64 (float32 members, such as the MLP's softmax, are off by
    about 1e-7, which scikit-learn's log loss warns about)."""
    return proba / proba.sum(axis=1, keepdims=True)


def _usable(results: list[CandidateResult], primary: Metric, task: str) -> list:
    """Successful candidates with validation predictions (and probabilities for classes),
    best first, at most MAX_MEMBERS; the baseline is left out."""
    usable = [
        r
        for r in results
        if r.status == "ok"
        and r.family not in ("baseline", "ensemble", "stacking")
        and r.valid is not None
        and (task == "regression" or r.valid.proba is not None)
        and not math.isnan(r.metrics.get(primary.name, math.nan))
    ]
    usable.sort(key=lambda r: -_signed(r.metrics[primary.name], primary))
    return usable[:MAX_MEMBERS]


def _member_output(result: CandidateResult, task: str) -> np.ndarray:
    return result.valid.pred.astype(float) if task == "regression" else result.valid.proba


def _scorer(y, primary: Metric, task: str):
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


def _signed(value: float, primary: Metric) -> float:
    """Higher is better, whatever the metric's direction; NaN ranks last."""
    if math.isnan(value):
        return -math.inf
    return value if primary.greater_is_better else -value


def _halves(y: np.ndarray, task: str, seed: int) -> np.ndarray:
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


# -- saving and loading (no pickle: members are ordinary bundles) ---------------------------


def save_ensemble(model: EnsembleModel, path: Path, extra: dict | None = None) -> Path:
    """Write the ensemble as a folder of member bundles plus bundle.json with the weights."""
    from trainforge.bundle import ENSEMBLE_FORMAT, INFO_FILE, save_bundle

    path = Path(path)
    if path.exists():
        raise BundleError(f"{path} already exists; choose a new folder for the model")
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    staging.mkdir(parents=True)
    try:
        for name, member in model.members.items():
            save_bundle(member, staging / "members" / name, extra={"candidate": name})
        if model.meta is not None:
            import skops.io as sio

            sio.dump(model.meta, staging / META_FILE)
        info = {
            "format": ENSEMBLE_FORMAT,
            "family": model.family,
            "schema": model.schema.to_dict(),
            "weights": model.weights,
            "threshold": model.threshold,
            **(extra or {}),
        }
        if model.meta is not None:
            from trainforge.data.read import file_sha256

            info["meta_sha256"] = file_sha256(staging / META_FILE)
        (staging / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
        fsync_tree(staging)
        os.replace(staging, path)
        fsync_dir(path.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def load_ensemble(path: Path, info: dict) -> EnsembleModel:
    """Load the members (each checked as its own bundle) and combine them."""
    from trainforge.bundle import load_bundle

    weights = {str(k): float(v) for k, v in info["weights"].items()}
    members = {}
    for name in weights:
        folder = path / "members" / name
        if not folder.is_dir():
            raise BundleError(f"{path}: member {name} is missing; the ensemble is incomplete")
        members[name] = load_bundle(folder)
    schema = Schema.from_dict(info["schema"])
    meta = (
        _load_meta(path / META_FILE, info.get("meta_sha256")) if info.get("meta_sha256") else None
    )
    return EnsembleModel(members, weights, schema, info.get("threshold"), meta)


def _load_meta(path: Path, expected: str):
    """The stacked model's meta-learner: a plain linear model in skops format, checked against
    its recorded sha256 and loaded with no types beyond scikit-learn's own."""
    import skops.io as sio

    from trainforge.data.read import file_sha256

    if not path.is_file() or file_sha256(path) != expected:
        raise BundleError(f"{path} is missing or changed since it was saved; refusing to load it")
    untrusted = sio.get_untrusted_types(file=path)
    if untrusted:
        raise BundleError(f"{path} holds types trainforge does not trust: {', '.join(untrusted)}")
    return sio.load(path, trusted=[])
