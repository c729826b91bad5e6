"""Experiment tracking: the run folder always, MLflow by default, W&B and TensorBoard when named.

A tracker is a run observer (trainforge.events): it receives ``run_started``,
``candidate_started``, ``epoch_end``, ``candidate_finished``, ``notice`` and ``run_finished`` and
records them elsewhere. The run folder itself is written by the runner (trainforge.rundir); the
MLflow tracker mirrors it into MLflow: one parent run per trainforge run, one nested run per
candidate; the W&B tracker (tracking/wandb_tracker.py) and the TensorBoard tracker
(tracking/tensorboard_tracker.py) record the same events their own way. All of them work in one
background process (tracking/background.py); a tracker that fails warns once and stops, and
training and the other trackers go on.

Tracking libraries are imported only when a tracker is opened, so ``trainforge --help`` and
runs with tracking off stay fast.
"""

from __future__ import annotations

import os
from pathlib import Path

from trainforge.spec import RunSpec

DEFAULT_STORE = "mlflow.db"
DEFAULT_ARTIFACTS = "mlartifacts"


def tracking_uri(spec: RunSpec) -> str:
    """Where a run logs: ``tracking.uri``, else MLFLOW_TRACKING_URI, else the embedded store."""
    if spec.tracking.uri:
        return spec.tracking.uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return "sqlite:///" + str((Path(spec.output) / DEFAULT_STORE).resolve())


def artifact_root(uri: str) -> str | None:
    """Artifacts of a new experiment in a SQLite store go beside the database file; a tracking
    server decides for itself (None)."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///"))
    return (database.parent / DEFAULT_ARTIFACTS).resolve().as_uri()


def tracker_names(spec: RunSpec) -> list[str]:
    """The trackers a run logs to, as users name them."""
    if not spec.tracking.enabled:
        return []
    named = [
        ("MLflow", spec.tracking.mlflow),
        ("W&B", spec.tracking.wandb is not None),
        ("TensorBoard", spec.tracking.tensorboard is not None),
    ]
    return [name for name, used in named if used]


def open_tracker(spec: RunSpec):
    """The trackers ``spec`` asks for, working in a background process, or None when there
    are none.

    Raises:
        TrackingError: the MLflow server does not answer, the store's folder cannot be made, or
            a tracker's library is not installed; raised before any training starts. (A
            tracker that fails to open later, in the background, prints one warning and the
            run goes on without it.)
    """
    from trainforge.tracking.background import InBackground

    if not spec.tracking.enabled:
        return None
    makers = []
    if spec.tracking.mlflow:
        from trainforge.tracking.mlflow_tracker import MlflowTracker, check_store

        uri = tracking_uri(spec)
        check_store(uri)
        experiment = spec.tracking.experiment
        makers.append(lambda: MlflowTracker(uri, experiment, artifact_root(uri)))
    if spec.tracking.wandb is not None:
        from trainforge.tracking.wandb_tracker import WandbTracker, check_installed

        check_installed()
        settings = spec.tracking.wandb
        makers.append(lambda: WandbTracker(settings))
    if spec.tracking.tensorboard is not None:
        from trainforge.tracking.tensorboard_tracker import TensorBoardTracker, check_installed

        check_installed()
        folder = spec.tracking.tensorboard.dir
        makers.append(lambda: TensorBoardTracker(folder))
    if not makers:
        return None
    if len(makers) == 1:
        return InBackground(makers[0])
    return InBackground(lambda: _each(makers))


def _each(makers):
    """Every tracker that opens, as one observer; one that cannot open warns and is left
    out."""
    import sys

    from trainforge.errors import TrackingError
    from trainforge.events import FanOut

    opened = FanOut()
    for make in makers:
        try:
            opened.add(make())
        except TrackingError as exc:
            print(f"warning: {exc}; training goes on without it", file=sys.stderr)
    return opened
