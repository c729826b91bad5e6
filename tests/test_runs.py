"""Run folders tell the truth about how a run ended."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

import trainforge
from conftest import run_cli
from trainforge.errors import RunError


def _train_and_kill(cwd, args: list[str], when: str) -> None:
    """Start ``trainforge train ARGS`` and SIGKILL it as soon as a file matches ``when``."""
    command = [sys.executable, "-m", "trainforge", "train", *args, "--quiet"]
    process = subprocess.Popen(command, cwd=cwd, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list(cwd.glob(when)):
        assert time.time() < deadline and process.poll() is None, f"{when} never appeared"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_a_killed_run_reads_as_interrupted_and_has_no_model_to_load(tmp_path, data_dir):
    args = [str(data_dir / "tabular/adult.csv"), "--target", "income >50K"]
    _train_and_kill(tmp_path, args, when="runs/*/candidates/*/metrics.json")
    run = next((tmp_path / "runs").iterdir())
    assert json.loads((run / "manifest.json").read_text())["status"] == "running"
    listing = run_cli("runs", cwd=tmp_path)
    assert "interrupted" in listing.stdout
    assert not (run / "leaderboard.csv").exists()
    with pytest.raises(
        RunError, match=r"did not complete \(status: interrupted\); it has no best model"
    ):
        trainforge.load(run)


def test_bad_data_fails_in_one_line_before_a_run_folder_exists(tmp_path):
    (tmp_path / "d.csv").write_text("a,y\n1,0\n2,0\n3,0\n")
    done = run_cli("train", "d.csv", "--target", "y", cwd=tmp_path)
    assert done.code == 2 and "single value" in done.stderr
    # the data is checked before a run folder exists: nothing is left that looks like a run
    assert not list(tmp_path.glob("runs/*/manifest.json"))


def test_a_killed_run_resumes_to_the_same_leaderboard_as_an_uninterrupted_one(tmp_path, small_csv):
    flags = ["--target", "y", "--models", "baseline,logistic_regression,mlp", "--seed", "1"]
    whole = run_cli("train", small_csv, *flags, "--out", "whole", cwd=tmp_path)
    assert whole.code == 0, whole.stderr
    checkpoint = "runs/*/candidates/mlp/checkpoints/fold-0/step-*/manifest.json"
    _train_and_kill(tmp_path, [str(small_csv), *flags], when=checkpoint)
    run = next((tmp_path / "runs").iterdir())
    assert not (run / "candidates" / "mlp" / "metrics.json").exists()

    done = run_cli("resume", run.name, cwd=tmp_path)
    assert done.code == 0, done.stderr
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "completed" and len(manifest["resumed"]) == 1
    timing = ["fit_seconds", "predict_ms_per_1k", "size_kb"]
    resumed = pd.read_csv(run / "leaderboard.csv").drop(columns=timing)
    reference = pd.read_csv(next((tmp_path / "whole").iterdir()) / "leaderboard.csv")
    pd.testing.assert_frame_equal(resumed, reference.drop(columns=timing))
    again = run_cli("resume", run.name, cwd=tmp_path)
    assert again.code == 2 and "already completed" in again.stderr
