"""Experiment tracking: the run folder always, MLflow by default.

A tracker is a run observer (trainforge.events): it receives ``run_started``,
``candidate_started``, ``epoch_end``, ``candidate_finished``, ``notice`` and ``run_finished`` and
records them elsewhere. The run folder itself is written by the runner (trainforge.rundir); the
MLflow tracker mirrors it into MLflow: one parent run per trainforge run, one nested run per
candidate.

mlflow is imported only when a tracker is opened, so ``trainforge --help`` and runs with
tracking off stay fast.
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


def open_tracker(spec: RunSpec):
    """The MLflow tracker for ``spec`` working in a background thread, or None when tracking
    is off.

    Raises:
        TrackingError: the server does not answer, or the store's folder cannot be made;
            raised before any training starts. (A store that fails to open later, in the
            tracker's thread, prints one warning and the run goes on without tracking.)
    """
    if not spec.tracking.enabled:
        return None
    from trainforge.tracking.background import InBackground
    from trainforge.tracking.mlflow_tracker import MlflowTracker, check_store

    uri = tracking_uri(spec)
    check_store(uri)
    return InBackground(lambda: MlflowTracker(uri, spec.tracking.experiment, artifact_root(uri)))
