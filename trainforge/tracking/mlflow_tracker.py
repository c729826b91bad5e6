"""The MLflow tracker: one parent MLflow run per trainforge run, one nested run per candidate.

Parent: tags (trainforge version, data sha256, git commit and dirty flag, seed), the best
candidate's validation metrics, and artifacts (resolved spec, manifest, leaderboard, report, the
best model as an MLflow pyfunc model). Each candidate: its resolved settings as parameters, its
per-epoch metrics as steps, its final validation metrics, metrics.json and history.csv. Only the
best model is copied into MLflow (a forest can weigh hundreds of MB); every candidate's bundle
stays in the run folder, and ``trainforge.tracking.pyfunc.save_pyfunc`` wraps any of them.

Tracking must never cost a user their training: the store is checked before training starts
(a clear one-line error), and a failure later on prints one warning and switches tracking off
for the rest of the run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from trainforge import __version__
from trainforge.errors import TrackingError

PARENT_FILE = "tracking.json"  # in the run folder: where this run is tracked
MAX_PARAM = 6000  # MLflow's limit on a parameter value's length
_STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
_QUIET = {  # MLflow's own console output stays out of the user's (a user's setting wins)
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


class MlflowTracker:
    """A run observer that mirrors a run into MLflow.

    Args:
        uri: tracking URI: ``sqlite:///...``, ``http(s)://host:port``, or anything MLflow takes.
        experiment: the MLflow experiment name; created if missing.
        artifact_root: artifact location for a new experiment (None: the store's default).

    Raises:
        TrackingError: the server does not answer, or the store cannot be opened.
    """

    def __init__(self, uri: str, experiment: str, artifact_root: str | None = None):
        self.uri = uri
        for key, value in _QUIET.items():
            os.environ.setdefault(key, value)
        _check_reachable(uri)
        self.client, self.experiment_id = _open(uri, experiment, artifact_root)
        self.parent: str | None = None
        self.children: dict[str, str] = {}
        self.live: set[str] = set()  # candidates whose epochs were logged as they happened
        self.notices: list[str] = []
        self.path: Path | None = None
        self.enabled = True

    # -- observer events ------------------------------------------------------------------

    def run_started(self, run_id: str, path: str) -> None:
        with self._guard():
            self.path = Path(path)
            manifest = _manifest(self.path)
            earlier = _read_parent(self.path, self.uri)
            if earlier:  # a resumed run continues its MLflow run
                self.parent = earlier
                self.client.update_run(earlier, status="RUNNING")
            else:
                run = self.client.create_run(
                    self.experiment_id, run_name=run_id, tags=_run_tags(manifest, path)
                )
                self.parent = run.info.run_id
                info = {"uri": self.uri, "experiment_id": self.experiment_id, "run": self.parent}
                (self.path / PARENT_FILE).write_text(json.dumps(info, indent=2) + "\n")
            self._log_params(self.parent, {"seed": manifest.get("seed")})

    def notice(self, message: str) -> None:
        self.notices.append(message)

    def warning(self, message: str) -> None:
        self.notices.append(f"warning: {message}")

    def candidate_started(self, index: int, total: int, name: str) -> None:
        with self._guard():
            tags = {"mlflow.parentRunId": self.parent, "trainforge.candidate": name}
            tags.update(_data_tags(_manifest(self.path)))
            run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
            self.children[name] = run.info.run_id
            if index == 1:
                self._set_tags(self.parent, _data_tags(_manifest(self.path)))

    def epoch_end(self, name: str, epoch: int, total: int, metrics: dict) -> None:
        with self._guard():
            child = self.children.get(name)
            if child is not None:
                self.live.add(name)
                self._log_metrics(child, metrics, step=epoch)

    def candidate_finished(self, index: int, total: int, result) -> None:
        with self._guard():
            child = self.children.get(result.name)
            if child is None:
                return
            settings = dict(result.settings or {})
            self._log_params(child, {"family": result.family, **settings})
            if result.name not in self.live:  # rounds known only after fitting, or resumed
                self._log_history(child, result.history)
            self._log_metrics(child, {**result.metrics, "fit_seconds": result.fit_seconds})
            self._set_tags(child, {"trainforge.status": result.status})
            if result.error:
                self._set_tags(child, {"trainforge.error": result.error[:5000]})
            # from the result itself: the run writes the candidate's files in another thread
            from trainforge.candidate_run import record

            self.client.log_dict(child, record(result), "metrics.json")
            if result.history:
                import pandas as pd

                history = pd.DataFrame(result.history).to_csv(index=False)
                self.client.log_text(child, history, "history.csv")
            self.client.set_terminated(child, "FINISHED" if result.status == "ok" else "FAILED")

    def run_finished(self, status: str, path: str) -> None:
        with self._guard():
            if self.parent is None:
                return
            run = Path(path)
            manifest = _manifest(run)
            self._set_tags(self.parent, _data_tags(manifest))
            best = manifest.get("best") or {}
            if best:
                self._set_tags(self.parent, {"trainforge.best": best.get("candidate")})
                scores = {k: v for k, v in best.items() if k != "candidate"}
                self._log_metrics(self.parent, scores)
            for name in ("spec.yaml", "manifest.json", "leaderboard.csv", "report.html"):
                if (run / name).is_file():
                    self.client.log_artifact(self.parent, str(run / name))
            if self.notices:
                self.client.log_text(self.parent, "\n".join(self.notices) + "\n", "notices.txt")
            model = run / "candidates" / str(best.get("candidate")) / "model"
            if status == "completed" and (model / "bundle.json").is_file():
                self._log_model(self.parent, model)
            for name, child in self.children.items():  # a failed run leaves some unfinished
                if self.client.get_run(child).info.status == "RUNNING":
                    self.client.set_terminated(child, _STATUS.get(status, "FAILED"))
            self.client.set_terminated(self.parent, _STATUS.get(status, "FAILED"))

    # -- helpers --------------------------------------------------------------------------

    @contextmanager
    def _guard(self):
        """Run a logging step; on failure warn once and stop tracking, but keep training."""
        if not self.enabled:
            yield
            return
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - any tracking failure must not end the run
            self.enabled = False
            message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            print(
                f"warning: MLflow tracking at {self.uri} stopped ({type(exc).__name__}: "
                f"{message}); training goes on, the run folder has everything",
                file=sys.stderr,
            )

    def _log_metrics(self, run_id: str, values: dict, step: int = 0) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [
            Metric(_key(k), float(v), stamp, step)
            for k, v in values.items()
            if k != "epoch" and _finite(v)
        ]
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[start : start + 1000])

    def _log_history(self, run_id: str, history: list[dict]) -> None:
        """Every epoch's (or boosting round's) values in as few calls as MLflow allows (1,000
        values each): one call per round cost a CatBoost run on 178 rows 25 s."""
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [
            Metric(_key(k), float(v), stamp, int(entry.get("epoch", entry.get("round", 0))))
            for entry in history
            for k, v in entry.items()
            if k not in ("epoch", "round") and _finite(v)
        ]
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[start : start + 1000])

    def _log_params(self, run_id: str, values: dict) -> None:
        from mlflow.entities import Param

        params = [Param(_key(k), _text(v)) for k, v in values.items() if v is not None]
        for start in range(0, len(params), 100):
            self.client.log_batch(run_id, params=params[start : start + 100])

    def _set_tags(self, run_id: str, tags: dict) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, _text(v)) for k, v in tags.items() if v is not None]
        if items:
            self.client.log_batch(run_id, tags=items)

    def _log_model(self, run_id: str, bundle: Path) -> None:
        from trainforge.tracking.pyfunc import save_pyfunc

        with tempfile.TemporaryDirectory() as staging:
            target = Path(staging) / "model"
            save_pyfunc(bundle, target)
            self.client.log_artifacts(run_id, str(target), "model")


def quiet_mlflow() -> None:
    """Keep MLflow's and its database migrations' INFO lines out of the user's output."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def check_store(uri: str) -> None:
    """What can be checked before training starts: a server answers, a SQLite store's folder
    exists or can be made."""
    _check_reachable(uri)
    if uri.startswith("sqlite:///"):
        with _store_lock(uri):
            pass


def _check_reachable(uri: str) -> None:
    """A tracking server must answer its health check before training starts."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as answer:
            answer.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise TrackingError(
            f"cannot reach the MLflow tracking server at {uri} ({reason}); start it, fix "
            "tracking.uri or MLFLOW_TRACKING_URI, or switch tracking off (--no-tracking)"
        ) from None


def _open(uri: str, experiment: str, artifact_root: str | None):
    """The client and the experiment's id, creating the experiment (and store) if needed.

    Two runs starting at once may both create the embedded store; a lock file beside the
    database keeps its creation to one of them.
    """
    from mlflow.tracking import MlflowClient

    quiet_mlflow()  # after the import, which sets MLflow's own logging up

    try:
        with _store_lock(uri):
            client = MlflowClient(uri)
            found = client.get_experiment_by_name(experiment)
            if found is not None:
                return client, found.experiment_id
            return client, client.create_experiment(experiment, artifact_location=artifact_root)
    except TrackingError:
        raise
    except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds; the user needs one line
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise TrackingError(
            f"cannot use the MLflow tracking store {uri} ({first}); fix tracking.uri or "
            "MLFLOW_TRACKING_URI, or switch tracking off (--no-tracking)"
        ) from None


@contextmanager
def _store_lock(uri: str):
    if not uri.startswith("sqlite:///"):
        yield
        return
    database = Path(uri.removeprefix("sqlite:///"))
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrackingError(
            f"cannot create the MLflow store folder {database.parent} ({exc.strerror}); "
            "choose another runs folder or tracking.uri, or pass --no-tracking"
        ) from None
    try:
        import fcntl
    except ImportError:  # not on Windows: creation races are then possible but rare
        yield
        return
    with open(database.with_name(database.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _manifest(path: Path | None) -> dict:
    try:
        return json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError, TypeError):
        return {}


def _read_parent(path: Path, uri: str) -> str | None:
    try:
        info = json.loads((path / PARENT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info.get("run") if info.get("uri") == uri else None


def _run_tags(manifest: dict, path: str) -> dict:
    code = manifest.get("code") or {}
    tags = {
        "trainforge.version": __version__,
        "trainforge.run_id": manifest.get("id"),
        "trainforge.run_path": str(Path(path).resolve()),
        "trainforge.seed": manifest.get("seed"),
        "mlflow.source.git.commit": code.get("commit"),
        "trainforge.git_dirty": None if not code else str(bool(code.get("dirty"))).lower(),
    }
    return {k: str(v) for k, v in tags.items() if v is not None}


def _data_tags(manifest: dict) -> dict:
    tags = {}
    for role, item in (manifest.get("inputs") or {}).items():
        key = "trainforge.data_sha256" if role == "train" else f"trainforge.{role}_sha256"
        tags[key] = str(item.get("fingerprint", "")).removeprefix("sha256:")
    if manifest.get("task"):
        tags["trainforge.task"] = manifest["task"]
    return tags


def _key(name) -> str:
    """MLflow keys allow letters, digits, and ``_-./ :``; anything else becomes ``_``."""
    return "".join(c if c.isalnum() or c in "_-./ :" else "_" for c in str(name))[:250]


def _text(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:MAX_PARAM]


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
