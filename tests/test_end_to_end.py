"""The real CLI on real data (../shared/data): the default ladder end to end, run folders,
predictions, and reproducibility with one seed."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import trainforge
from conftest import manifests, run_cli

TIMING = ["fit_seconds", "predict_ms_per_1k", "size_kb"]


def _train(tmp_path: Path, data: Path, target: str, *flags: str) -> Path:
    done = run_cli("train", data, "--target", target, "--out", "runs", *flags, cwd=tmp_path)
    assert done.code == 0, done.stderr
    run = Path(tmp_path, done.stdout.strip().splitlines()[-1].removeprefix("run: "))
    assert run.is_dir(), done.stdout
    return run


def _check_run_folder(run: Path, task: str, primary: str) -> pd.DataFrame:
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["task"] == task and manifest["primary_metric"] == primary
    assert manifest["inputs"]["train"]["fingerprint"].startswith("sha256:")
    assert {"python", "scikit-learn", "trainforge"} <= set(manifest["versions"])
    board = pd.read_csv(run / "leaderboard.csv")
    assert list(board.columns[:4]) == ["rank", "candidate", "family", primary]
    assert set(TIMING) <= set(board.columns)
    assert (board["status"] == "ok").all()
    assert board.loc[0, "candidate"] == manifest["best"]["candidate"]
    for name in board["candidate"]:
        folder = run / "candidates" / name
        assert (folder / "model" / "bundle.json").is_file()
        assert json.loads((folder / "metrics.json").read_text())["status"] == "ok"
    assert board["size_kb"].gt(0).all() and board["fit_seconds"].ge(0).all()
    return board


@pytest.mark.long
def test_adult_default_ladder_reaches_published_auc(tmp_path, data_dir):
    run = _train(tmp_path, data_dir / "tabular/adult.csv", "income >50K")
    board = _check_run_folder(run, "binary", "roc_auc")
    assert board["candidate"].iloc[-1] == "baseline" or board["roc_auc"].iloc[-1] <= 0.5
    assert board.loc[0, "roc_auc"] >= 0.90
    assert set(board["candidate"]) >= {
        "baseline",
        "logistic_regression",
        "random_forest",
        "hist_gradient_boosting",
        "linear_svm",
    }
    assert board["roc_auc"].iloc[1:].is_monotonic_decreasing  # the picked model first
    # predictions from the CLI: the input rows in order, a prediction and one column per class
    rows = pd.read_csv(data_dir / "tabular/adult.csv").sample(500, random_state=1)
    rows.drop(columns="income >50K").to_csv(tmp_path / "rows.csv", index=False)
    done = run_cli("predict", run, "rows.csv", "-o", "pred.csv", cwd=tmp_path)
    assert done.code == 0, done.stderr
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert list(pred.columns[-3:]) == ["prediction", "proba_0", "proba_1"]
    assert pred["age"].tolist() == rows["age"].tolist()
    np.testing.assert_allclose(pred[["proba_0", "proba_1"]].sum(axis=1), 1.0)
    accuracy = (pred["prediction"].to_numpy() == rows["income >50K"].to_numpy()).mean()
    assert accuracy > 0.8


@pytest.mark.long
def test_car_default_ladder_ranks_by_log_loss(tmp_path, data_dir):
    run = _train(tmp_path, data_dir / "tabular/car.tsv.gz", "target")
    board = _check_run_folder(run, "multiclass", "log_loss")
    assert board["log_loss"].iloc[1:].is_monotonic_increasing  # the picked model first
    assert board.loc[0, "log_loss"] < 0.1 and board.loc[0, "accuracy"] > 0.97
    schema = json.loads(
        (run / "candidates" / board.loc[0, "candidate"] / "model/bundle.json").read_text()
    )["schema"]
    assert schema["classes"] == [0, 1, 2, 3]
    assert {c["role"] for c in schema["columns"]} == {"categorical"}  # integer-coded levels


def test_california_regression_ranks_by_rmse(tmp_path, data_dir):
    models = "baseline,ridge,decision_tree,hist_gradient_boosting,lightgbm"
    run = _train(
        tmp_path, data_dir / "tabular/california_housing.tsv.gz", "target", "--models", models
    )
    board = _check_run_folder(run, "regression", "rmse")
    assert board["rmse"].iloc[1:].is_monotonic_increasing  # the picked model first
    assert board.loc[0, "r2"] > 0.8
    baseline = board.set_index("candidate").loc["baseline"]
    assert abs(baseline["r2"]) < 0.01  # the mean predicts nothing
    assert (board.set_index("candidate").drop(index="baseline")["r2"] > 0.5).all()


def test_same_seed_gives_identical_metrics_and_another_seed_differs(tmp_path, data_dir):
    # the families that draw random numbers (forest, boosting, MLP) and their ensemble, on car
    # (multiclass, integer-coded levels); the default ladders run under pytest -m long.
    # LightGBM's 300 rounds instead of the 1,400 early stopping keeps here make each run 15 s
    # -> 9 s (permutation importance predicts with every tree), at 0.988 accuracy.
    spec = {
        "data": {"train": str(data_dir / "tabular/car.tsv.gz"), "target": "target"},
        "models": [
            "random_forest",
            {"name": "lightgbm", "n_estimators": 300},
            {"name": "mlp", "max_epochs": 15},
        ],
        "tracking": {"enabled": False},
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    # the three runs at once: on 2 cores it saves 13 s of the suite, and the same seed must
    # give the same result while other runs share the cores (they change no thread count on
    # a table this small)
    with ThreadPoolExecutor(3) as pool:
        runs = list(pool.map(lambda seed: _train_spec(tmp_path, "--seed", seed), ("4", "4", "5")))
    board = _check_run_folder(runs[0], "multiclass", "log_loss")
    assert board.loc[0, "accuracy"] > 0.95
    assert "ensemble" in set(board["candidate"])
    schema = json.loads(
        (runs[0] / "candidates" / board.loc[0, "candidate"] / "model/bundle.json").read_text()
    )["schema"]
    assert schema["classes"] == [0, 1, 2, 3]
    assert {c["role"] for c in schema["columns"]} == {"categorical"}  # integer-coded levels
    boards = [pd.read_csv(r / "leaderboard.csv").drop(columns=TIMING) for r in runs]
    pd.testing.assert_frame_equal(boards[0], boards[1])
    assert not boards[0].equals(boards[2])


def _train_spec(tmp_path: Path, *flags: str) -> Path:
    done = run_cli("train", "spec.yaml", "--out", "runs", *flags, cwd=tmp_path)
    assert done.code == 0, done.stderr
    return Path(tmp_path, done.stdout.strip().splitlines()[-1].removeprefix("run: "))


def test_cross_validation_reports_fold_spread_and_bags_the_fold_models(tmp_path, small_csv):
    run = _train(tmp_path, small_csv, "y", "--cv", "4", "--models", "logistic_regression")
    board = pd.read_csv(run / "leaderboard.csv")
    assert board.loc[0, "roc_auc_std"] > 0
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["data"]["validation"] == {"strategy": "cv", "folds": 4, "bagged": True}
    info = json.loads((run / "candidates/logistic_regression/model/bundle.json").read_text())
    assert info["format"] == "trainforge.bagged/1" and info["folds"] == 4


def test_validation_file_is_used_instead_of_a_split(tmp_path, small_table):
    small_table.iloc[:200].to_csv(tmp_path / "train.csv", index=False)
    small_table.iloc[200:].to_csv(tmp_path / "valid.csv", index=False)
    run = _train(
        tmp_path,
        tmp_path / "train.csv",
        "y",
        "--validation",
        "valid.csv",
        "--models",
        "logistic_regression",
    )
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["data"]["validation"] == {"strategy": "file", "rows": 100}
    assert manifest["inputs"]["validation"]["fingerprint"].startswith("sha256:")


def test_python_api_with_arrays_and_frames(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    result = trainforge.train(data=X, y=y, models=["logistic_regression"], output=tmp_path)
    assert result.leaderboard.loc[0, "roc_auc"] > 0.95
    assert list(result.best.predict(pd.DataFrame(X[:3], columns=["x0", "x1", "x2"]))) == list(y[:3])
    loaded = trainforge.load(result.path)
    np.testing.assert_array_equal(loaded.predict(X[:20]), result.best.predict(X[:20]))


def test_runs_show_and_models_commands(tmp_path, small_csv):
    run = _train(tmp_path, small_csv, "y", "--models", "baseline,decision_tree", "--name", "demo")
    listing = run_cli("runs", cwd=tmp_path)
    assert listing.code == 0 and run.name in listing.stdout and "completed" in listing.stdout
    shown = run_cli("show", "latest", cwd=tmp_path)
    assert shown.code == 0 and "decision_tree" in shown.stdout and "completed" in shown.stdout
    catalogue = run_cli("models", "--task", "regression", cwd=tmp_path)
    assert "hist_gradient_boosting" in catalogue.stdout and "naive_bayes" not in catalogue.stdout
    assert "min_samples_leaf" in catalogue.stdout


def test_two_runs_started_at_once_never_share_a_folder(tmp_path, small_csv):
    import subprocess
    import sys

    command = [
        sys.executable,
        "-m",
        "trainforge",
        "train",
        str(small_csv),
        "--target",
        "y",
        "--models",
        "baseline",
        "--name",
        "same",
        "--quiet",
    ]
    processes = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    assert all(p.wait(timeout=120) == 0 for p in processes)
    done = manifests(tmp_path / "runs")
    assert len(done) == 3 and len({m["id"] for m in done}) == 3
    assert all(m["status"] == "completed" for m in done)
