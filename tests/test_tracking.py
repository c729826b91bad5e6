"""MLflow tracking: what a run logs, read back through MlflowClient from the embedded SQLite
store and from a real `mlflow server` on loopback; the pyfunc model; failures before training."""

from __future__ import annotations

import hashlib
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


def _logged_model(client, parent):
    """The logged model the parent run produced (the best model)."""
    (output,) = parent.outputs.model_outputs
    model = client.get_logged_model(output.model_id)
    assert model.source_run_id == parent.info.run_id and model.name == "model"
    assert model.status == "READY"
    return model


def _local(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


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
    assert {"spec.yaml", "manifest.json", "leaderboard.csv", "report.html"} <= artifacts
    assert _logged_model(client, parent).tags["trainforge.candidate"] == tags["trainforge.best"]

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


def test_the_parent_run_has_every_validation_metric_of_the_best_candidate(default_run):
    uri = "sqlite:///" + str((default_run.path.parent / "mlflow.db").resolve())
    parent, _ = _logged(_client(uri), default_run.path)
    best = json.loads((default_run.path / "manifest.json").read_text())["best"]["candidate"]
    saved = json.loads((default_run.path / "candidates" / best / "metrics.json").read_text())
    expected = {k: v for k, v in saved["metrics"].items() if v is not None}
    assert len(expected) >= 4  # roc_auc, log_loss, accuracy, balanced_accuracy, f1
    assert {k: parent.data.metrics.get(k) for k in expected} == pytest.approx(expected)


def test_the_logged_model_loads_as_pyfunc_and_predicts_like_trainforge(
    default_run, tmp_path, monkeypatch
):
    import mlflow.pyfunc

    runs = default_run.path.parent
    uri = "sqlite:///" + str((runs / "mlflow.db").resolve())
    client = _client(uri)
    parent, _ = _logged(client, default_run.path)
    logged = _logged_model(client, parent)
    assert logged.params["family"] == parent.data.tags["trainforge.best"]
    assert {m.key for m in logged.metrics} >= {"roc_auc", "log_loss", "accuracy"}
    rows = make_small_table(80).drop(columns="y")
    expected = trainforge.load(default_run.path).predict_frame(rows)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # models:/ and runs:/ are read from there
    for model_uri in (f"models:/{logged.model_id}", f"runs:/{parent.info.run_id}/model"):
        got = mlflow.pyfunc.load_model(model_uri).predict(rows)
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
    model_dir = _local(logged.artifact_location)
    text = (model_dir / "MLmodel").read_text()
    assert "loader_module: trainforge.tracking.pyfunc" in text
    assert f"model_id: {logged.model_id}" in text
    assert not [p for p in model_dir.rglob("*") if p.suffix in (".pkl", ".pickle")]


def _requirements(folder: Path) -> set[str]:
    return set((folder / "requirements.txt").read_text().split())


def test_the_model_requirements_pin_the_libraries_the_bundle_needs(default_run, tmp_path):
    from importlib.metadata import version

    from packaging.version import Version

    from trainforge.tracking.pyfunc import save_pyfunc

    uri = "sqlite:///" + str((default_run.path.parent / "mlflow.db").resolve())
    client = _client(uri)
    parent, _ = _logged(client, default_run.path)
    model = _local(_logged_model(client, parent).artifact_location)
    logged = _requirements(model)
    base = {f"{name}=={version(name)}" for name in ("scikit-learn", "numpy", "pandas", "scipy")}
    assert base | {f"skops=={version('skops')}", f"trainforge=={trainforge.__version__}"} <= logged
    # torch only where the best model holds the neural net (an ensemble may)
    families = {json.loads(p.read_text())["family"] for p in model.rglob("bundle.json")}
    assert any(r.startswith("torch==") for r in logged) == ("mlp" in families)
    assert not {r for r in logged if r.startswith(("lightgbm", "xgboost", "catboost"))}
    # the neural net's bundle needs torch (without a local label such as +cpu) and safetensors
    mlp = _requirements(save_pyfunc(default_run.path / "candidates/mlp/model", tmp_path / "m"))
    torch = Version(version("torch")).public
    assert {f"torch=={torch}", f"safetensors=={version('safetensors')}"} | base <= mlp


@pytest.fixture(scope="module")
def named_cli_run(tmp_path_factory):
    """A LightGBM run from a CSV file through the CLI with --name, into its own store."""
    pytest.importorskip("lightgbm")
    folder = tmp_path_factory.mktemp("named")
    make_small_table().to_csv(folder / "small.csv", index=False)
    uri = "sqlite:///" + str(folder / "store.db")
    done = run_cli(
        "train", "small.csv", "--target", "y", "--models", "lightgbm", "--no-ensemble",
        "--name", "weekly-check", "--tracking-uri", uri, "--quiet", cwd=folder,
    )  # fmt: skip
    assert done.code == 0, done.stderr
    assert "warning" not in done.stderr.lower(), done.stderr
    (run_path,) = [p for p in (folder / "runs").iterdir() if p.is_dir()]
    client = _client(uri)
    parent, _ = _logged(client, run_path)
    return folder, run_path, client, parent


def test_the_mlflow_run_name_starts_with_the_run_name(named_cli_run):
    _, run_path, _, parent = named_cli_run
    assert run_path.name.split("-")[2:4] == ["weekly", "check"]  # the id: stamp-name-suffix
    assert parent.info.run_name.startswith("weekly-check-")
    stamp, suffix = run_path.name[:15], run_path.name[-6:]
    assert parent.info.run_name == f"weekly-check-{stamp}-{suffix}"
    assert parent.data.tags["trainforge.run_id"] == run_path.name


def test_the_training_file_is_a_dataset_input_with_its_sha256(named_cli_run):
    folder, _, client, parent = named_cli_run
    sha256 = hashlib.sha256((folder / "small.csv").read_bytes()).hexdigest()
    (given,) = parent.inputs.dataset_inputs
    dataset = given.dataset
    assert dataset.name == "small.csv"
    assert dataset.digest == sha256[:36]  # MLflow keeps at most 36 characters of a digest
    assert dataset.source_type == "local"
    assert json.loads(dataset.source) == {"uri": str((folder / "small.csv").resolve())}
    tags = {t.key: t.value for t in given.tags}
    assert tags == {"mlflow.data.context": "training", "trainforge.sha256": sha256}
    assert dataset.profile is None and dataset.schema is None  # nothing of the data was read


def test_a_lightgbm_model_requires_lightgbm(named_cli_run):
    from importlib.metadata import version

    _, run_path, client, parent = named_cli_run
    model = _logged_model(client, parent)
    assert model.tags["trainforge.family"] == "lightgbm"
    needed = _requirements(_local(model.artifact_location))
    assert f"lightgbm=={version('lightgbm')}" in needed
    assert f"scikit-learn=={version('scikit-learn')}" in needed
    assert not {r for r in needed if r.startswith(("torch", "xgboost", "catboost"))}


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
    assert {"spec.yaml", "leaderboard.csv", "report.html", "manifest.json"} <= names
    model = _logged_model(client, parent)
    assert {a.path for a in client.list_logged_model_artifacts(model.model_id)} >= {
        "MLmodel",
        "requirements.txt",
    }
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
    query = f"tags.mlflow.parentRunId = '{info['run']}'"
    experiment = client.get_run(info["run"]).info.experiment_id
    for child in client.search_runs([experiment], query):  # killed while it trained
        if child.data.tags["trainforge.candidate"] == "logistic_regression":
            client.update_run(child.info.run_id, status="RUNNING")

    resume(first.path)
    assert json.loads((first.path / "tracking.json").read_text())["run"] == info["run"]
    parent, _ = _logged(client, first.path)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["trainforge.best"] == "logistic_regression"
    children = client.search_runs([experiment], query)
    found = sorted((c.data.tags["trainforge.candidate"], c.info.status) for c in children)
    # the candidate read back keeps its one nested run; the one the kill interrupted has its
    # old run marked KILLED and a new, finished one; nothing is left RUNNING
    assert found == [
        ("baseline", "FINISHED"),
        ("logistic_regression", "FINISHED"),
        ("logistic_regression", "KILLED"),
    ]


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


def test_a_model_that_fails_to_upload_warns_once_and_the_run_completes(
    tmp_path, capsys, monkeypatch
):
    from mlflow.tracking import MlflowClient

    def refuse(self, model_id, local_dir, artifact_path=None):
        raise OSError("no space left on device")

    monkeypatch.setattr(MlflowClient, "log_model_artifacts", refuse)
    uri = "sqlite:///" + str(tmp_path / "store.db")
    result = trainforge.train(
        data=make_small_table(), target="y", models=["logistic_regression"], output=tmp_path,
        tracking_uri=uri, ensemble=False,
    )  # fmt: skip
    assert json.loads((result.path / "manifest.json").read_text())["status"] == "completed"
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"warning: MLflow tracking at {uri} stopped (OSError: no space")
    client = _client(uri)
    parent, _ = _logged(client, result.path)
    (output,) = parent.outputs.model_outputs
    assert client.get_logged_model(output.model_id).status == "FAILED"
    assert parent.info.status == "FAILED"  # tracking stopped: the MLflow run says so
