"""W&B (offline) and TensorBoard trackers beside MLflow: what they write is read back with their
own formats (W&B's records through wandb.proto, TensorBoard's through EventAccumulator), and a
tracker that fails stops alone, never the run."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import trainforge
from conftest import DATA, run_cli
from trainforge.errors import SpecError, TrackingError

pytest.importorskip("wandb", reason="the wandb extra is not installed")
pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
CREDIT = DATA / "tabular" / "credit_g.tsv.gz"
MODELS = "logistic_regression,lightgbm,mlp"


def wandb_records(run: Path) -> list:
    """Every record of the run's offline W&B file (LevelDB-style log of wandb.proto Records:
    a 7-byte file header, 32 KiB blocks, records split into FULL/FIRST/MIDDLE/LAST chunks)."""
    from wandb.proto import wandb_internal_pb2

    (path,) = run.glob("wandb/offline-run-*/run-*.wandb")
    data, found, pending, position, block = path.read_bytes(), [], b"", 7, 32768
    assert data[:4] == b":W&B"
    while position + 7 <= len(data):
        left = block - position % block
        if left < 7:
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if kind == 0:
            position += left
            continue
        chunk = data[position + 7 : position + 7 + length]
        position += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            found.append(record)
    return found


def history_rows(records) -> list[dict]:
    return [
        {_key(item): json.loads(item.value_json) for item in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def tensorboard_scalars(folder: Path) -> dict[str, list]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return {tag: events.Scalars(tag) for tag in events.Tags()["scalars"]}


def _isolated(tmp_path: Path) -> dict:
    """No network, no W&B key, and a home folder of the test's own (to see nothing lands
    there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env["HOME"] = str(tmp_path / "home")
    (tmp_path / "home").mkdir()
    return env


def test_wandb_offline_and_tensorboard_write_one_row_per_epoch_without_a_network(tmp_path):
    command = [sys.executable, "-m", "trainforge", "train", str(CREDIT), "--target", "target"]
    command += ["--models", MODELS, "--track", "wandb,tensorboard", "--seed", "0"]
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"]).returncode == 0:
        command = ["unshare", "-rn", *command]  # a network namespace with no interface up
    done = subprocess.run(
        command, cwd=tmp_path, env=_isolated(tmp_path), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr
    run = Path(tmp_path, done.stdout.strip().splitlines()[-1].removeprefix("run: "))
    assert not (tmp_path / "runs" / "mlflow.db").exists()  # --track left MLflow out
    history = {
        name: pd.read_csv(run / "candidates" / name / "history.csv") for name in ("mlp", "lightgbm")
    }
    # TensorBoard: each epoch (MLP) and round (LightGBM) once, at its step
    for name, rows in history.items():
        scalars = tensorboard_scalars(run / "tensorboard" / name)
        assert [e.step for e in scalars["val_loss"]] == list(range(1, len(rows) + 1)), name
        assert [e.value for e in scalars["val_loss"]] == pytest.approx(rows["val_loss"].tolist())
    final = tensorboard_scalars(run / "tensorboard" / "logistic_regression")
    board = pd.read_csv(run / "leaderboard.csv").set_index("candidate")
    assert final["final/roc_auc"][0].value == pytest.approx(
        board.loc["logistic_regression", "roc_auc"]
    )
    # W&B: one history row per epoch per candidate, the final scores in the summary
    records = wandb_records(run)
    rows = history_rows(records)
    for name, expected in history.items():
        mine = [r for r in rows if f"{name}/epoch" in r]
        assert [r[f"{name}/epoch"] for r in mine] == list(range(1, len(expected) + 1)), name
        assert [r[f"{name}/val_loss"] for r in mine] == pytest.approx(expected["val_loss"].tolist())
    summary = {}
    for record in records:
        if record.WhichOneof("record_type") == "summary":
            summary.update({_key(i): json.loads(i.value_json) for i in record.summary.update})
    assert summary["mlp/final/roc_auc"] == pytest.approx(board.loc["mlp", "roc_auc"])
    assert summary["best"] == board.index[0]
    assert any(r.WhichOneof("record_type") == "artifact" for r in records)  # the report
    assert json.loads((run / "wandb.json").read_text())["mode"] == "offline"
    assert not list((tmp_path / "home").rglob("*wandb*"))  # W&B's folders are in the run's


def test_a_failing_tracker_stops_alone_and_the_run_completes(tmp_path, capfd, monkeypatch):
    for name in [k for k in os.environ if k.startswith("WANDB_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    result = trainforge.train(
        data=str(CREDIT), target="target", models=["logistic_regression"], ensemble=False,
        output=tmp_path / "runs", quiet=True,
        tracking={"mlflow": False, "wandb": {}, "tensorboard": {"dir": str(blocked / "tb")}},
    )  # fmt: skip
    warnings = [line for line in capfd.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "TensorBoard tracking stopped" in warnings[0], warnings
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    summary = {}
    for record in wandb_records(result.path):  # the other tracker went on to the end
        if record.WhichOneof("record_type") == "summary":
            summary.update({_key(i): json.loads(i.value_json) for i in record.summary.update})
    assert summary["best"] == "logistic_regression" and summary["status"] == "completed"


def test_track_names_trackers_and_refuses_unknown_or_missing_ones(tmp_path, monkeypatch):
    from trainforge.spec import build_spec

    spec = build_spec(target="y", train="x.csv", track="tensorboard")
    assert (spec.tracking.mlflow, spec.tracking.wandb) == (False, None)
    assert spec.tracking.tensorboard is not None
    spec = build_spec(target="y", train="x.csv", tracking={"wandb": True, "mlflow": True})
    assert spec.tracking.wandb.project == "trainforge" and spec.tracking.mlflow
    with pytest.raises(SpecError, match="unknown tracker 'comet'; choose from mlflow, wandb"):
        build_spec(target="y", train="x.csv", track="mlflow,comet")
    with monkeypatch.context() as patched:  # as if the extra were not installed
        patched.setitem(sys.modules, "tensorboard", None)
        with pytest.raises(TrackingError, match=r'pip install "trainforge\[tensorboard\]"'):
            trainforge.train(
                data=str(CREDIT), target="target", output=tmp_path, track="tensorboard"
            )
    assert not (tmp_path / "runs").exists() and not list(tmp_path.glob("2026*"))
    done = run_cli("train", CREDIT, "--target", "target", "--track", "comet", cwd=tmp_path)
    assert done.code == 2 and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
