"""Executing a generation RunSpec inside a run folder.

The same run folder, manifest, leaderboard and bundles as other runs. Each generator learns the
training rows, then draws as many rows as were kept aside, and is scored against those real
rows (trainforge.generation.scores; the leaderboard ranks by the two-sample AUC, 0.5 meaning a
classifier cannot tell them apart). Each candidate also leaves:

    candidates/<name>/scores.json      every score, per-column distances included
    candidates/<name>/samples.csv      100 generated rows (tables)
    candidates/<name>/samples.png      a grid of 64 generated images (images)
    candidates/<name>/history.csv      the GAN's epochs (its losses and quality score)
    candidates/<name>/checkpoints/     the GAN's checkpoints: a killed run resumes from them
"""

from __future__ import annotations

import shutil
import time
import warnings

import numpy as np
import pandas as pd

from trainforge.atomic import write_json, write_text
from trainforge.candidates import (
    Candidate,
    CandidateResult,
    _distinct,
    name_candidates,
    plan,
    saved_or_failed,
    train_in_turn,
)
from trainforge.generation.data import GenerationData, load_generation
from trainforge.generation.families import LADDER
from trainforge.generation.model import GenerativeModel
from trainforge.leaderboard import leaderboard_frame
from trainforge.metrics import primary_metric
from trainforge.models.registry import Profile, get_family
from trainforge.report import write_report

PREVIEW_ROWS = 100
GRID_IMAGES = 64


def prepare(spec, train=None) -> tuple:
    """Read, check and split the data and plan the candidates, before the run has a folder:
    ``(data, primary, profile, candidates, notices, device)``."""
    from trainforge.device import resolve

    data = load_generation(spec.data, spec.seed, train)
    primary = primary_metric(spec.metric, "generation")
    profile = Profile(
        "generation", len(data.train), data.train.shape[1], 0, spec.seed,
        image_shape=data.image_shape,
    )  # fmt: skip
    if spec.models:
        candidates, notices = plan(spec.models, profile)
    else:
        chosen, notices = [], []
        for name in LADDER[profile.input]:
            family = get_family(name)
            if family.available():
                chosen.append((family, {}))
            else:
                notices.append(f"{name}: left out because torch is not installed")
        candidates = name_candidates(chosen)
    notices = data.notices + notices + [_holdout_notice(spec, data)]
    if spec.execution.backend != "local":
        notices.append("execution: a generation run executes in this process (not on Ray)")
    needs_torch = any("torch" in c.family.requires for c in candidates)
    device = resolve(spec.device, needs_torch or spec.device != "auto")
    return data, primary, profile, candidates, notices, device


def _holdout_notice(spec, data: GenerationData) -> str:
    where = "data.validation" if spec.data.validation else "a seeded holdout of the rows"
    return (
        f"generators learn {len(data.train):,} rows; {len(data.holdout):,} real rows from "
        f"{where} score what they generate"
    )


def train_all(spec, run, prepared: tuple, observer):
    """Fit every generator, score its samples, save it; returns the run's RunResult."""
    from trainforge.run import RunResult, check_unchanged, inputs

    data, primary, profile, candidates, notices, device = prepared
    check_unchanged(run, spec, data)
    for message in notices:
        observer.notice(message)
    run.update(
        task="generation",
        primary_metric=primary.name,
        inputs=inputs(spec, data),
        data=_summary(spec, data),
        notices=notices,
        device=device.record(),
    )
    results, timings, best = train_in_turn(
        candidates,
        run,
        observer,
        primary,
        lambda c: _train_one(c, data, profile, run, device, observer, spec.seed),
    )
    board = leaderboard_frame(results, primary, "generation").dropna(axis=1, how="all")
    run.write_text("leaderboard.csv", board.to_csv(index=False))
    run.update(
        best={"candidate": best.name, primary.name: best.metrics[primary.name]}, timings=timings
    )
    write_report(run.path, status="completed")  # the last artifact; completed comes next
    return RunResult(run.path, board, best.model, best.name, results)


def _train_one(candidate: Candidate, data, profile: Profile, run, device, observer, seed: int):
    folder = run.candidate_dir(candidate.name)
    shutil.rmtree(folder / "model", ignore_errors=True)  # checkpoints stay: they resume
    for stale in ("samples.csv", "samples.png", "scores.json", "error.txt"):
        (folder / stale).unlink(missing_ok=True)
    return saved_or_failed(
        candidate,
        folder,
        lambda: _fit_and_score(candidate, data, profile, folder, device, observer, seed),
    )


def _fit_and_score(candidate, data: GenerationData, profile, folder, device, observer, seed):
    from sklearn.pipeline import Pipeline

    from trainforge.candidate_run import _epoch_forwarder

    family = candidate.family
    estimator = family.build(profile, candidate.params)
    if "device" in estimator.get_params() and "device" not in candidate.params:
        estimator.set_params(device=device.used)
    runtime = {}
    if family.name == "gan":  # trains by epoch: checkpoints (resume) and progress
        runtime = {
            "checkpoint_dir": str(folder / "checkpoints"),
            "resume": True,
            "on_epoch": _epoch_forwarder(observer, candidate, profile),
        }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.perf_counter()
        estimator.fit(data.train, data.labels, **runtime)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        fake = estimator.sample(len(data.holdout), seed)
        sample_seconds = time.perf_counter() - started
        scores = _scores(data, fake, seed)
    settings = {**family.initial(profile), **candidate.params}
    result = CandidateResult(candidate.name, family.name, settings, fit_seconds=fit_seconds)
    result.warnings = _distinct(caught)
    result.metrics = {k: v for k, v in scores.items() if not k.startswith("column_distance.")}
    result.predict_ms_per_1k = 1e6 * sample_seconds / max(len(fake), 1)
    result.history = [dict(e) for e in getattr(estimator, "history_", []) or []]
    write_json(folder / "scores.json", scores)
    if result.history:
        write_text(folder / "history.csv", pd.DataFrame(result.history).to_csv(index=False))
    _write_preview(folder, fake, data)  # a part of the rows just scored: no second draw
    pipeline = Pipeline([("features", "passthrough"), ("model", estimator)])
    result.model = GenerativeModel(pipeline, data.schema, family.name)
    return result


def _scores(data: GenerationData, fake: pd.DataFrame, seed: int) -> dict:
    from trainforge.generation import scores

    if data.image_shape is None:
        return scores.table_scores(
            data.holdout, fake, seed, real_train=data.train, target=data.target, task=data.task
        )
    shape = (-1, *data.image_shape)
    real = data.holdout.to_numpy(dtype=np.float64).reshape(shape)
    return scores.image_scores(real, fake.to_numpy(dtype=np.float64).reshape(shape), seed)


def _write_preview(folder, fake: pd.DataFrame, data: GenerationData) -> None:
    if data.image_shape is None:
        write_text(folder / "samples.csv", fake.head(PREVIEW_ROWS).to_csv(index=False))
        return
    from trainforge.generation.images import save_image_grid

    images = fake.head(GRID_IMAGES).to_numpy(dtype=np.float64)
    save_image_grid(images.reshape(-1, *data.image_shape), folder / "samples.png")


def _summary(spec, data: GenerationData) -> dict:
    return {
        "rows": len(data.train) + len(data.holdout),
        "columns": len(data.schema.columns),
        "dropped_columns": list(data.schema.dropped),
        "target": data.target,
        "image_shape": list(data.image_shape) if data.image_shape else None,
        "validation": {
            "strategy": "file" if spec.data.validation else "holdout",
            "train_rows": len(data.train),
            "holdout_rows": len(data.holdout),
        },
    }
