"""Generation as a task through the CLI: a table (adult, string categoricals, missing values) and
images (mnist_5k) train a ladder of generators scored on real rows kept aside, with a
leaderboard, report section and MLflow run; ``trainforge sample`` draws rows or images, the
same seed the same samples; a killed generation run resumes bit-identically."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("torch", reason="the torch extra is not installed")

import trainforge  # noqa: E402
from conftest import DATA, run_cli  # noqa: E402
from trainforge.cli import main  # noqa: E402

ADULT = DATA / "tabular" / "adult.csv"
TARGET = "income >50K"
GAN = {"name": "gan", "max_epochs": 6, "batch_size": 64}


def _spec(folder, models, **data) -> str:
    spec = {"task": "generation", "data": data, "models": models}
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    return "spec.yaml"


def _run(done) -> str:
    assert done.code == 0, done.stderr
    return done.stdout.strip().splitlines()[-1].removeprefix("run: ")


@pytest.fixture(scope="module")
def adult(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generation")
    pd.read_csv(ADULT).sample(1500, random_state=0).to_csv(folder / "adult.csv", index=False)
    models = ["independent_columns", "gaussian_copula", GAN]
    spec = _spec(folder, models, train="adult.csv", target=TARGET)
    run = folder / _run(run_cli("train", spec, "--quiet", cwd=folder))
    return folder, run


def test_a_table_trains_the_generation_ladder_with_leaderboard_report_and_mlflow(adult):
    _, run = adult
    board = pd.read_csv(run / "leaderboard.csv").set_index("candidate")
    assert set(board.index) == {"independent_columns", "gaussian_copula", "gan"}
    assert (board["status"] == "ok").all()
    assert board["two_sample_auc"].between(0.4, 1.0).all()
    assert list(board.columns[2:5]) == [
        "two_sample_auc", "column_distance_mean", "correlation_difference"
    ]  # fmt: skip
    assert board["utility_ratio"].between(0, 1.5).all()  # income predicted from generated rows
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["task"] == "generation"
    assert manifest["best"]["candidate"] == board.index[0]
    assert manifest["data"]["validation"] == {
        "strategy": "holdout", "train_rows": 1200, "holdout_rows": 300
    }  # fmt: skip
    scores = json.loads((run / "candidates/gan/scores.json").read_text())
    assert scores["two_sample_auc"] == pytest.approx(board.loc["gan", "two_sample_auc"])
    assert f"column_distance.{TARGET}" in scores
    report = (run / "report.html").read_text()
    assert "Generated samples" in report and "distance per column" in report
    import mlflow

    tracking = json.loads((run / "tracking.json").read_text())
    client = mlflow.MlflowClient(tracking_uri=tracking["uri"])
    logged = client.get_run(tracking["run"]).data.metrics
    assert logged["two_sample_auc"] == pytest.approx(board["two_sample_auc"].iloc[0])


@pytest.mark.parametrize("name", ["independent_columns", "gaussian_copula", "gan"])
def test_sample_writes_rows_in_the_training_columns_with_valid_levels(adult, name):
    folder, run = adult
    model = run / "candidates" / name / "model"
    written = folder / f"{name}.csv"
    assert main(["sample", str(model), "-n", "400", "-o", str(written), "--seed", "5"]) == 0
    real, rows = pd.read_csv(folder / "adult.csv"), pd.read_csv(written)
    assert list(rows.columns) == list(real.columns) and len(rows) == 400
    for column in real.columns:
        assert rows[column].isna().any() <= real[column].isna().any(), column
        if real[column].dtype == object or str(real[column].dtype) == "str":
            assert set(rows[column].dropna()) <= set(real[column].dropna()), column
        else:
            assert rows[column].min() >= real[column].min(), column
    loaded = trainforge.load(model)  # the same seed, the same rows, in Python as on the CLI
    pd.testing.assert_frame_equal(loaded.sample(400, seed=5), rows, check_dtype=False)
    assert not loaded.sample(400, seed=6).equals(loaded.sample(400, seed=5))


def test_sample_refuses_what_it_cannot_do_in_one_line(adult, tmp_path, capsys):
    folder, run = adult
    for args, message in [
        (("-n", "0", "-o", "x.csv"), "-n 0: give how many samples to draw"),
        (("-n", "5", "-o", "x.png"), "this model generates table rows; name a .csv file"),
    ]:
        assert main(["sample", str(run), *args]) == 2
        stderr = capsys.readouterr().err
        assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    frame = pd.DataFrame({"a": np.arange(40.0), "y": [0, 1] * 20})
    trained = trainforge.train(
        data=frame, target="y", models=["logistic_regression"], output=tmp_path,
        tracking=False, quiet=True, ensemble=False,
    )  # fmt: skip
    assert main(["sample", str(trained.path), "-n", "5", "-o", str(tmp_path / "x.csv")]) == 2
    assert "sample draws from a generation run" in capsys.readouterr().err


def test_images_train_a_gan_and_sample_a_grid_and_an_array(tmp_path):
    import gzip

    # mnist_5k's first 600 images, in its own format: a CSV of pixels, the digit last, no header
    with gzip.open(DATA / "images" / "mnist_5k.csv.gz", "rt") as source:
        lines = [next(source) for _ in range(600)]
    (tmp_path / "digits.csv").write_text("".join(lines))
    models = [{"name": "gan", "max_epochs": 1, "width": 16}]
    spec = _spec(tmp_path, models, train="digits.csv", labels="digit")
    run = tmp_path / _run(run_cli("train", spec, "--quiet", cwd=tmp_path))
    board = pd.read_csv(run / "leaderboard.csv")
    assert list(board["candidate"]) == ["gan"] and board["frechet_distance"].iloc[0] > 0
    assert 0.4 <= board["two_sample_auc"].iloc[0] <= 1.0
    assert (run / "candidates/gan/samples.png").read_bytes()[:4] == b"\x89PNG"
    assert "Generated samples" in (run / "report.html").read_text()
    import mlflow

    tracking = json.loads((run / "tracking.json").read_text())
    logged = mlflow.MlflowClient(tracking["uri"]).get_run(tracking["run"]).data.metrics
    assert logged["frechet_distance"] == pytest.approx(board["frechet_distance"].iloc[0])
    assert main(["sample", str(run), "-n", "12", "-o", str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"
    images = np.load(tmp_path / "grid.npz")["images"]
    assert images.shape == (12, 28, 28) and images.min() >= 0 and images.max() <= 255


def test_a_killed_generation_run_resumes_bit_identically(tmp_path):
    pd.read_csv(ADULT).sample(600, random_state=1).to_csv(tmp_path / "adult.csv", index=False)
    gan = {**GAN, "max_epochs": 4, "patience": 4, "batch_size": 16, "checkpoint_every_steps": 9}
    spec = _spec(tmp_path, [gan], train="adult.csv")
    whole = tmp_path / _run(run_cli("train", spec, "--quiet", "--no-tracking", cwd=tmp_path))
    child = subprocess.Popen(
        [sys.executable, "-m", "trainforge", "train", spec, "--quiet", "--no-tracking",
         "--out", "killed"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        # two checkpoints stay (keep_last=2): a third is only there between a write and its prune
        if len(list((tmp_path / "killed").glob("*/candidates/gan/checkpoints/step-*"))) >= 2:
            os.killpg(child.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    (killed,) = (tmp_path / "killed").glob("*/manifest.json")
    done = run_cli("resume", killed.parent, "--quiet", "--no-tracking", cwd=tmp_path)
    assert done.code == 0, done.stderr

    def weights(run):
        path = run / "candidates/gan/model/estimator/gan/weights.safetensors"
        return hashlib.sha256(path.read_bytes()).hexdigest()

    assert weights(killed.parent) == weights(whole)
    history = "candidates/gan/history.csv"
    assert (killed.parent / history).read_text() == (whole / history).read_text()
