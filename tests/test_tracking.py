"""MLflow tracking: what a run logs, read back through MlflowClient from the embedded SQLite
store and from a real `mlflow server` on loopback; the pyfunc model; failures before training."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trainforge
from conftest import make_small_table, run_cli

MODELS = ["baseline", "logistic_regression", {"name": "mlp", "max_epochs": 3, "patience": 50}]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """A run with no tracking settings at all: it must land in runs/mlflow.db."""
    folder = tmp_path_factory.mktemp("default")
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        result = trainforge.train(
            data=make_small_table(), target="y", models=MODELS, output=folder / "runs", seed=3
        )
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    return result


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def _logged(client, run_path: Path):
    """The parent run of a trainforge run folder and its children by candidate name."""
    info = json.loads((run_path / "tracking.json").read_text())
    parent = client.get_run(info["run"])
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    return parent, {c.data.tags["trainforge.candidate"]: c for c in children}


def _check_logged(client, run_path: Path) -> None:
    manifest = json.loads((run_path / "manifest.json").read_text())
    parent, children = _logged(client, run_path)
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == manifest["id"]
    tags = parent.data.tags
    assert tags["trainforge.version"] == trainforge.__version__
    assert tags["trainforge.seed"] == str(manifest["seed"])
    fingerprint = manifest["inputs"]["train"]["fingerprint"].removeprefix("sha256:")
    assert tags["trainforge.data_sha256"] == fingerprint
    assert len(fingerprint.split(":")[-1]) == 64
    if manifest.get("code"):
        assert tags["mlflow.source.git.commit"] == manifest["code"]["commit"]
        assert tags["trainforge.git_dirty"] == str(manifest["code"]["dirty"]).lower()
    assert tags["trainforge.best"] == manifest["best"]["candidate"]
    metric = manifest["primary_metric"]
    assert parent.data.metrics[metric] == pytest.approx(manifest["best"][metric])
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"spec.yaml", "manifest.json", "leaderboard.csv", "report.html", "model"} <= artifacts

    assert set(children) == {"baseline", "logistic_regression", "mlp", "ensemble"}
    for name, child in children.items():
        saved = json.loads((run_path / "candidates" / name / "metrics.json").read_text())
        assert child.info.status == "FINISHED"
        assert child.data.tags["trainforge.data_sha256"] == fingerprint
        assert child.data.params["family"] == name
        for key, value in saved["settings"].items():
            expected = value if isinstance(value, str) else json.dumps(value)
            assert child.data.params[key] == expected
        for key, value in saved["metrics"].items():
            assert child.data.metrics[key] == pytest.approx(value)
        names = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert "metrics.json" in names and "model" not in names  # only the best is copied
    curve = client.get_metric_history(children["mlp"].info.run_id, "val_loss")
    history = pd.read_csv(run_path / "candidates" / "mlp" / "history.csv")
    assert [m.step for m in curve] == [1, 2, 3]
    assert [m.value for m in curve] == pytest.approx(history["val_loss"].tolist())
    assert client.get_metric_history(children["baseline"].info.run_id, "loss") == []


def test_a_run_logs_to_the_embedded_sqlite_store_by_default(default_run):
    runs = default_run.path.parent
    assert (runs / "mlflow.db").is_file() and (runs / "mlartifacts").is_dir()
    uri = "sqlite:///" + str((runs / "mlflow.db").resolve())
    assert json.loads((default_run.path / "tracking.json").read_text())["uri"] == uri
    client = _client(uri)
    _check_logged(client, default_run.path)
    parent, _ = _logged(client, default_run.path)
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.name == "trainforge"
    assert experiment.artifact_location == (runs / "mlartifacts").resolve().as_uri()


def test_the_logged_model_loads_as_pyfunc_and_predicts_like_trainforge(default_run, tmp_path):
    import mlflow.pyfunc

    runs = default_run.path.parent
    client = _client("sqlite:///" + str((runs / "mlflow.db").resolve()))
    parent, _ = _logged(client, default_run.path)
    rows = make_small_table(80).drop(columns="y")
    expected = trainforge.load(default_run.path).predict_frame(rows)
    pyfunc = mlflow.pyfunc.load_model(parent.info.artifact_uri + "/model")
    got = pyfunc.predict(rows)
    assert list(got.columns) == ["prediction", "proba_no", "proba_yes"]
    assert got["prediction"].tolist() == expected["prediction"].tolist()
    np.testing.assert_array_equal(got["proba_yes"], expected["proba_yes"])
    # any candidate's bundle wraps the same way, e.g. the neural net (JSON + safetensors)
    from trainforge.tracking.pyfunc import save_pyfunc

    folder = default_run.path / "candidates" / "mlp" / "model"
    mlp = mlflow.pyfunc.load_model(str(save_pyfunc(folder, tmp_path / "mlp")))
    bundle = trainforge.load(folder)
    np.testing.assert_array_equal(
        mlp.predict(rows)["proba_yes"], bundle.predict_frame(rows)["proba_yes"]
    )
    # the MLflow model holds no pickle: a loader module and the bundle's own files
    model_dir = Path(parent.info.artifact_uri.removeprefix("file://")) / "model"
    text = (model_dir / "MLmodel").read_text()
    assert "loader_module: trainforge.tracking.pyfunc" in text
    assert not [p for p in model_dir.rglob("*") if p.suffix in (".pkl", ".pickle")]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real tracking server on loopback with its own SQLite store and artifact folder."""
    folder = tmp_path_factory.mktemp("server")
    port = _free_port()
    command = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
        "--artifacts-destination", str(folder / "artifacts"), "--workers", "1",
    ]  # fmt: skip
    log = open(folder / "server.log", "w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(uri + "/health", timeout=2).read()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"mlflow server did not start: {(folder / 'server.log').read_text()}")
            time.sleep(0.5)
    yield uri
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def test_a_cli_run_logs_to_a_tracking_server_named_in_the_spec(mlflow_server, tmp_path):
    make_small_table().to_csv(tmp_path / "small.csv", index=False)
    (tmp_path / "spec.yaml").write_text(
        "data: {train: small.csv, target: y}\n"
        "models: [baseline, logistic_regression, {name: mlp, max_epochs: 4, patience: 50}]\n"
        f"tracking: {{uri: '{mlflow_server}', experiment: served}}\n"
    )
    done = run_cli("train", "spec.yaml", "--quiet", cwd=tmp_path)
    assert done.code == 0, done.stderr
    assert "View run" not in done.stdout + done.stderr  # MLflow's own chatter stays out
    assert "mlflow" not in done.stderr.lower()
    run_path = next((tmp_path / "runs").iterdir())
    assert not (tmp_path / "runs" / "mlflow.db").exists()
    client = _client(mlflow_server)
    parent, children = _logged(client, run_path)
    assert set(children) == {"baseline", "logistic_regression", "mlp", "ensemble"}
    assert parent.info.status == "FINISHED"
    epochs = client.get_metric_history(children["mlp"].info.run_id, "loss")
    history = pd.read_csv(run_path / "candidates" / "mlp" / "history.csv")
    assert [m.value for m in epochs] == pytest.approx(history["loss"].tolist())
    assert [m.step for m in epochs] == [1, 2, 3, 4]
    assert client.get_experiment(parent.info.experiment_id).name == "served"
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"spec.yaml", "leaderboard.csv", "report.html", "manifest.json", "model"} <= names
    board = client.download_artifacts(parent.info.run_id, "leaderboard.csv", str(tmp_path))
    assert Path(board).read_text() == (run_path / "leaderboard.csv").read_text()


def test_an_unreachable_server_fails_before_training_in_one_line(tmp_path, small_csv):
    port = _free_port()  # nothing listens there
    done = run_cli(
        "train", small_csv, "--target", "y", "--models", "baseline",
        "--tracking-uri", f"http://127.0.0.1:{port}", cwd=tmp_path,
    )  # fmt: skip
    assert done.code == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"error: cannot reach the MLflow tracking server at http://127.0.0.1:{port}"
    )
    assert "--no-tracking" in lines[0]
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_tracking_can_be_switched_off(tmp_path, small_csv, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    done = run_cli(
        "train", small_csv, "--target", "y", "--models", "baseline", "--no-tracking",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.code == 0, done.stderr
    runs = tmp_path / "runs"
    assert not (runs / "mlflow.db").exists() and not (runs / "mlartifacts").exists()
    (run_path,) = [p for p in runs.iterdir() if p.is_dir()]
    assert not (run_path / "tracking.json").exists()
    assert (run_path / "report.html").is_file()
    spec = (run_path / "spec.yaml").read_text()
    assert "tracking:\n  enabled: false\n" in spec


def test_a_resumed_run_continues_its_mlflow_run(tmp_path, small_csv):
    from trainforge.run import resume
    from trainforge.rundir import read_manifest

    first = trainforge.train(
        data=small_csv,
        target="y",
        models=["baseline", "logistic_regression"],
        output=tmp_path,
        ensemble=False,
    )
    info = json.loads((first.path / "tracking.json").read_text())
    assert info["uri"] == os.environ["MLFLOW_TRACKING_URI"]  # the suite's shared store
    client = _client(info["uri"])
    client.set_terminated(info["run"], "KILLED")  # as if the process had been killed
    manifest = read_manifest(first.path)
    manifest["status"] = "interrupted"
    (first.path / "manifest.json").write_text(json.dumps(manifest))
    (first.path / "candidates" / "logistic_regression" / "metrics.json").unlink()

    resume(first.path)
    assert json.loads((first.path / "tracking.json").read_text())["run"] == info["run"]
    parent, _ = _logged(client, first.path)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["trainforge.best"] == "logistic_regression"
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{info['run']}'"
    )
    names = sorted(c.data.tags["trainforge.candidate"] for c in children)
    assert names == ["baseline", "baseline", "logistic_regression", "logistic_regression"]
    assert all(c.info.status == "FINISHED" for c in children)


def test_every_search_trial_is_a_nested_mlflow_run(tmp_path):
    uri = "sqlite:///" + str(tmp_path / "store.db")
    result = trainforge.train(
        {"budget": {"trials": 3}, "models": ["logistic_regression"]},
        data=make_small_table(),
        target="y",
        output=tmp_path / "runs",
        tracking_uri=uri,
        ensemble=False,
    )
    _, children = _logged(_client(uri), result.path)
    trials = pd.read_csv(result.path / "search.csv")
    assert set(children) == {"logistic_regression", *trials.candidate}
    assert len(trials) == 3 and all(
        name.startswith("logistic_regression#t") for name in trials.candidate
    )
    for row in trials.itertuples():
        child = children[row.candidate]
        assert child.info.status == "FINISHED"
        assert child.data.params["C"] == str(json.loads(row.params)["C"])
        assert child.data.metrics["roc_auc"] == pytest.approx(row.value)
