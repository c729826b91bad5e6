"""Executing a RunSpec: data, candidates, leaderboard and every artifact of the run folder."""

from __future__ import annotations

import json
import math
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from trainforge.atomic import write_json
from trainforge.bundle import load_bundle, save_bundle
from trainforge.candidates import CandidateResult, fit_candidate, plan
from trainforge.data.dataset import Dataset, load_dataset
from trainforge.data.modality import modality_of
from trainforge.errors import RunError, TrainforgeError, TrainingError
from trainforge.events import RunObserver, SilentObserver
from trainforge.leaderboard import leaderboard_frame, ranked
from trainforge.metrics import Metric, primary_metric
from trainforge.model import Model
from trainforge.models.registry import Profile
from trainforge.rundir import RunDir, read_manifest
from trainforge.spec import RunSpec


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
    run = RunDir.create(spec.output, spec.name, spec.seed)
    run.write_text("spec.yaml", spec.to_yaml())
    return _guarded(spec, run, train, validation, observer or SilentObserver())


def resume(path: Path, observer: RunObserver | None = None) -> RunResult:
    """Continue an interrupted or failed run in its own folder.

    Candidates that finished are read back from disk; the others train again, and those that
    checkpoint (neural nets) continue from their newest good checkpoint. The input files must
    be unchanged.
    """
    manifest = read_manifest(path)
    status = manifest["status"]
    if status == "completed":
        raise RunError(f"run {path.name} is already completed; nothing to resume")
    if status == "running":
        raise RunError(f"run {path.name} is still running (pid {manifest.get('pid')})")
    spec = RunSpec.from_dict(yaml.safe_load((path / "spec.yaml").read_text()))
    if spec.data.train is None:
        raise RunError(f"run {path.name} trained on in-memory data, which cannot be resumed")
    run = RunDir.reopen(path)
    return _guarded(spec, run, None, None, observer or SilentObserver())


def _guarded(spec, run: RunDir, train, validation, observer) -> RunResult:
    started = time.time()
    observer.run_started(run.manifest["id"], str(run.path))
    try:
        result = _train_all(spec, run, train, validation, observer)
    except KeyboardInterrupt:
        run.finish("interrupted", started)
        raise
    except TrainforgeError as exc:
        run.finish("failed", started, error=str(exc))
        raise
    except Exception as exc:
        run.finish("failed", started, error=f"{type(exc).__name__}: {exc}")
        raise
    run.finish("completed", started)
    return result


def _train_all(spec, run: RunDir, train, validation, observer) -> RunResult:
    clock = time.perf_counter()
    dataset = load_dataset(spec.data, spec.task.value, spec.seed, train, validation)
    timings = {"data_seconds": round(time.perf_counter() - clock, 3), "candidates": {}}
    _check_unchanged(run, spec, dataset)
    primary = primary_metric(spec.metric, dataset.task)
    profile = _profile(dataset, spec.seed)
    candidates, substitutions = plan(spec.models, profile)
    notices = dataset.notices + substitutions
    for message in notices:
        observer.notice(message)
    run.update(
        task=dataset.task,
        primary_metric=primary.name,
        inputs=_inputs(spec, dataset),
        data=_data_summary(spec, dataset),
        notices=notices,
    )
    results, best = [], None
    for index, candidate in enumerate(candidates, start=1):
        observer.candidate_started(index, len(candidates), candidate.name)
        clock = time.perf_counter()
        result = _train_one(candidate, dataset, profile, primary, run)
        timings["candidates"][candidate.name] = round(time.perf_counter() - clock, 3)
        results.append(result)
        best = _keep_best(best, result, primary)
        observer.candidate_finished(index, len(candidates), result)
    if best is None or best.status != "ok":
        raise RunError(f"every candidate failed; see {run.path / 'candidates'}/*/error.txt")
    if best.model is None:  # finished in an earlier attempt at this run
        best.model = load_bundle(run.path / "candidates" / best.name / "model")
    board = leaderboard_frame(results, primary, dataset.task)
    run.write_text("leaderboard.csv", board.to_csv(index=False))
    run.update(
        best={"candidate": best.name, primary.name: best.metrics[primary.name]}, timings=timings
    )
    return RunResult(run.path, board, best.model, best.name, results)


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


def _train_one(candidate, dataset: Dataset, profile: Profile, primary: Metric, run: RunDir):
    folder = run.candidate_dir(candidate.name)
    finished = _finished(folder)
    if finished is not None:
        return finished
    shutil.rmtree(folder / "model", ignore_errors=True)  # saved, but its metrics never were
    try:
        result = fit_candidate(candidate, dataset, profile, primary, folder / "checkpoints")
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


def _finished(folder: Path) -> CandidateResult | None:
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
    )
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
