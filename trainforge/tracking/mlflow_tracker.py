"""The MLflow tracker: one parent MLflow run per trainforge run, one nested run per candidate.

Parent (named after the user's run name, then the run id's stamp): tags (trainforge version,
data sha256, git commit and dirty flag, seed), the input files as dataset inputs (name, path,
sha256; no data), every validation metric of the best candidate, artifacts (resolved spec,
manifest, leaderboard, report), and the best model as an MLflow logged model (a pyfunc model
that loads without pickle). Each candidate: its resolved settings as parameters, its per-epoch
metrics as steps, its final validation metrics, metrics.json and history.csv. Only the best
model is copied into MLflow (a forest can weigh hundreds of MB); every candidate's bundle stays
in the run folder, and ``trainforge.tracking.pyfunc.save_pyfunc`` wraps any of them.

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
from trainforge.tracking.guard import guarded as _guarded
from trainforge.tracking.guard import read_json

PARENT_FILE = "tracking.json"  # in the run folder: where this run is tracked
MODEL_NAME = "model"  # the best model's logged-model name: runs:/<parent run id>/model
MAX_PARAM = 6000  # MLflow's limit on a parameter value's length
MAX_DIGEST = 36  # MLflow's limit on a dataset digest's length
EXPORTED = ("model.onnx", "model.onnx.json")  # a run's export (spec ``export: onnx``)
LIVE_SECONDS = 2.0  # how often epochs are sent while a candidate trains
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
        self.finished: set[str] = set()  # candidates whose nested run is terminated
        self.earlier: dict[str, str] = {}  # on resume: candidates logged by an earlier attempt
        self.pending: dict[str, list] = {}  # epochs not sent yet, by candidate
        self.sent = 0.0  # time.monotonic() when pending epochs were last sent
        self.notices: list[str] = []
        self.datasets: dict[str, tuple[str, str]] = {}  # role: (name, digest), once logged
        self.data_logged = False
        self.model_logged = False
        self.path: Path | None = None
        self.enabled = True

    # -- observer events ------------------------------------------------------------------

    @_guarded
    def run_started(self, run_id: str, path: str) -> None:
        self.path = Path(path)
        manifest = _manifest(self.path)
        earlier = _read_parent(self.path, self.uri)
        if earlier:  # a resumed run continues its MLflow run and its candidates' runs
            self.parent = earlier
            self.client.update_run(earlier, status="RUNNING")
            self._take_over_children()
        else:
            name = _run_name(run_id, manifest.get("name") or _spec_name(self.path))
            run = self.client.create_run(
                self.experiment_id, run_name=name, tags=_run_tags(manifest, path)
            )
            self.parent = run.info.run_id
            info = {"uri": self.uri, "experiment_id": self.experiment_id, "run": self.parent}
            (self.path / PARENT_FILE).write_text(json.dumps(info, indent=2) + "\n")
        self._send(self.parent, params=_params({"seed": manifest.get("seed")}))
        if manifest.get("resumed"):
            self._close_orphans()

    def notice(self, message: str) -> None:
        self.notices.append(message)

    def warning(self, message: str) -> None:
        self.notices.append(f"warning: {message}")

    @_guarded
    def candidate_started(self, index: int, total: int, name: str) -> None:
        self._start_child(name)

    @_guarded
    def epoch_end(self, name: str, epoch: int, total: int, metrics: dict) -> None:
        """Epochs are sent at most every ``LIVE_SECONDS`` (and when the candidate finishes):
        one database commit per epoch cost small runs more than their training."""
        if name not in self.children:
            return
        self.live.add(name)
        self.pending.setdefault(name, []).extend(_metrics(metrics, step=epoch))
        if time.monotonic() - self.sent >= LIVE_SECONDS:
            self._send_pending()

    @_guarded
    def candidate_finished(self, index: int, total: int, result) -> None:
        if result.name in self.earlier:  # read back: an earlier attempt logged it
            return
        child = self.children.get(result.name)
        if child is None or result.name in self.finished:  # read back, not announced
            child = self._start_child(result.name)
        metrics = self.pending.pop(result.name, [])
        if result.name not in self.live:  # rounds known only after fitting, or resumed
            metrics += _history(result.history)
        metrics += _metrics({**result.metrics, "fit_seconds": result.fit_seconds})
        tags = {"trainforge.status": result.status}
        if result.error:
            tags["trainforge.error"] = result.error[:5000]
        settings = {"family": result.family, **(result.settings or {})}
        self._send(child, metrics, _params(settings), _tags(tags))
        with tempfile.TemporaryDirectory() as folder:  # one upload for both files
            _candidate_files(result, Path(folder))
            self.client.log_artifacts(child, folder)
        self.client.set_terminated(child, "FINISHED" if result.status == "ok" else "FAILED")
        self.finished.add(result.name)

    @_guarded
    def best_chosen(self, path: str) -> None:
        """Log the best model now, while the run draws its report (the pyfunc save takes most
        of a second); a run that fails after this keeps the model in its FAILED MLflow run."""
        if self.parent is None:
            return
        _, best, saved, scores = self._closing(Path(path))
        model = Path(path) / "candidates" / str(best.get("candidate")) / "model"
        if (model / "bundle.json").is_file():
            self._log_model(model, saved, scores)
            self.model_logged = True

    @_guarded
    def run_finished(self, status: str, path: str) -> None:
        if self.parent is None:
            return
        run = Path(path)
        manifest, best, saved, scores = self._closing(run)
        tags = {**_data_tags(manifest), "trainforge.best": best.get("candidate")}
        self._send(self.parent, _metrics(scores), tags=_tags(tags))
        for name in ("spec.yaml", "leaderboard.csv", "report.html", *EXPORTED):
            if (run / name).is_file():
                self.client.log_artifact(self.parent, str(run / name))
        # the folder's manifest is marked completed only once tracking has finished
        ended = {**manifest, "status": status} if manifest else {"status": status}
        self.client.log_dict(self.parent, ended, "manifest.json")
        if self.notices:
            self.client.log_text(self.parent, "\n".join(self.notices) + "\n", "notices.txt")
        model = run / "candidates" / str(best.get("candidate")) / "model"
        logged = self.model_logged or not (model / "bundle.json").is_file()
        if status == "completed" and not logged:
            self._log_model(model, saved, scores)
        for name, child in self.children.items():  # a failed run leaves some unfinished
            if name not in self.finished:
                self.client.set_terminated(child, _STATUS.get(status, "FAILED"))
        self.client.set_terminated(self.parent, _STATUS.get(status, "FAILED"))

    # -- helpers --------------------------------------------------------------------------

    def _closing(self, run: Path) -> tuple[dict, dict, dict, dict]:
        """Send what is pending and log the datasets (once); the manifest, its best entry, the
        best candidate's record and scores."""
        self._send_pending()
        manifest = _manifest(run)
        if not self.data_logged:
            self._log_datasets(manifest)
        best = manifest.get("best") or {}
        saved = _candidate_record(run, best.get("candidate"))
        scores = saved.get("metrics") or {k: v for k, v in best.items() if k != "candidate"}
        return manifest, best, saved, scores

    def _close_orphans(self) -> None:
        """Mark KILLED any other parent run of this trainforge run that a kill left RUNNING
        (killed after MLflow made it, before tracking.json named it)."""
        run_id = self.path.name if self.path is not None else ""
        for orphan in self.client.search_runs(
            [self.experiment_id], f"tags.`trainforge.run_id` = '{run_id}'"
        ):
            if orphan.info.run_id != self.parent and orphan.info.status == "RUNNING":
                self.client.set_terminated(orphan.info.run_id, "KILLED")

    def _take_over_children(self) -> None:
        """On resume: the candidates an earlier attempt logged keep their nested runs (they are
        read back, not logged again); a nested run a kill left RUNNING is marked KILLED."""
        found = self.client.search_runs(
            [self.experiment_id], f"tags.mlflow.parentRunId = '{self.parent}'"
        )
        for child in found:
            name = child.data.tags.get("trainforge.candidate")
            if child.info.status == "RUNNING":
                self.client.set_terminated(child.info.run_id, "KILLED")
            elif name and child.info.status in ("FINISHED", "FAILED"):
                self.earlier[name] = child.info.run_id

    def _start_child(self, name: str) -> str:
        """A nested run for the candidate ``name``; the first one also records the data."""
        manifest = _manifest(self.path)
        tags = {"mlflow.parentRunId": self.parent, "trainforge.candidate": name}
        tags.update(_data_tags(manifest))
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        self.children[name] = run.info.run_id
        self.finished.discard(name)
        self.earlier.pop(name, None)  # trained again in this attempt: logged again
        if not self.data_logged:
            self._send(self.parent, tags=_tags(_data_tags(manifest)))
            self._log_datasets(manifest)
        return run.info.run_id

    def _stop(self, exc: Exception) -> None:
        """Warn once and stop tracking (the MLflow run marked FAILED if the store still
        answers); training goes on."""
        self.enabled = False
        try:
            if self.parent is not None:
                self.client.set_terminated(self.parent, "FAILED")
        except Exception:  # noqa: BLE001, S110 - the store that just failed may fail again
            pass
        message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        print(
            f"warning: MLflow tracking at {self.uri} stopped ({type(exc).__name__}: "
            f"{message}); training goes on, the run folder has everything",
            file=sys.stderr,
        )

    def _send(self, run_id: str, metrics=(), params=(), tags=()) -> None:
        """Metrics, parameters and tags in as few calls as MLflow allows (1,000 values each,
        at most 100 parameters and 100 tags): one call per boosting round cost a CatBoost run
        on 178 rows 25 s."""
        metrics, params, tags = list(metrics), list(params), list(tags)
        while metrics or params or tags:
            some_params, params = params[:100], params[100:]
            some_tags, tags = tags[:100], tags[100:]
            room = 1000 - len(some_params) - len(some_tags)
            some_metrics, metrics = metrics[:room], metrics[room:]
            self.client.log_batch(run_id, some_metrics, some_params, some_tags)

    def _send_pending(self) -> None:
        for name, metrics in self.pending.items():
            self._send(self.children[name], metrics)
        self.pending.clear()
        self.sent = time.monotonic()

    def _log_model(self, bundle: Path, saved: dict, scores: dict) -> None:
        """The best model as the parent's logged model ``model``, with the candidate's settings
        as its parameters and its validation metrics, measured on the validation data (a
        holdout of the training data when there is no validation file)."""
        from trainforge.tracking.pyfunc import log_pyfunc

        family = saved.get("family")
        settings = {"family": family, **(saved.get("settings") or {})}
        candidate = {"trainforge.candidate": saved.get("candidate"), "trainforge.family": family}
        model_id = log_pyfunc(
            self.client,
            self.parent,
            self.experiment_id,
            bundle,
            name=MODEL_NAME,
            tags={k: str(v) for k, v in candidate.items() if v is not None},
            params={_key(k): _text(v) for k, v in settings.items() if v is not None},
        )
        measured = self.datasets.get("validation") or self.datasets.get("train")
        link = dict(zip(("dataset_name", "dataset_digest"), measured)) if measured else {}
        self._send(self.parent, _metrics(scores, model_id=model_id, **link))

    def _log_datasets(self, manifest: dict) -> None:
        """The run's input files as MLflow dataset inputs of the parent run: name, source and
        digest only (MLflow reads no data)."""
        from mlflow.entities import DatasetInput, InputTag

        inputs = []
        for role, item in (manifest.get("inputs") or {}).items():
            if not (item or {}).get("fingerprint"):
                continue
            dataset, sha256 = _dataset(role, item, manifest.get("id"))
            context = "training" if role == "train" else role
            tags = [InputTag("mlflow.data.context", context), InputTag("trainforge.sha256", sha256)]
            inputs.append(DatasetInput(dataset._to_mlflow_entity(), tags))
            self.datasets[role] = (dataset.name, dataset.digest)
        if inputs:
            self.client.log_inputs(self.parent, datasets=inputs)
            self.data_logged = True


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
    return read_json(path / "manifest.json") if path is not None else {}


def _read_parent(path: Path, uri: str) -> str | None:
    try:
        info = json.loads((path / PARENT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info.get("run") if info.get("uri") == uri else None


def _spec_name(path: Path) -> str | None:
    """The ``name`` in the run's spec.yaml, if the user gave one."""
    import yaml

    try:
        spec = yaml.safe_load((path / "spec.yaml").read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return spec.get("name") if isinstance(spec, dict) else None


def _run_name(run_id: str, name: str | None) -> str:
    """The parent's MLflow run name: the user's run name first, since the MLflow UI cuts long
    names; then the id's time stamp and suffix (``adult-20261126-101010-a1b2c3`` for the run
    ``20261126-101010-adult-a1b2c3``). Without a name, the run id."""
    if not name:
        return run_id
    rest = run_id.replace(f"-{name}-", "-", 1)
    return f"{name}-{rest}" if rest != run_id else f"{name} {run_id}"


def _candidate_record(run: Path, candidate) -> dict:
    """A candidate's metrics.json ({} if it cannot be read)."""
    try:
        saved = json.loads((run / "candidates" / str(candidate) / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def _dataset(role: str, item: dict, run_id):
    """An input file as an MLflow dataset with no data: its file name, its path as a local
    source (in-memory frames: a code source), and the first 36 hex digits of its sha256 as the
    digest (MLflow keeps at most 36 characters). Returns the dataset and the full fingerprint
    (``<sha256>``, or ``frame:<sha256>`` for an in-memory frame)."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import get_dataset_source_from_json
    from mlflow.data.meta_dataset import MetaDataset

    sha256 = str(item.get("fingerprint", "")).removeprefix("sha256:")
    digest = sha256.rpartition(":")[2][:MAX_DIGEST]
    if item.get("path"):
        path = Path(item["path"]).resolve()
        source = get_dataset_source_from_json(json.dumps({"uri": str(path)}), "local")
        name = path.name
    else:
        source = CodeDatasetSource({"trainforge.run_id": str(run_id)})
        name = f"{role} (in memory)"
    return MetaDataset(source, name=name, digest=digest), sha256


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


def _metrics(values: dict, step: int = 0, **link) -> list:
    """MLflow metrics of ``values`` at ``step`` (non-finite values left out); ``link``: a
    Metric's ``model_id``, ``dataset_name`` and ``dataset_digest``."""
    from mlflow.entities import Metric

    stamp = int(time.time() * 1000)
    return [
        Metric(_key(k), float(v), stamp, step, **link)
        for k, v in values.items()
        if k != "epoch" and _finite(v)
    ]


def _history(history: list[dict]) -> list:
    """Every epoch's (or boosting round's) values as metrics, the epoch or round as step."""
    from mlflow.entities import Metric

    stamp = int(time.time() * 1000)
    return [
        Metric(_key(k), float(v), stamp, int(entry.get("epoch", entry.get("round", 0))))
        for entry in history or []
        for k, v in entry.items()
        if k not in ("epoch", "round") and _finite(v)
    ]


def _params(values: dict) -> list:
    from mlflow.entities import Param

    return [Param(_key(k), _text(v)) for k, v in values.items() if v is not None]


def _tags(values: dict) -> list:
    from mlflow.entities import RunTag

    return [RunTag(k, _text(v)) for k, v in values.items() if v is not None]


def _candidate_files(result, folder: Path) -> None:
    """A candidate's metrics.json and history.csv, from the result itself (the run writes the
    candidate's own files in another thread)."""
    saved = getattr(result, "record", None)  # sent from the run's process as a record
    if saved is None:
        from trainforge.candidate_run import record

        saved = record(result)
    (folder / "metrics.json").write_text(json.dumps(saved, indent=2, default=str))
    if result.history:
        import pandas as pd

        pd.DataFrame(result.history).to_csv(folder / "history.csv", index=False)


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
