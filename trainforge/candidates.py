"""Candidates: which models a run trains, and fitting and scoring one of them."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from trainforge.data.dataset import Dataset
from trainforge.data.preprocess import build_preprocessor
from trainforge.errors import SpecError
from trainforge.imbalance import Imbalance, balanced_weights, crossfit_threshold, sampler
from trainforge.metrics import METRICS, Metric, metric_names, score_all
from trainforge.model import BaggedModel, Model
from trainforge.models.external import KEY, estimator_family
from trainforge.models.registry import Family, Profile, get_family, ladder
from trainforge.spec import ModelSpec
from trainforge.threads import fit_threads, limited


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
    threshold: float | None = None
    valid: Predictions | None = None
    # One dict per epoch or boosting round ({"epoch": 1, "loss": ..., "val_loss": ...}), from
    # the estimator's ``history_`` when it keeps one; empty for models that fit in one go.
    history: list[dict] = field(default_factory=list)
    trial: dict[str, Any] | None = None  # a search trial's study, number, params, value, state
    # Whether the leaderboard lists it: a search lists each study's best trial only, while
    # every trial with a saved model can still join the ensemble.
    listed: bool = True
    threads: int | None = None  # the thread count its fits used (trainforge.threads)
    parallel_folds: int = 1  # how many of its fold models trained at once


@dataclass
class Predictions:
    """Validation predictions, folds one after another (the same rows for every candidate).

    ``pred`` holds class codes (after any tuned threshold) or values; ``proba`` is None for
    regression and for models without probabilities; ``fold`` numbers each row's fold and
    ``row`` gives its position among the rows of the training (or validation) file.
    """

    y: np.ndarray
    pred: np.ndarray
    proba: np.ndarray | None
    fold: np.ndarray | None = None
    row: np.ndarray | None = None


def plan(models: list[ModelSpec], profile: Profile) -> tuple[list[Candidate], list[str]]:
    """The candidates to train, in order, and notices about substitutions.

    With no models named, the task's default ladder (simplest first), where families may
    substitute themselves on large data. Named models are trained exactly as named.
    """
    notices: list[str] = []
    if not models:
        chosen = []
        for family in ladder(profile.task, profile.input):
            if not family.available():
                needs = " and ".join(family.requires)
                verb = "are" if len(family.requires) > 1 else "is"
                notices.append(
                    f"{family.name}: left out because {needs} {verb} not installed "
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
            params = spec.params
            if KEY in params:  # the user's own estimator class (trainforge.models.external)
                family = estimator_family(params.pop(KEY), f"models[{index}]", spec.name)
            else:
                family = get_family(spec.name, f"models[{index}]")
            if not family.supports(profile.task, profile.image_shape is not None):
                raise SpecError(
                    f"models[{index}].name: {family.name} does not support {profile.task} tasks; "
                    "`trainforge models` lists what each family supports"
                )
            if profile.modality not in family.inputs:
                raise SpecError(
                    f"models[{index}].name: {family.name} takes {' or '.join(family.inputs)} "
                    f"data, not {profile.modality}; `trainforge models` lists what each takes"
                )
            chosen.append((family, params))
    return name_candidates(chosen), notices


def train_in_turn(candidates: list, run, observer, primary: Metric, train_one: Callable):
    """Each candidate in turn through ``train_one(candidate)``, with its ``metrics.json`` and
    the observers told: ``(results, timings, best)``. For the runners that fit each candidate
    once (clustering, reduction, generation).

    Raises:
        RunError: every candidate failed.
    """
    from trainforge.atomic import write_json
    from trainforge.candidate_run import record
    from trainforge.errors import RunError
    from trainforge.leaderboard import ranked

    results, timings = [], {"candidates": {}}
    for index, candidate in enumerate(candidates, start=1):
        observer.candidate_started(index, len(candidates), candidate.name)
        clock = time.perf_counter()
        result = train_one(candidate)
        timings["candidates"][candidate.name] = round(time.perf_counter() - clock, 3)
        write_json(run.path / "candidates" / candidate.name / "metrics.json", record(result))
        results.append(result)
        observer.candidate_finished(index, len(candidates), result)
    best = ranked(results, primary)[0]
    if best.status != "ok":
        raise RunError(f"every candidate failed; see {run.path / 'candidates'}/*/error.txt")
    return results, timings, best


def saved_or_failed(
    candidate: Candidate, folder: Path, fit: Callable[[], CandidateResult]
) -> CandidateResult:
    """``fit()``'s result, its model saved as a bundle in ``folder/model``. For runners that
    fit each candidate once (clustering, reduction, generation): any exception but trainforge's
    own errors and Ctrl-C fails this candidate alone, its traceback in ``folder/error.txt``."""
    import traceback

    from trainforge.bundle import save_bundle
    from trainforge.errors import TrainforgeError

    try:
        result = fit()
        save_bundle(result.model, folder / "model", extra={"candidate": candidate.name})
        result.size_kb = sum(f.stat().st_size for f in (folder / "model").rglob("*")) / 1024
    except (TrainforgeError, KeyboardInterrupt):
        raise
    except Exception as exc:  # one broken candidate must not sink the others
        (folder / "error.txt").write_text(traceback.format_exc())
        result = CandidateResult(candidate.name, candidate.family.name, candidate.params)
        result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
    return result


def name_candidates(chosen: list[tuple[Family, dict]]) -> list[Candidate]:
    """Candidates named after their family, with ``_2``, ``_3``... for repeats."""
    seen: dict[str, int] = {}
    candidates = []
    for family, params in chosen:
        seen[family.name] = seen.get(family.name, 0) + 1
        suffix = f"_{seen[family.name]}" if seen[family.name] > 1 else ""
        candidates.append(Candidate(family.name + suffix, family, params))
    return candidates


def make_pipeline(
    candidate: Candidate,
    dataset: Dataset,
    profile: Profile,
    resample: str = "none",
    threads: int = 1,
    device: str = "cpu",
):
    """An unfitted Pipeline: preprocessing built from the schema, then the estimator.

    With ``resample`` set, an imbalanced-learn sampler sits between them; it acts in fit only,
    and ``_fit`` removes it afterwards so the saved model is a plain scikit-learn Pipeline.
    ``threads`` is the estimator's ``n_jobs`` unless the candidate's parameters set it; so is
    ``device`` its device, for the estimators that take one.
    """
    from sklearn.pipeline import Pipeline

    features, mask = build_preprocessor(
        dataset.schema, candidate.family.prep_for(profile.input), profile.seed
    )
    profile = replace(profile, categorical_mask=mask)
    params = candidate.params
    if device != "cpu" and "device" not in params:
        params = {**params, "device": device}
    estimator = candidate.family.build(profile, params, threads)
    if resample == "none":
        return Pipeline([("features", features), ("model", estimator)])
    from imblearn.pipeline import Pipeline as SamplingPipeline

    steps = [("features", features), ("resample", sampler(resample, profile.seed, mask))]
    return SamplingPipeline([*steps, ("model", estimator)])


def fit_candidate(
    candidate: Candidate,
    dataset: Dataset,
    profile: Profile,
    primary: Metric,
    checkpoints: Path | None = None,
    imbalance: Imbalance | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
    callbacks: Callable[[str], list] | None = None,
    on_round: Callable[[int, dict], None] | None = None,
    device: str = "cpu",
    data_parallel: int = 1,
) -> CandidateResult:
    """Fit on each fold's training rows, score on its validation rows, keep the fitted model.

    Under cross-validation the kept model is the average of the fold models (a BaggedModel),
    and the validation predictions are out-of-fold predictions for every training row.
    Estimators that checkpoint (neural nets) write to ``checkpoints/<fold>`` and resume from
    there; those that train epoch by epoch call ``on_epoch(step, logs)`` after each epoch. With
    class imbalance, ``imbalance`` says whether to weight classes, resample, and tune a
    threshold. ``callbacks(part, workers)``, when given, lists extra callbacks (pruning, a
    deadline) for the fit of ``part`` (``fold-0``, ``fold-1``, ...) while ``workers`` folds fit
    at once; the estimators whose ``fit`` takes ``callbacks`` (the torch nets and the boosting
    families) receive them. ``data_parallel`` above 1 trains the neural nets of the one-net
    loop on that many Ray Train workers (trainforge.distributed).
    """
    settings = {**candidate.family.initial(profile), **candidate.params}
    result = CandidateResult(candidate.name, candidate.family.name, settings)
    names = metric_names(profile.task, primary.name, bool(imbalance and imbalance.imbalanced))
    weigh = bool(imbalance and imbalance.class_weight and candidate.family.sample_weight)
    resample = imbalance.resample if imbalance else "none"
    if weigh:
        settings["class_weight"] = "balanced"  # as sample weights; recorded with the settings
    if resample != "none":
        settings["resample"] = resample
    threads = _threads(settings.get("n_jobs"), profile.n_rows)
    result.threads = threads
    if candidate.family.threaded:
        settings["n_jobs"] = threads  # results can depend on it, so it is recorded
    needs_torch = "torch" in candidate.family.requires
    workers = _fold_workers(candidate, len(dataset.folds), threads)

    def fit_fold(index: int, fold):
        rounds = _fold_rounds(on_round, index, len(dataset.folds))
        runtime = _runtime(checkpoints, f"fold-{index}", on_epoch, callbacks, rounds, workers)
        if data_parallel > 1:
            runtime["data_parallel"] = data_parallel
        pipeline = make_pipeline(candidate, dataset, profile, resample, threads, device)
        # again in the thread that fits: OpenMP's thread count is a setting of each thread, so
        # the limit set around all folds missed the fold workers (histogram boosting ran two
        # threads in each of two workers on 2 cores: 21 s for car's five folds)
        with limited(threads, needs_torch):
            started = time.perf_counter()
            pipeline = _fit(pipeline, fold.X_train, fold.y_train, weigh, runtime)
            fitted = time.perf_counter() - started
            started = time.perf_counter()
            model = Model(pipeline, dataset.schema, candidate.family.name)
            pred, proba = model.raw_predict(fold.X_valid)
            predicted = time.perf_counter() - started
        part = Predictions(fold.y_valid, pred, proba, row=fold.X_valid.index.to_numpy())
        scores = score_all(profile.task, fold.y_valid, pred, proba, names)
        return model, part, scores, fitted, predicted

    with warnings.catch_warnings(record=True) as caught, limited(threads, needs_torch):
        warnings.simplefilter("always")
        folds = list(enumerate(dataset.splits()))
        if workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers, thread_name_prefix="trainforge-fold") as pool:
                fitted_folds = list(pool.map(lambda item: fit_fold(*item), folds))
        else:
            fitted_folds = [fit_fold(index, fold) for index, fold in folds]
    models = [f[0] for f in fitted_folds]
    parts = [f[1] for f in fitted_folds]
    fold_scores = [f[2] for f in fitted_folds]
    result.fit_seconds = sum(f[3] for f in fitted_folds)
    predict_seconds = sum(f[4] for f in fitted_folds)
    result.parallel_folds = workers
    model = models[0]
    if len(models) > 1:
        model = BaggedModel(models, dataset.schema, candidate.family.name)
    result.warnings = _distinct(caught)
    result.metrics = {name: float(np.mean([s[name] for s in fold_scores])) for name in names}
    result.valid = _joined(parts)
    if len(fold_scores) > 1:
        result.primary_std = float(np.std([s[primary.name] for s in fold_scores]))
        # out-of-fold scores: every training row predicted by a model that never saw it
        result.metrics = score_all(
            profile.task, result.valid.y, result.valid.pred, result.valid.proba, names
        )
    # the saved model predicts with every fold model: its cost per row is theirs together
    result.predict_ms_per_1k = 1e6 * predict_seconds * len(models) / max(len(result.valid.y), 1)
    if imbalance and imbalance.threshold_metric and result.valid.proba is not None:
        apply_threshold(result, names, imbalance.threshold_metric, profile.seed)
        model.threshold = result.threshold
    result.model = model
    result.history = _history(models[0].pipeline)
    return result


def _fold_workers(candidate: Candidate, folds: int, threads: int) -> int:
    """How many fold models train at once: the free cores, when each fit runs on one thread,
    the family does not train on torch (its loop is Python-heavy) and the spec did not set
    ``n_jobs``. Native fitting code releases the GIL, so threads share the cores; each fold's
    model is the same as when fitted alone."""
    from trainforge.threads import free_cores

    if folds < 2 or threads != 1 or "torch" in candidate.family.requires:
        return 1
    if "n_jobs" in candidate.params:
        return 1
    return max(1, min(folds, free_cores()))


def _fold_rounds(on_round, index: int, folds: int):
    """``on_round`` for fold ``index`` of ``folds``: its logs say which fold (``fold``, counted
    from 1, and ``folds``), since bagged folds can fit at once and their rounds interleave."""
    if on_round is None or folds < 2:
        return on_round
    return lambda round_, logs: on_round(round_, {**logs, "fold": index + 1, "folds": folds})


def _threads(n_jobs, rows: int) -> int:
    """The fit's thread count: the user's ``n_jobs`` (-1: every usable core), else what
    ``fit_threads`` allows now."""
    from trainforge.threads import usable_cores

    if n_jobs is None:
        return fit_threads(rows)
    return usable_cores() if int(n_jobs) < 0 else max(1, int(n_jobs))


def _joined(parts: list[Predictions]) -> Predictions:
    proba = None if parts[0].proba is None else np.concatenate([p.proba for p in parts])
    folds = np.concatenate([np.full(len(p.y), i) for i, p in enumerate(parts)])
    return Predictions(
        np.concatenate([p.y for p in parts]),
        np.concatenate([p.pred for p in parts]),
        proba,
        folds,
        np.concatenate([p.row for p in parts]),
    )


def apply_threshold(result: CandidateResult, names: list[str], metric: str, seed: int) -> None:
    """Re-score label-based metrics with a tuned binary threshold, honestly (cross-fitted), and
    keep the threshold tuned on all validation rows for the saved model."""
    valid = result.valid
    crossfit, threshold = crossfit_threshold(valid.y, valid.proba[:, 1], metric, seed)
    labels = [name for name in names if not METRICS[name].needs_proba]
    result.metrics.update(score_all("binary", valid.y, crossfit, None, labels))
    result.threshold = threshold
    valid.pred = crossfit


def _runtime(
    checkpoints: Path | None, part: str, on_epoch=None, callbacks=None, on_round=None, workers=1
) -> dict:
    """``fit``'s runtime arguments: where a checkpointing estimator writes (resuming whatever
    it finds there), whom it tells about each epoch (or boosting round), and extra loop
    callbacks (a search's deadline and pruning). ``_fit`` passes each only to estimators whose
    ``FIT_RUNTIME`` names it."""
    runtime = {} if on_epoch is None else {"on_epoch": on_epoch}
    if on_round is not None:  # boosting rounds, for a live display
        runtime["on_round"] = on_round
    if callbacks is not None:
        runtime["callbacks"] = callbacks(part, workers)
    if checkpoints is not None:
        runtime.update(checkpoint_dir=str(checkpoints / part), resume=True)
    return runtime


def _history(pipeline) -> list[dict]:
    """The fitted estimator's per-epoch (or per-round) records, if it keeps them."""
    history = getattr(pipeline[-1], "history_", None)
    if not isinstance(history, list):
        return []
    return [dict(entry) for entry in history if isinstance(entry, dict)]


def _fit(pipeline, X, y, weigh: bool = False, runtime: dict | None = None):
    """Fit (with balanced class weights when ``weigh``, and the ``runtime`` arguments the
    estimator's ``fit`` takes) and return the pipeline to keep.

    A resampling step is dropped after the fit: it only ever acts on training rows. Forests add
    up their trees' outputs in whatever order threads finish, so multi-threaded predictions
    differ in the last bit from call to call (seen: 10 calls, 10 different results). A saved
    model must predict the same numbers every time, so fitted ensembles predict on one thread;
    they still fit on all cores.
    """
    from sklearn.pipeline import Pipeline

    extra = {"model__sample_weight": balanced_weights(y)} if weigh else {}
    accepted = getattr(pipeline[-1], "FIT_RUNTIME", ())
    extra.update({f"model__{k}": v for k, v in (runtime or {}).items() if k in accepted})
    pipeline.fit(X, y, **extra)
    if "resample" in pipeline.named_steps:
        pipeline = Pipeline([(n, s) for n, s in pipeline.steps if n != "resample"])
    model = pipeline[-1]
    if hasattr(model, "estimators_") and "n_jobs" in model.get_params():
        model.set_params(n_jobs=1)
    return pipeline


def _distinct(caught) -> list[str]:
    messages: list[str] = []
    for item in caught:
        text = f"{item.category.__name__}: {str(item.message).strip().splitlines()[0][:200]}"
        if text not in messages:
            messages.append(text)
    return messages
