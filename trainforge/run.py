"""Executing a RunSpec: data, candidates, leaderboard and every artifact of the run folder."""

from __future__ import annotations

import json
import math
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from trainforge.atomic import write_json
from trainforge.bundle import save_bundle
from trainforge.candidates import CandidateResult, fit_candidate, plan
from trainforge.data.dataset import Dataset, load_dataset
from trainforge.errors import RunError, TrainforgeError
from trainforge.events import RunObserver, SilentObserver
from trainforge.leaderboard import leaderboard_frame, ranked
from trainforge.metrics import Metric, primary_metric
from trainforge.model import Model
from trainforge.models.registry import Profile
from trainforge.rundir import RunDir
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
    observer = observer or SilentObserver()
    started = time.time()
    run = RunDir.create(spec.output, spec.name, spec.seed)
    run.write_text("spec.yaml", spec.to_yaml())
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
    board = leaderboard_frame(results, primary, dataset.task)
    run.write_text("leaderboard.csv", board.to_csv(index=False))
    run.update(
        best={"candidate": best.name, primary.name: best.metrics[primary.name]}, timings=timings
    )
    return RunResult(run.path, board, best.model, best.name, results)


def _keep_best(best, result, primary: Metric):
    """The better of two results. Only the best model stays in memory; all are on disk."""
    if best is None:
        return result
    winner, loser = ranked([best, result], primary)
    loser.model = None
    return winner


def _train_one(candidate, dataset: Dataset, profile: Profile, primary: Metric, run: RunDir):
    folder = run.candidate_dir(candidate.name)
    try:
        result = fit_candidate(candidate, dataset, profile, primary)
        save_bundle(result.model, folder / "model", extra={"candidate": candidate.name})
        result.size_kb = sum(f.stat().st_size for f in (folder / "model").iterdir()) / 1024
    except (TrainforgeError, KeyboardInterrupt):
        raise
    except Exception as exc:  # one broken candidate must not sink the others
        (folder / "error.txt").write_text(traceback.format_exc())
        result = CandidateResult(candidate.name, candidate.family.name, candidate.params)
        result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
    write_json(folder / "metrics.json", _record(result))
    return result


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
    return Profile(dataset.task, len(first.X_train), len(dataset.schema.columns), n_classes, seed)


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
