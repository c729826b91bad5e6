"""One candidate inside a run: train it into the run folder, or read it back if an earlier
attempt at the run finished it. ``train_one(candidate, ctx, limits)`` is the unit of work every
way of running candidates calls (the plain loop and the search); ``start`` and ``collect`` are
its two halves, for executors that run several candidates at once (trainforge.execution).
"""

from __future__ import annotations

import inspect
import json
import math
import shutil
import threading
import time
import traceback
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from trainforge.artifacts import read_history, read_predictions, save_candidate_files
from trainforge.atomic import write_json
from trainforge.bundle import save_bundle
from trainforge.candidates import Candidate, CandidateResult, fit_candidate
from trainforge.data.dataset import Dataset
from trainforge.data.modality import modality_of
from trainforge.errors import TrainforgeError, TrainingError
from trainforge.execution import Local
from trainforge.imbalance import Imbalance
from trainforge.metrics import Metric
from trainforge.models.registry import Profile
from trainforge.rundir import RunDir


class Saver:
    """Writes candidates' files in background threads, one task at a time, in the order they
    were asked for.

    Saving a bagged model through skops can take longer than fitting it (five histogram
    boosting models on 1,296 rows of car: 3.1 s of saving against 0.9 s of fitting); in a
    thread it overlaps the next fit, whose native code releases the GIL. A candidate's
    metrics.json is written after its model, so a candidate whose saving a kill cut short is
    not finished and trains again on resume.

    Each task runs in a thread of its own that ends with it. A thread that ran OpenMP code (a
    LightGBM model writing itself runs a parallel loop) keeps that runtime's worker threads
    while it lives, and once a runtime holds more threads than there are cores, GNU OpenMP
    stops spinning at its barriers and every later fit pays a sleep and a wake-up at each one:
    with one long-lived saving thread, fits on 2 cores of a 32,000-row table ran up to 14 times
    slower than alone (diamonds at 60 s: a histogram boosting fit reached 74 of its 428 rounds
    by its deadline, LightGBM took 54 ms a round against about 3 ms; benchmarks/openmp_pools.py
    and benchmarks/RESULTS.md, "OpenMP runtimes and the saving thread"). The threads are not
    daemons: a program that ends before ``wait`` still gets its files written.
    """

    def __init__(self):
        self._last: threading.Thread | None = None
        self._pending: list[Future] = []
        self.longest = 0.0  # seconds of the slowest task so far (a budget keeps that back)

    def submit(self, task: Callable[[], object]) -> None:
        future: Future = Future()
        before = self._last

        def work() -> None:
            if before is not None:
                before.join()  # one task at a time, in order
            future.set_running_or_notify_cancel()
            try:
                future.set_result(self._timed(task))
            except BaseException as exc:  # noqa: BLE001 - handed to wait()
                future.set_exception(exc)

        self._last = threading.Thread(target=work, name="trainforge-save")
        self._last.start()
        self._pending.append(future)

    def _timed(self, task: Callable[[], object]) -> object:
        clock = time.perf_counter()
        try:
            return task()
        finally:
            self.longest = max(self.longest, time.perf_counter() - clock)

    def wait(self) -> None:
        """Return once everything asked for is written; re-raises a task's error."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()
        if self._last is not None:
            self._last.join()  # its thread, and the OpenMP threads it started, are gone


@dataclass(frozen=True)
class RunContext:
    """What every candidate of one run shares: its data, their shape, how they are scored,
    where they are written, what is done about class imbalance, who hears of progress, and the
    thread that writes candidates' files, and where candidates execute."""

    dataset: Dataset
    profile: Profile
    primary: Metric
    run: RunDir
    imbalance: Imbalance | None
    observer: object
    device: str = "cpu"  # where neural families train (trainforge.device)
    data_parallel: int = 1  # Ray Train workers per neural net (trainforge.distributed)
    saver: Saver = field(default_factory=Saver)
    executor: object = field(default_factory=lambda: Local())  # trainforge.execution


@dataclass(frozen=True)
class Limits:
    """What a search asks of one fit.

    Attributes:
        callbacks: ``callbacks(part, workers)`` lists extra callbacks (pruning, a deadline)
            for the fit of ``part`` (``fold-0``, ``fold-1``, ...), ``workers`` folds at once.
        save_if: ``save_if(result)`` decides whether the model is saved; metrics and
            validation predictions are always recorded.
        deadline: when an interruptible fit must stop; what a fit on another machine (a Ray
            task) gets of ``callbacks``, which are this process's.
    """

    callbacks: Callable[[str, int], list] | None = None
    save_if: Callable[[CandidateResult], bool] | None = None
    deadline: float = math.inf  # time.monotonic() by which an interruptible fit must stop


def train_one(candidate: Candidate, ctx: RunContext, limits: Limits = Limits()) -> CandidateResult:
    """Train one candidate, or read it back if an earlier attempt did. Its files (model,
    predictions, metrics.json) are written by ``ctx.saver`` while the run goes on."""
    return collect(start(candidate, ctx, limits), ctx)


@dataclass
class Started:
    """A candidate handed to the run's executor (or read back): ``collect`` finishes it."""

    candidate: Candidate
    limits: Limits
    outcome: Callable[[], tuple[CandidateResult, float]]  # the fit's result and seconds
    read_back: bool = False
    seconds: float = 0.0  # the fit's own seconds, once collected (0 when read back)


def start(candidate: Candidate, ctx: RunContext, limits: Limits = Limits()) -> Started:
    """Hand the candidate to ``ctx.executor`` (the local one fits when it is collected, a Ray
    task starts now), or read it back if an earlier attempt at the run finished it."""
    folder = ctx.run.candidate_dir(candidate.name)
    done = finished(folder, ctx.dataset.schema)
    if done is not None:
        return Started(candidate, limits, lambda: (done, 0.0), read_back=True)
    shutil.rmtree(folder / "model", ignore_errors=True)  # saved, but its metrics never were
    return Started(candidate, limits, ctx.executor.submit(candidate, ctx, limits))


def collect(started: Started, ctx: RunContext) -> CandidateResult:
    """Wait for a started candidate; a fit that fails fails the candidate, not the run. Its
    files are then written by ``ctx.saver`` (only here, in the driver, whatever executed it)."""
    if started.read_back:
        return started.outcome()[0]
    candidate, limits = started.candidate, started.limits
    folder = ctx.run.candidate_dir(candidate.name)
    clock = time.perf_counter()
    try:
        result, started.seconds = started.outcome()
    except TrainingError as exc:  # e.g. a diverging loss: this candidate failed, not the run
        result, started.seconds = failed(candidate, str(exc)), time.perf_counter() - clock
    except (TrainforgeError, KeyboardInterrupt):
        raise
    except Exception as exc:  # one broken candidate must not sink the others
        (folder / "error.txt").write_text(traceback.format_exc())
        result = failed(candidate, f"{type(exc).__name__}: {exc}")
        started.seconds = time.perf_counter() - clock  # a failure's time counts in a budget
    for message in result.warnings:  # a checkpoint it could not use: the run says so
        if message.startswith("CheckpointWarning: "):
            ctx.observer.warning(f"{candidate.name}: {message.removeprefix('CheckpointWarning: ')}")
    keep = result.model if limits.save_if is None or limits.save_if(result) else None
    ctx.saver.submit(lambda: _persist(result, keep, folder, ctx.dataset.schema))
    return result


def fit_here(candidate: Candidate, ctx: RunContext, limits: Limits) -> CandidateResult:
    """Fit a candidate in this process, with its checkpoints in the run folder and its epochs
    and boosting rounds reported to the run's observers."""
    return fit_candidate(
        candidate,
        ctx.dataset,
        ctx.profile,
        ctx.primary,
        ctx.run.candidate_dir(candidate.name) / "checkpoints",
        ctx.imbalance,
        _epoch_forwarder(ctx.observer, candidate, ctx.profile),
        limits.callbacks,
        lambda r, logs: ctx.observer.round_end(
            candidate.name, r, int(logs.get("max_rounds", 0)), logs
        ),
        ctx.device,
        ctx.data_parallel,
    )


def _persist(result: CandidateResult, model, folder: Path, schema) -> None:
    """Write a trained candidate's files: predictions and curve, its model (when ``model`` is
    given), then metrics.json. A model that cannot be saved fails the candidate."""
    if result.status == "ok":
        try:
            save_candidate_files(result, folder, schema)
            if model is not None:
                save_bundle(model, folder / "model", extra=_about(result))
                result.size_kb = sum(f.stat().st_size for f in (folder / "model").rglob("*")) / 1024
        except Exception as exc:  # noqa: BLE001 - e.g. a type skops would not load again
            (folder / "error.txt").write_text(traceback.format_exc())
            result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
    write_json(folder / "metrics.json", record(result))


def save_model(result: CandidateResult, folder: Path, saved: dict | None = None) -> None:
    """Save the result's model as ``folder/model`` and note its size."""
    save_bundle(result.model, folder / "model", extra=_about(result), saved=saved)
    result.size_kb = sum(f.stat().st_size for f in (folder / "model").rglob("*")) / 1024


def _about(result: CandidateResult) -> dict:
    """What a saved model's bundle.json says of where it came from: the candidate, and its
    validation scores (the primary metric first)."""
    scores = {k: v for k, v in result.metrics.items() if isinstance(v, float) and math.isfinite(v)}
    return {"candidate": result.name, "validation": scores}


def is_finished(run: RunDir, name: str) -> bool:
    """Whether an earlier attempt at the run finished this candidate (it is read back)."""
    return (run.path / "candidates" / name / "metrics.json").is_file()


def has_model(run: RunDir, name: str) -> bool:
    return (run.path / "candidates" / name / "model" / "bundle.json").is_file()


def failed(candidate: Candidate, error: str) -> CandidateResult:
    result = CandidateResult(candidate.name, candidate.family.name, candidate.params)
    result.status, result.error = "failed", error
    return result


def finished(folder: Path, schema) -> CandidateResult | None:
    """A candidate's result from an earlier, interrupted attempt at this run, if it finished."""
    path = folder / "metrics.json"
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
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
        trial=saved.get("trial"),
        threads=saved.get("threads"),
        parallel_folds=saved.get("parallel_folds", 1),
    )
    result.history = read_history(folder)
    return result  # its model stays on disk until it turns out to be needed


def record(result: CandidateResult) -> dict:
    """What metrics.json keeps of a result."""
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
        "trial": result.trial,
        "threads": result.threads,
        "parallel_folds": result.parallel_folds,
    }


def profile_of(dataset: Dataset, seed: int) -> Profile:
    """The data profile initial settings are chosen from (the first fold's training rows)."""
    first = dataset.folds[0]
    modality, channels = modality_of(dataset.schema)
    return Profile(
        dataset.task,
        len(first.X_train),
        len(dataset.schema.columns),
        len(dataset.schema.classes),
        seed,
        image_shape=dataset.image_shape,
        modality=modality,
        channels=channels,
    )


def _epoch_forwarder(observer, candidate: Candidate, profile: Profile):
    """``on_epoch(step, logs)`` for the estimator, sent on as the observers' ``epoch_end``."""
    budget: list[int] = []

    def on_epoch(step: int, logs: dict) -> None:
        if not budget:  # only estimators that train by epoch get here
            budget.append(_max_epochs(candidate, profile))
        observer.epoch_end(candidate.name, int(logs.get("epoch", 0)), budget[0], logs)

    return on_epoch


def _max_epochs(candidate: Candidate, profile: Profile) -> int:
    """The candidate's epoch budget: its setting, else its estimator's default."""
    settings = {**candidate.family.initial(profile), **candidate.params}
    if settings.get("max_epochs") is not None:
        return int(settings["max_epochs"])
    cls = candidate.family.estimator_class(profile.task, profile.input)
    accepted = inspect.signature(cls).parameters
    return int(getattr(accepted.get("max_epochs"), "default", 0) or 0)
