"""Candidates: which models a run trains, and fitting and scoring one of them."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from trainforge.data.dataset import Dataset
from trainforge.data.preprocess import build_preprocessor
from trainforge.errors import SpecError
from trainforge.metrics import STANDARD, Metric, score_all
from trainforge.model import Model
from trainforge.models.registry import Family, Profile, get_family, ladder
from trainforge.spec import ModelSpec


@dataclass(frozen=True)
class Candidate:
    name: str
    family: Family
    params: dict[str, Any]


@dataclass
class CandidateResult:
    """A candidate's outcome. ``metrics`` are validation scores (fold means under CV)."""

    name: str
    family: str
    settings: dict[str, Any]
    status: str = "ok"
    metrics: dict[str, float] = field(default_factory=dict)
    primary_std: float | None = None
    fit_seconds: float = 0.0
    predict_ms_per_1k: float = float("nan")
    size_kb: float = float("nan")
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    model: Model | None = None


def plan(models: list[ModelSpec], profile: Profile) -> tuple[list[Candidate], list[str]]:
    """The candidates to train, in order, and notices about substitutions.

    With no models named, the task's default ladder (simplest first), where families may
    substitute themselves on large data. Named models are trained exactly as named.
    """
    notices: list[str] = []
    if not models:
        chosen = []
        for family in ladder(profile.task, profile.modality):
            if not family.available():
                needs = " and ".join(family.requires)
                notices.append(
                    f"{family.name}: left out because {needs} is not installed "
                    f'(pip install "trainforge[{family.requires[0]}]")'
                )
                continue
            change = family.substitute(profile) if family.substitute else None
            if change is not None:
                notices.append(change.notice)
                if change.use is None:
                    continue
                family = get_family(change.use)
            chosen.append((family, {}))
    else:
        chosen = []
        for index, spec in enumerate(models):
            family = get_family(spec.name, f"models[{index}]")
            if not family.supports(profile.task):
                raise SpecError(
                    f"models[{index}].name: {family.name} does not support {profile.task} tasks; "
                    "`trainforge models` lists what each family supports"
                )
            if profile.modality not in family.inputs:
                raise SpecError(
                    f"models[{index}].name: {family.name} takes {' or '.join(family.inputs)} "
                    f"data, not {profile.modality}; `trainforge models` lists what each takes"
                )
            chosen.append((family, spec.params))
    return _named(chosen), notices


def _named(chosen: list[tuple[Family, dict]]) -> list[Candidate]:
    seen: dict[str, int] = {}
    candidates = []
    for family, params in chosen:
        seen[family.name] = seen.get(family.name, 0) + 1
        suffix = f"_{seen[family.name]}" if seen[family.name] > 1 else ""
        candidates.append(Candidate(family.name + suffix, family, params))
    return candidates


def make_pipeline(candidate: Candidate, dataset: Dataset, profile: Profile, runtime=None):
    """An unfitted Pipeline: preprocessing built from the schema, then the estimator."""
    from sklearn.pipeline import Pipeline

    features, mask = build_preprocessor(dataset.schema, candidate.family.prep, profile.seed)
    profile = replace(profile, categorical_mask=mask)
    estimator = candidate.family.build(profile, candidate.params, runtime)
    return Pipeline([("features", features), ("model", estimator)])


def fit_candidate(
    candidate: Candidate,
    dataset: Dataset,
    profile: Profile,
    primary: Metric,
    checkpoints: Path | None = None,
) -> CandidateResult:
    """Fit on each fold's training rows, score on its validation rows, keep the fitted model.

    Under cross-validation the kept model is refitted on all training rows. Estimators that
    checkpoint (neural nets) write to ``checkpoints/<fold>`` and resume from there.
    """
    settings = {**candidate.family.initial(profile), **candidate.params}
    result = CandidateResult(candidate.name, candidate.family.name, settings)
    names = [primary.name] + [m for m in STANDARD[profile.task] if m != primary.name]
    fold_scores, predict_seconds, predicted_rows = [], 0.0, 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for index, fold in enumerate(dataset.splits()):
            runtime = _runtime(checkpoints, f"fold-{index}")
            pipeline = make_pipeline(candidate, dataset, profile, runtime)
            started = time.perf_counter()
            _fit(pipeline, fold.X_train, fold.y_train)
            result.fit_seconds += time.perf_counter() - started
            started = time.perf_counter()
            model = Model(pipeline, dataset.schema, candidate.family.name)
            pred, proba = model.raw_predict(fold.X_valid)
            predict_seconds += time.perf_counter() - started
            predicted_rows += len(fold.X_valid)
            fold_scores.append(score_all(profile.task, fold.y_valid, pred, proba, names))
        if dataset.refit:
            pipeline = make_pipeline(candidate, dataset, profile, _runtime(checkpoints, "refit"))
            _fit(pipeline, dataset.X, dataset.y)
            model = Model(pipeline, dataset.schema, candidate.family.name)
    result.warnings = _distinct(caught)
    result.metrics = {name: float(np.mean([s[name] for s in fold_scores])) for name in names}
    if len(fold_scores) > 1:
        result.primary_std = float(np.std([s[primary.name] for s in fold_scores]))
    result.predict_ms_per_1k = 1e6 * predict_seconds / max(predicted_rows, 1)
    result.model = model
    return result


def _runtime(checkpoints: Path | None, part: str) -> dict:
    """Where a checkpointing estimator writes, resuming whatever it finds there."""
    if checkpoints is None:
        return {}
    return {"checkpoint_dir": str(checkpoints / part), "resume": True}


def _fit(pipeline, X, y) -> None:
    """Fit, then make predictions repeatable.

    Forests add up their trees' outputs in whatever order threads finish, so multi-threaded
    predictions differ in the last bit from call to call (seen: 10 calls, 10 different
    results). A saved model must predict the same numbers every time, so fitted ensembles
    predict on one thread; they still fit on all cores.
    """
    pipeline.fit(X, y)
    model = pipeline[-1]
    if hasattr(model, "estimators_") and "n_jobs" in model.get_params():
        model.set_params(n_jobs=1)


def _distinct(caught) -> list[str]:
    messages: list[str] = []
    for item in caught:
        text = f"{item.category.__name__}: {str(item.message).strip().splitlines()[0][:200]}"
        if text not in messages:
            messages.append(text)
    return messages
