"""Executing a RunSpec: data, candidates, leaderboard and every artifact of the run folder."""

from __future__ import annotations

import inspect
import json
import math
import shutil
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import yaml

from trainforge.artifacts import (
    read_history,
    read_predictions,
    save_candidate_files,
    write_importance,
)
from trainforge.atomic import write_json
from trainforge.bundle import load_bundle, save_bundle
from trainforge.candidates import CandidateResult, apply_threshold, fit_candidate, plan
from trainforge.data.dataset import Dataset, load_dataset, with_folds
from trainforge.data.modality import modality_of
from trainforge.ensemble import build_ensemble, build_stack
from trainforge.errors import RunError, TrainforgeError, TrainingError
from trainforge.events import FanOut, RunObserver, SilentObserver
from trainforge.imbalance import plan_imbalance
from trainforge.leaderboard import leaderboard_frame, ranked
from trainforge.metrics import Metric, primary_metric
from trainforge.model import Model
from trainforge.models.registry import Profile
from trainforge.report import write_report
from trainforge.rundir import RunDir, read_manifest
from trainforge.search.budget import CV_ROWS, cross_validates
from trainforge.spec import UNSUPERVISED, RunSpec, build_spec


@dataclass
class RunResult:
    """What a finished run hands back in Python.

    Attributes:
        results: every candidate's outcome; models other than the best are on disk only.
    """

    path: Path
    leaderboard: pd.DataFrame
    best: Model
    best_name: str
    results: list[CandidateResult]


def execute(
    spec: RunSpec,
    train: pd.DataFrame | None = None,
    validation: pd.DataFrame | None = None,
    observer: RunObserver | None = None,
) -> RunResult:
    """Run ``spec`` end to end. In-memory frames, when given, replace the spec's files.

    The run folder is marked ``completed`` only after every artifact is written; an error marks
    it ``failed`` (with the message), Ctrl-C marks it ``interrupted``.
    """
    observers = _observers(spec, observer)  # a tracking server that is down fails here
    run = RunDir.create(spec.output, spec.name, spec.seed)
    run.write_text("spec.yaml", spec.to_yaml())
    return _guarded(spec, run, train, validation, observers)


def resume(
    path: Path, observer: RunObserver | None = None, tracking: dict | None = None
) -> RunResult:
    """Continue an interrupted or failed run in its own folder.

    Candidates that finished are read back from disk; the others train again, and those that
    checkpoint (neural nets) continue from their newest good checkpoint. The input files must
    be unchanged.

    Args:
        tracking: flat tracking settings overriding the run's spec for this attempt
            (``tracking``, ``tracking_uri``, ``experiment``), as from the CLI's flags.
    """
    manifest = read_manifest(path)
    status = manifest["status"]
    if status == "completed":
        raise RunError(f"run {path.name} is already completed; nothing to resume")
    if status == "running":
        raise RunError(f"run {path.name} is still running (pid {manifest.get('pid')})")
    spec = RunSpec.from_dict(yaml.safe_load((path / "spec.yaml").read_text()))
    if tracking:
        spec = build_spec(spec, **tracking)
    if spec.data.train is None:
        raise RunError(f"run {path.name} trained on in-memory data, which cannot be resumed")
    observers = _observers(spec, observer)
    run = RunDir.reopen(path)
    return _guarded(spec, run, None, None, observers)


def _observers(spec: RunSpec, observer: RunObserver | None) -> FanOut:
    """The caller's observer, the tracker the spec asks for, and the training watchdog."""
    from trainforge.tracking import open_tracker
    from trainforge.watchdog import Watchdog

    observers = FanOut(observer or SilentObserver(), open_tracker(spec))
    observers.add(Watchdog(observers.warning))
    return observers


def _guarded(spec, run: RunDir, train, validation, observer) -> RunResult:
    started = time.time()
    observer.run_started(run.manifest["id"], str(run.path))
    try:
        result = _train_all(spec, run, train, validation, observer)
    except KeyboardInterrupt:
        run.finish("interrupted", started)
        observer.run_finished("interrupted", str(run.path))
        raise
    except TrainforgeError as exc:
        run.finish("failed", started, error=str(exc))
        observer.run_finished("failed", str(run.path))
        raise
    except Exception as exc:
        run.finish("failed", started, error=f"{type(exc).__name__}: {exc}")
        observer.run_finished("failed", str(run.path))
        raise
    run.finish("completed", started)
    observer.run_finished("completed", str(run.path))
    return result


def _train_all(spec, run: RunDir, train, validation, observer) -> RunResult:
    if spec.task.value in UNSUPERVISED:  # clustering, reduction: no target, no split
        from trainforge.unsupervised.runner import train_all

        return train_all(spec, run, train, observer)
    clock = time.perf_counter()
    begun = time.monotonic()
    dataset = load_dataset(spec.data, spec.task.value, spec.seed, train, validation)
    timings = {"data_seconds": round(time.perf_counter() - clock, 3), "candidates": {}}
    _check_unchanged(run, spec, dataset)
    primary = primary_metric(spec.metric, dataset.task)
    profile = _profile(dataset, spec.seed)
    if cross_validates(spec, dataset, profile.modality):
        spec, dataset = _cross_validated(spec, dataset, run)
    candidates, substitutions = plan(spec.models, profile)
    classes = dataset.schema.classes
    imbalance = plan_imbalance(dataset.y, classes, dataset.task, primary.name, spec.imbalance)
    notices = dataset.notices + substitutions
    if imbalance and imbalance.noteworthy:
        notices.append(imbalance.describe())
    for message in notices:
        observer.notice(message)
    run.update(
        task=dataset.task,
        primary_metric=primary.name,
        inputs=_inputs(spec, dataset),
        data=_data_summary(spec, dataset),
        notices=notices,
        imbalance=asdict(imbalance) if imbalance else None,
    )
    results, best = [], None
    if spec.budget is not None:  # a portfolio, then search, within the budget (docs/search.md)
        from trainforge.search.tuner import search

        def train_one(candidate, dataset, profile, primary, run, callbacks=None, save_if=None):
            on_epoch = _epoch_forwarder(observer, candidate, profile)
            return _train_one(
                candidate, dataset, profile, primary, run, imbalance, on_epoch, callbacks, save_if
            )

        results, best = search(
            spec, candidates, dataset, profile, primary, run, observer, train_one, begun
        )
        candidates = []
    closing = time.monotonic()  # under a budget, what follows counts in it (docs/search.md)
    # stacking needs out-of-fold predictions; under a time limit it is left out (it re-saves
    # every member: 12 s on segment, twice the closing reserve of a 60 s budget)
    timed = spec.budget is not None and spec.budget.time is not None
    combined = ["ensemble", "stacking"] if dataset.refit and not timed else ["ensemble"]
    total = len(results) + len(candidates) + (len(combined) if spec.ensemble else 0)
    for index, candidate in enumerate(candidates, start=1):
        observer.candidate_started(index, total, candidate.name)
        clock = time.perf_counter()
        on_epoch = _epoch_forwarder(observer, candidate, profile)
        result = _train_one(candidate, dataset, profile, primary, run, imbalance, on_epoch)
        timings["candidates"][candidate.name] = round(time.perf_counter() - clock, 3)
        results.append(result)
        best = _keep_best(best, result, primary)
        observer.candidate_finished(index, total, result)
    for index, name in enumerate(combined if spec.ensemble else [], start=len(results) + 1):
        observer.candidate_started(index, total, name)
        clock = time.perf_counter()
        result = _ensemble(name, results, dataset, primary, run, imbalance, spec.seed)
        timings["candidates"][name] = round(time.perf_counter() - clock, 3)
        if result is not None:
            results.append(result)
            best = _keep_best(best, result, primary)
            observer.candidate_finished(index, total, result)
    if best is None or best.status != "ok":
        raise RunError(f"every candidate failed; see {run.path / 'candidates'}/*/error.txt")
    if best.model is None:  # finished in an earlier attempt at this run
        best.model = load_bundle(run.path / "candidates" / best.name / "model")
    board = leaderboard_frame(results, primary, dataset.task)
    run.write_text("leaderboard.csv", board.to_csv(index=False))
    _importance(best, dataset, primary, run, observer, _left_for_importance(spec, run, closing))
    run.update(
        best={"candidate": best.name, primary.name: best.metrics[primary.name]},
        timings=timings,
        threads={r.name: r.settings["n_jobs"] for r in results if "n_jobs" in r.settings},
        warnings=_raised(observer),
    )
    write_report(run.path, status="completed")  # the last artifact; completed comes next
    if spec.budget is not None:
        from trainforge.search.budget import closed

        run.update(budget=closed(run.manifest["budget"], time.monotonic() - closing))
    return RunResult(run.path, board, best.model, best.name, results)


def _cross_validated(spec: RunSpec, dataset: Dataset, run: RunDir):
    """A budgeted run on a small table scores by k-fold CV; spec.yaml records it, so a resumed
    run splits the same way."""
    split = spec.data.split.model_copy(update={"strategy": "cv"})
    spec = spec.model_copy(update={"data": spec.data.model_copy(update={"split": split})})
    run.write_text("spec.yaml", spec.to_yaml())
    dataset = with_folds(dataset, split.folds, spec.seed)
    dataset.notices.append(
        f"budget: {len(dataset.X)} training rows (fewer than {CV_ROWS:,}): candidates are "
        f"scored by {split.folds}-fold cross-validation and refitted on all rows (set "
        "split.strategy: holdout to keep a holdout)"
    )
    return spec, dataset


def _check_unchanged(run: RunDir, spec: RunSpec, dataset: Dataset) -> None:
    """A resumed run must see the same input files as the attempt it continues."""
    recorded = run.manifest.get("inputs")
    if recorded and recorded != _inputs(spec, dataset):
        raise RunError(
            f"the input data changed since run {run.path.name} started (sha256 differs); "
            "start a new run instead of resuming"
        )


def _keep_best(best, result, primary: Metric):
    """The better of two results. Only the best model stays in memory; all are on disk."""
    if best is None:
        return result
    winner, loser = ranked([best, result], primary)
    loser.model = None
    return winner


def _ensemble(name, results, dataset: Dataset, primary: Metric, run: RunDir, imbalance, seed):
    """Build, score and save the ``ensemble`` or ``stacking`` candidate (read back if an
    earlier attempt at this run did)."""
    folder = run.path / "candidates" / name
    finished = _finished(folder, dataset.schema)
    if finished is not None:
        return finished
    shutil.rmtree(folder / "model", ignore_errors=True)

    def model_of(result):
        return result.model or load_bundle(run.path / "candidates" / result.name / "model")

    saved = [r for r in results if r.model is not None or _has_model(run, r.name)]
    build = build_ensemble if name == "ensemble" else build_stack
    built = build(saved, primary, dataset.task, seed, model_of)
    if built is None:
        return None
    if imbalance and imbalance.threshold_metric:
        apply_threshold(built, list(built.metrics), imbalance.threshold_metric, seed)
        built.model.threshold = built.threshold
    folder.mkdir(parents=True, exist_ok=True)
    save_bundle(built.model, folder / "model", extra={"candidate": name})
    built.size_kb = sum(f.stat().st_size for f in (folder / "model").rglob("*")) / 1024
    save_candidate_files(built, folder, dataset.schema)
    write_json(folder / "metrics.json", _record(built))
    return built


def _has_model(run: RunDir, name: str) -> bool:
    return (run.path / "candidates" / name / "model" / "bundle.json").is_file()


def _epoch_forwarder(observer, candidate, profile: Profile):
    """``on_epoch(step, logs)`` for the estimator, sent on as the observers' ``epoch_end``."""
    budget: list[int] = []

    def on_epoch(step: int, logs: dict) -> None:
        if not budget:  # only estimators that train by epoch get here
            budget.append(_max_epochs(candidate, profile))
        observer.epoch_end(candidate.name, int(logs.get("epoch", 0)), budget[0], logs)

    return on_epoch


def _max_epochs(candidate, profile: Profile) -> int:
    """The candidate's epoch budget: its setting, else its estimator's default."""
    settings = {**candidate.family.initial(profile), **candidate.params}
    if settings.get("max_epochs") is not None:
        return int(settings["max_epochs"])
    accepted = inspect.signature(candidate.family.estimator_class(profile.task)).parameters
    return int(getattr(accepted.get("max_epochs"), "default", 0) or 0)


def _importance(best, dataset, primary: Metric, run: RunDir, observer, seconds=None) -> None:
    """Permutation importance of the best model; a model it cannot handle only loses it."""
    try:
        folder = run.candidate_dir(best.name)
        notice = write_importance(best.model, dataset, primary, folder, seconds)
    except Exception as exc:  # noqa: BLE001 - an extra for the report, never worth the run
        notice = f"permutation importance skipped for {best.name}: {exc}"
    if notice:
        observer.notice(notice)


def _left_for_importance(spec: RunSpec, run: RunDir, closing: float) -> float | None:
    """Seconds a time budget leaves for the permutation importance (the report's share kept
    back), or None without a time limit."""
    from trainforge.search.budget import REPORT_SECONDS

    if spec.budget is None or spec.budget.time is None:
        return None
    used = run.manifest["budget"]["used_seconds"] + time.monotonic() - closing
    return spec.budget.time - used - REPORT_SECONDS


def _raised(observer) -> list[str]:
    """The watchdog's warnings, kept in the manifest for ``show`` and the report."""
    for item in getattr(observer, "observers", []):
        if hasattr(item, "raised"):
            return list(item.raised)
    return []


def _train_one(
    candidate,
    dataset: Dataset,
    profile: Profile,
    primary: Metric,
    run: RunDir,
    imbalance=None,
    on_epoch=None,
    callbacks=None,
    save_if=None,
):
    """Train, save and record one candidate, or read it back if an earlier attempt did.

    ``save_if(result)``, when given, decides whether the model is saved (a search keeps only
    its best trials' models); metrics and validation predictions are always recorded.
    """
    folder = run.candidate_dir(candidate.name)
    finished = _finished(folder, dataset.schema)
    if finished is not None:
        return finished
    shutil.rmtree(folder / "model", ignore_errors=True)  # saved, but its metrics never were
    try:
        checkpoints = folder / "checkpoints"
        result = fit_candidate(
            candidate, dataset, profile, primary, checkpoints, imbalance, on_epoch, callbacks
        )
        save_candidate_files(result, folder, dataset.schema)
        if save_if is None or save_if(result):
            save_bundle(result.model, folder / "model", extra={"candidate": candidate.name})
            result.size_kb = sum(f.stat().st_size for f in (folder / "model").rglob("*")) / 1024
    except TrainingError as exc:  # e.g. a diverging loss: this candidate failed, not the run
        result = _failed(candidate, str(exc))
    except (TrainforgeError, KeyboardInterrupt):
        raise
    except Exception as exc:  # one broken candidate must not sink the others
        (folder / "error.txt").write_text(traceback.format_exc())
        result = _failed(candidate, f"{type(exc).__name__}: {exc}")
    write_json(folder / "metrics.json", _record(result))
    return result


def _failed(candidate, error: str) -> CandidateResult:
    result = CandidateResult(candidate.name, candidate.family.name, candidate.params)
    result.status, result.error = "failed", error
    return result


def _finished(folder: Path, schema) -> CandidateResult | None:
    """A candidate's result from an earlier, interrupted attempt at this run, if it finished."""
    record = folder / "metrics.json"
    if not record.is_file():
        return None
    saved = json.loads(record.read_text())
    nan = float("nan")
    metrics = {k: nan if v is None else v for k, v in saved["metrics"].items()}
    result = CandidateResult(
        saved["candidate"],
        saved["family"],
        saved["settings"],
        saved["status"],
        metrics,
        saved["primary_std"],
        saved["fit_seconds"],
        saved["predict_ms_per_1k"],
        saved["size_kb"],
        saved["error"],
        saved["warnings"],
        threshold=saved.get("threshold"),
        valid=read_predictions(folder, schema),
    )
    result.history = read_history(folder)
    return result  # its model stays on disk until it turns out to be the best


def _record(result: CandidateResult) -> dict:
    clean = {
        k: (None if isinstance(v, float) and math.isnan(v) else v)
        for k, v in result.metrics.items()
    }
    return {
        "candidate": result.name,
        "family": result.family,
        "status": result.status,
        "settings": json.loads(json.dumps(result.settings, default=str)),
        "metrics": clean,
        "primary_std": result.primary_std,
        "fit_seconds": result.fit_seconds,
        "predict_ms_per_1k": result.predict_ms_per_1k,
        "size_kb": result.size_kb,
        "error": result.error,
        "warnings": result.warnings,
        "threshold": result.threshold,
    }


def _profile(dataset: Dataset, seed: int) -> Profile:
    first = dataset.folds[0]
    n_classes = len(dataset.schema.classes)
    modality, channels = modality_of(dataset.schema)
    return Profile(
        dataset.task,
        len(first.X_train),
        len(dataset.schema.columns),
        n_classes,
        seed,
        image_shape=dataset.image_shape,
        modality=modality,
        channels=channels,
    )


def _inputs(spec: RunSpec, dataset: Dataset) -> dict:
    paths = {"train": spec.data.train, "validation": spec.data.validation}
    return {
        role: {"path": str(paths[role]) if paths[role] else None, "fingerprint": fingerprint}
        for role, fingerprint in dataset.fingerprints.items()
    }


def _data_summary(spec: RunSpec, dataset: Dataset) -> dict:
    if "validation" in dataset.fingerprints:
        validation = {"strategy": "file", "rows": len(dataset.folds[0].X_valid)}
    elif dataset.refit:
        validation = {"strategy": "cv", "folds": len(dataset.folds)}
    else:
        validation = {
            "strategy": "holdout",
            "fraction": spec.data.split.validation_fraction,
            "rows": len(dataset.folds[0].X_valid),
        }
    return {
        "rows": len(dataset.X),
        "columns": len(dataset.schema.columns),
        "dropped_columns": list(dataset.schema.dropped),
        "validation": validation,
    }
