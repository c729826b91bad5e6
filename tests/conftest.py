"""Shared test helpers: the real datasets beside the checkout, and running the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path, timeout: float = 600) -> CliResult:
    """Run ``python -m trainforge ARGS`` in a fresh process, as a user would."""
    done = subprocess.run(
        [sys.executable, "-m", "trainforge", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def manifests(runs_dir: Path) -> list[dict]:
    """Every run manifest under a runs folder."""
    return [json.loads(p.read_text()) for p in sorted(runs_dir.glob("*/manifest.json"))]


@pytest.fixture
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"the shared datasets are missing: expected them at {DATA}")
    return DATA


@pytest.fixture
def small_table() -> pd.DataFrame:
    return make_small_table()


def make_small_table(n: int = 300) -> pd.DataFrame:
    """A small mixed-type binary table that models can learn (the label depends on x1 and c)."""
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=n)
    c = rng.choice(["red", "green", "blue"], size=n)
    logit = 2 * x1 + np.where(c == "red", 1.5, -0.5)
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": rng.normal(size=n),
            "c": c,
            "flag": rng.choice([True, False], size=n),
            "y": np.where(logit + rng.normal(scale=0.5, size=n) > 0, "yes", "no"),
        }
    )


@pytest.fixture
def small_csv(tmp_path: Path, small_table: pd.DataFrame) -> Path:
    path = tmp_path / "small.csv"
    small_table.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session", autouse=True)
def shared_mlflow_store(tmp_path_factory) -> str:
    """One MLflow store for the whole session (runs log to MLflow by default).

    Creating a SQLite store runs MLflow's database migrations (seconds each time), so every run
    in the suite logs to this one instead of a new store per runs folder. Tests of the embedded
    default unset MLFLOW_TRACKING_URI themselves. Subprocesses inherit the variable.
    """
    import os

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    uri = "sqlite:///" + str(tmp_path_factory.mktemp("mlflow") / "mlflow.db")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    yield uri
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous
