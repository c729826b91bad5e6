"""A run's lifecycle: create or reopen its folder, hand it to the supervised, unsupervised or
generation runner (trainforge.supervised, trainforge.unsupervised.runner,
trainforge.generation.runner), and mark how it ended."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from trainforge.candidates import CandidateResult
from trainforge.data.dataset import Dataset
from trainforge.errors import RunError, TrainforgeError
from trainforge.events import FanOut, RunObserver, SilentObserver
from trainforge.model import Model
from trainforge.rundir import RunDir, read_manifest
from trainforge.spec import UNSUPERVISED, RunSpec, build_spec


@dataclass
class RunResult:
    """What a finished run hands back in Python.

    Attributes:
        results: every candidate's outcome; models other than the best are on disk only.
    """

    path: Path
    leaderboard: pd.DataFrame
    best_model: Model  # may still be on disk (trainforge.bundle.SavedModel): see ``best``
    best_name: str
    results: list[CandidateResult]

    @property
    def best(self) -> Model:
        """The best model, in memory (read from the run folder on first use: a command line
        run that never predicts in Python does not spend seconds loading an ensemble)."""
        return self.best_model.loaded()


def execute(
    spec: RunSpec,
    train: pd.DataFrame | None = None,
    validation: pd.DataFrame | None = None,
    observer: RunObserver | None = None,
    started: float | None = None,
) -> RunResult:
    """Run ``spec`` end to end. In-memory frames, when given, replace the spec's files.

    The run folder is marked ``completed`` only after every artifact is written; an error marks
    it ``failed`` (with the message), Ctrl-C marks it ``interrupted``.

    Args:
        started: ``time.monotonic()`` from which a time budget counts (the CLI passes its
            process's start); default: now.
    """
    started = time.monotonic() if started is None else started
    spec, prepared = _prepare(spec.resolved(), train, validation)  # bad input: no folder yet
    with _executing(prepared, spec):
        observers = _observers(spec, observer)  # a tracking server that is down fails here
        _say_where(spec.output, observers)
        run = RunDir.create(spec.output, spec.name, spec.seed)
        run.write_text("spec.yaml", spec.to_yaml())
        return _guarded(spec, run, prepared, observers, started)


def resume(
    path: Path,
    observer: RunObserver | None = None,
    tracking: dict | None = None,
    started: float | None = None,
) -> RunResult:
    """Continue an interrupted or failed run in its own folder.

    Candidates that finished are read back from disk; the others train again, and those that
    checkpoint (neural nets) continue from their newest good checkpoint. The input files must
    be unchanged.

    Args:
        tracking: flat tracking settings overriding the run's spec for this attempt
            (``tracking``, ``tracking_uri``, ``experiment``), as from the CLI's flags.
        started: as for ``execute``.
    """
    started = time.monotonic() if started is None else started
    manifest = read_manifest(path)
    status = manifest["status"]
    if status == "completed":
        raise RunError(f"run {path.name} is already completed; nothing to resume")
    if status == "running":
        raise RunError(f"run {path.name} is still running (pid {manifest.get('pid')})")
    spec = _saved_spec(path)
    if tracking:
        spec = build_spec(spec, **tracking)
    if spec.data.train is None:
        raise RunError(f"run {path.name} trained on in-memory data, which cannot be resumed")
    spec, prepared = _prepare(spec, None, None)
    with _executing(prepared, spec):
        observers = _observers(spec, observer)
        run = RunDir.reopen(path)
        return _guarded(spec, run, prepared, observers, started)


@contextlib.contextmanager
def _executing(prepared, spec: RunSpec):
    """Hold the run's executor (a Ray connection) for the run and let it go however the run
    ends; trust, while it runs, the packages of the estimators its spec names (their types
    are saved and loaded with its candidates: trainforge.models.external)."""
    from trainforge.bundle import trusting
    from trainforge.models.external import packages

    try:
        with trusting(packages(spec.models)):
            yield
    finally:
        executor = getattr(prepared, "executor", None)
        if executor is not None:
            executor.close()


def _say_where(output: Path, observer) -> None:
    """A relative output folder that climbs out of the working folder is the user's choice,
    but never a silent one: the run names where it really goes."""
    if output.is_absolute() or ".." not in output.parts:
        return
    resolved = output.resolve()
    if not resolved.is_relative_to(Path.cwd().resolve()):
        observer.notice(f"output {output} is outside the working folder: runs go to {resolved}")


def _saved_spec(path: Path) -> RunSpec:
    """The spec a run folder keeps; a missing or broken one is one line, not a traceback."""
    try:
        raw = yaml.safe_load((path / "spec.yaml").read_text(encoding="utf-8"))
    except OSError:
        raise RunError(
            f"run {path.name} has no readable spec.yaml, so it cannot be resumed; start a new run"
        ) from None
    except yaml.YAMLError:
        raise RunError(
            f"run {path.name}: its spec.yaml is not valid YAML; start a new run"
        ) from None
    if not isinstance(raw, dict):
        raise RunError(f"run {path.name}: its spec.yaml is not a spec; start a new run")
    return RunSpec.from_dict(raw)


def _observers(spec: RunSpec, observer: RunObserver | None) -> FanOut:
    """The caller's observer, the tracker the spec asks for, and the training watchdog."""
    from trainforge.tracking import open_tracker
    from trainforge.watchdog import Watchdog

    observers = FanOut(observer or SilentObserver(), open_tracker(spec))
    observers.add(Watchdog(observers.warning))
    return observers


def _prepare(spec: RunSpec, train, validation):
    """``(spec, prepared)``: the data read and checked and the candidates planned, before the
    run has a folder; the spec as the run will record it (a budget may bag a small table)."""
    if spec.task.value in UNSUPERVISED:
        from trainforge.unsupervised.runner import prepare

        return spec, prepare(spec, train)
    if spec.task.value == "generation":
        from trainforge.generation.runner import prepare

        return spec, prepare(spec, train)
    from trainforge.supervised import prepare

    prepared = prepare(spec, train, validation)
    return prepared.spec, prepared


def _guarded(spec, run: RunDir, prepared, observer, clock: float) -> RunResult:
    from trainforge.models.keras_module import run_home

    started = time.time()
    observer.run_started(run.manifest["id"], str(run.path))
    try:
        with run_home(run.path):  # Keras, if a builder imports it, keeps its config here
            result = _train_all(spec, run, prepared, observer, clock)
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
    # tracking finishes first: a run whose manifest says completed has its tracking run
    # complete too, and one killed while tracking finishes can be resumed
    from trainforge.tracking import tracker_names

    trackers = tracker_names(spec)
    if trackers:
        observer.stage(f"logging the run to {', '.join(trackers)}")
    observer.run_finished("completed", str(run.path))
    run.finish("completed", started)
    return result


def _train_all(spec, run: RunDir, prepared, observer, started: float) -> RunResult:
    if spec.task.value in UNSUPERVISED:  # clustering, reduction: no target, no split
        from trainforge.unsupervised.runner import train_all

        return train_all(spec, run, prepared, observer)
    if spec.task.value == "generation":  # generators scored against real rows kept aside
        from trainforge.generation.runner import train_all

        return train_all(spec, run, prepared, observer)
    from trainforge.supervised import train_all

    return train_all(prepared, run, observer, started)


def check_unchanged(run: RunDir, spec: RunSpec, dataset: Dataset) -> None:
    """A resumed run must see the same input files as the attempt it continues."""
    recorded = run.manifest.get("inputs")
    if recorded and recorded != inputs(spec, dataset):
        raise RunError(
            f"the input data changed since run {run.path.name} started (sha256 differs); "
            "start a new run instead of resuming"
        )


def inputs(spec: RunSpec, dataset: Dataset) -> dict:
    paths = {"train": spec.data.train, "validation": spec.data.validation}
    return {
        role: {"path": str(paths[role]) if paths[role] else None, "fingerprint": fingerprint}
        for role, fingerprint in dataset.fingerprints.items()
    }
