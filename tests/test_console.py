"""The console at 100 columns: compact tables that keep the primary score whole, piped output
that never wraps a row, why a run failed, short progress lines with an honest ETA, budgeted
counts, closing steps, and boosting rounds; then the real CLI in a 100-column pseudo-terminal."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import trainforge
from trainforge import console as console_module
from trainforge.candidates import CandidateResult
from trainforge.cli import _report, main
from trainforge.console import ConsoleObserver, print_table
from trainforge.events import SilentObserver
from trainforge.models import boosting

# -- item 1: tables that fit ------------------------------------------------------------------


def _board(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """A binary leaderboard with every column leaderboard.csv has."""
    frame = pd.DataFrame(
        [
            {
                "rank": i + 1,
                "candidate": name,
                "family": family,
                "roc_auc": auc,
                "log_loss": 0.2345678,
                "accuracy": 0.9,
                "balanced_accuracy": 0.8912345,
                "f1": 0.88,
                "fit_seconds": 12.345,
                "predict_ms_per_1k": 3.21,
                "size_kb": 194.2 if i % 2 == 0 else 1228.8,
                "status": "ok",
            }
            for i, (name, family, auc) in enumerate(rows)
        ]
    )
    return frame


def _run_folder(root: Path, name: str, manifest: dict, board: pd.DataFrame | None = None):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"id": name, **manifest}))
    if board is not None:
        board.to_csv(folder / "leaderboard.csv", index=False)
    return folder


BOARD = [
    ("hist_gradient_boosting_2", "hist_gradient_boosting", 0.991234567),
    ("lightgbm#t3", "lightgbm", 0.98765),
    ("logistic_regression", "logistic_regression", 0.9512),
]


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def _cells(line: str) -> list[str]:
    """A table row's cells (rich separates them with a light or heavy bar)."""
    return re.split(r"\s*[│┃]\s*", line.strip())


def test_the_leaderboard_fits_100_columns_with_the_primary_score_whole(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "100")
    manifest = {"status": "completed", "task": "binary", "primary_metric": "roc_auc"}
    folder = _run_folder(tmp_path, "r1", manifest)
    result = SimpleNamespace(path=folder, leaderboard=_board(BOARD), best_name="lightgbm#t3")
    _report(result)
    out = capsys.readouterr().out
    assert _widest(out) <= 100, out
    header = next(line for line in out.splitlines() if "candidate" in line)
    # the family is implied by every name; the other columns are in --wide
    assert _cells(header) == ["#", "candidate", "roc_auc", "log_loss", "accuracy", "fit", "size"]
    row = next(line for line in out.splitlines() if "hist_gradient_boosting_2" in line)
    assert "0.9912" in row and "0.2346" in row and "12.3s" in row and "194 kB" in row
    assert "1.2 MB" in out
    assert out.splitlines()[-1] == f"run: {folder}"


def test_the_family_is_shown_only_where_the_name_does_not_imply_it(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    board = _board([*BOARD, ("stack_lightgbm", "lightgbm", 0.99)])
    console_module.print_leaderboard(board, "roc_auc", "binary")
    lines = capsys.readouterr().out.splitlines()
    assert _cells(next(line for line in lines if "candidate" in line))[2] == "family"
    assert _cells(next(line for line in lines if "stack_lightgbm" in line))[2] == "lightgbm"
    assert _cells(next(line for line in lines if "lightgbm#t3" in line))[2] == ""


def test_wide_shows_every_column_as_before(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    manifest = {"status": "completed", "task": "binary", "primary_metric": "roc_auc"}
    _run_folder(tmp_path, "r1", manifest, _board(BOARD))
    assert main(["show", "r1", "--out", str(tmp_path)]) == 0
    compact = capsys.readouterr().out
    assert "predict_ms_per_1k" not in compact and "balanced_accuracy" not in compact
    assert main(["show", "r1", "--out", str(tmp_path), "--wide"]) == 0
    wide = capsys.readouterr().out
    header = next(line for line in wide.splitlines() if "candidate" in line)
    for column in _board(BOARD).columns:
        assert column in header
    assert len([line for line in wide.splitlines() if "│" in line or "┃" in line]) == 4


def test_piped_tables_keep_each_row_on_one_line(capsys, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    frame = pd.DataFrame({f"column_{i}": [f"value-{i}-{'x' * 20}"] * 3 for i in range(8)})
    print_table(frame)  # about 260 characters a row: wider than any default
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + 3  # header, rule, three rows: nothing wrapped
    assert all(f"value-7-{'x' * 20}" in line for line in lines[2:])
    narrow = pd.DataFrame({"a": [1.5], "b": ["x"]})
    assert console_module.output_width() == 100
    monkeypatch.setenv("COLUMNS", "60")
    assert console_module.output_width() == 60
    print_table(narrow)
    assert _widest(capsys.readouterr().out) <= 60


def _runs_folder(tmp_path: Path) -> Path:
    out = tmp_path / "runs"
    _run_folder(
        out,
        "20261126-140449-run-8de651",
        {
            "status": "completed",
            "task": "binary",
            "primary_metric": "roc_auc",
            "created": "2026-11-26T14:04:49+00:00",
            "best": {"candidate": "hist_gradient_boosting", "roc_auc": 0.991234567},
        },
    )
    failed = _run_folder(
        out,
        "20261126-141906-run-a31b3c",
        {
            "status": "failed",
            "task": "binary",
            "primary_metric": "roc_auc",
            "created": "2026-11-26T14:19:06+00:00",
            "error": "every candidate failed; see "
            + str(out / "20261126-141906-run-a31b3c" / "candidates")
            + "/*/error.txt",
        },
    )
    _run_folder(
        out,
        "20261126-150000-run-f00d42",
        {
            "status": "failed",
            "primary_metric": "roc_auc",
            "created": "2026-11-26T15:00:00+00:00",
            "error": "MemoryError: Unable to allocate 12.3 GiB for an array with shape "
            "(100000, 16384) and data type float64",
        },
    )
    mlp = failed / "candidates" / "mlp"
    mlp.mkdir(parents=True)
    reason = "ValueError: the training loss became nan in epoch 2; lower the learning rate"
    (mlp / "metrics.json").write_text(json.dumps({"status": "failed", "error": reason}))
    (mlp / "error.txt").write_text("Traceback (most recent call last): ...")
    return out


def test_runs_is_compact_and_says_briefly_why_a_run_failed(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    out = _runs_folder(tmp_path)
    assert main(["runs", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert _widest(text) <= 100, text
    lines = text.splitlines()
    assert len(lines) == 5  # header, rule, one line per run
    # every run is scored on ROC AUC: the metric is the score's header
    assert _cells(lines[0]) == ["run", "status", "best", "roc_auc", "reason"]
    failed = _cells(next(line for line in lines if "a31b3c" in line))
    assert failed[1] == "failed" and failed[-1] == "every candidate failed"  # see: in show
    cut = _cells(next(line for line in lines if "f00d42" in line))[-1]
    assert cut.startswith("MemoryError: Unable") and cut.endswith("...")  # cut to fit
    done = next(line for line in lines if "8de651" in line)
    assert "0.9912" in done and "hist_gradient_boosting" in done
    assert main(["runs", "--out", str(out), "--wide"]) == 0
    wide = capsys.readouterr().out
    assert "created" in wide and "2026-11-26T14:19:06+00:00" in wide and "error.txt" in wide
    assert "and data type float64" in wide


def test_show_says_in_full_why_a_run_failed(tmp_path, capsys):
    out = _runs_folder(tmp_path)
    assert main(["show", "20261126-141906", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].startswith("run 20261126-141906-run-a31b3c: failed")
    assert (
        lines[1]
        == f"  error: every candidate failed; see {out}/20261126-141906-run-a31b3c/candidates/*/error.txt"
    )
    trace = out / "20261126-141906-run-a31b3c" / "candidates" / "mlp" / "error.txt"
    assert lines[2] == (
        "  failed: mlp: ValueError: the training loss became nan in epoch 2; lower the "
        f"learning rate (traceback: {trace})"
    )


# -- item 3: progress -------------------------------------------------------------------------


class Clock:
    """time.monotonic for the console, moved by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(console_module.time, "monotonic", fake)
    return fake


def _epochs(observer: ConsoleObserver, clock: Clock, val_losses, total=200, **extra) -> None:
    for epoch, val in enumerate(val_losses, start=1):
        clock.now += 1.0
        logs = {"epoch": epoch, "loss": 0.4123, "val_loss": val, "val_accuracy": 0.81234}
        logs.update(val_roc_auc=0.9123, val_log_loss=0.4456, lr=0.001, **extra)
        observer.epoch_end("mlp", epoch, total, logs)


def test_an_epoch_line_is_short(capsys, clock):
    observer = ConsoleObserver(plain=True)
    observer.PLAIN_EVERY = 0.0
    observer.candidate_started(3, 9, "mlp")
    _epochs(observer, clock, [0.5 - 0.01 * i for i in range(12)])
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == "[3/9] mlp epoch 12/200 loss 0.4123 val 0.39 12.0s eta ~10.0s"


def test_the_eta_expects_early_stopping_not_the_last_epoch(capsys, clock):
    observer = ConsoleObserver(plain=True)
    observer.PLAIN_EVERY = 0.0
    observer.candidate_started(1, 1, "mlp")
    # best at epoch 10; with the default patience of 10 it stops at epoch 20: 8 epochs of 1 s
    _epochs(observer, clock, [1.0 - 0.05 * i for i in range(10)] + [0.6, 0.7])
    assert capsys.readouterr().err.splitlines()[-1].endswith("12.0s eta ~8.0s")
    observer.candidate_started(1, 1, "mlp")
    _epochs(observer, clock, [0.5] * 12, patience=30)  # a patience in the logs wins
    assert capsys.readouterr().err.splitlines()[-1].endswith("eta ~19.0s")
    observer.candidate_started(1, 1, "mlp")
    _epochs(observer, clock, [0.5 - 0.01 * i for i in range(12)], total=15)  # at most the last
    assert capsys.readouterr().err.splitlines()[-1].endswith("eta ~3.0s")


def test_a_budgeted_run_does_not_show_a_made_up_total(capsys):
    observer = ConsoleObserver(plain=True)
    result = CandidateResult("x", "x", {}, metrics={"roc_auc": 0.9})
    for index in (1, 2, 3):  # what a time budget reports: index of index
        observer.candidate_started(index, index, f"m{index}")
        result.name = f"m{index}"
        observer.candidate_finished(index, index, result)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "[1] training m1" and err[2] == "[2] training m2"
    assert err[5].startswith("[3] m3: roc_auc=0.9000")
    for index in (1, 2, 3):  # a planned ladder keeps its total, the last one too
        observer.candidate_started(index, 3, f"m{index}")
    assert capsys.readouterr().err.splitlines()[-1] == "[3/3] training m3 (0 remaining after it)"


def test_a_pruned_trial_says_so_instead_of_showing_a_bare_score(capsys):
    # a search trial stopped after a few rounds scored rmse=3,482 on diamonds against 527 for
    # the best candidate, and the line looked like any finished candidate's
    observer = ConsoleObserver(plain=True)
    result = CandidateResult("xgboost#t4", "xgboost", {}, metrics={"rmse": 3482.0})
    result.trial = {"study": "xgboost", "number": 4, "params": {}, "value": 3482.0}
    observer.candidate_finished(5, 5, _with_state(result, "COMPLETE"))
    observer.candidate_finished(6, 6, _with_state(result, "PRUNED"))
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("[5] xgboost#t4: rmse=3,482  (fit")
    assert err[1].startswith(
        "[6] xgboost#t4: pruned (rmse=3,482 when stopped; not an ensemble member)  (fit"
    )


def _with_state(result, state):
    result.trial = {**result.trial, "state": state}
    return result


def test_closing_steps_show_a_status_line(capsys, clock):
    observer = ConsoleObserver(plain=True)
    observer.run_started("r1", "runs/r1")
    clock.now += 42.0
    observer.stage("permutation importance of lightgbm")
    observer.stage("writing the report")
    observer.run_finished("completed", "runs/r1")
    assert capsys.readouterr().err.splitlines()[1:] == [
        "permutation importance of lightgbm (run 42.0s)",
        "writing the report (run 42.0s)",
    ]
    quiet = ConsoleObserver(plain=True, quiet=True)
    quiet.stage("writing the report")
    assert capsys.readouterr().err == ""


def test_a_live_line_is_cut_to_the_terminal(capsys):
    observer = ConsoleObserver(plain=True)
    observer.console.width = 100
    text = "[12/30] transformer_2 epoch 123/200 " + "loss 0.4123 " * 20
    assert len(observer._fitted(text)) == 97 and observer._fitted(text).endswith("...")
    assert observer._fitted("[1/2] mlp [x]") == r"[1/2] mlp \[x]"  # rich markup escaped


# -- item 4: boosting rounds ------------------------------------------------------------------


@pytest.mark.parametrize("library", ["XGBoost", "LightGBM", "CatBoost"])
def test_boosting_reports_rounds_without_changing_the_model(library, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + rng.normal(0, 0.5, 300) > 0).astype(int)
    make = getattr(boosting, f"{library}Classifier")
    seen = []
    plain = make(n_estimators=300, random_state=1, n_jobs=1).fit(X, y)
    watched = make(n_estimators=300, random_state=1, n_jobs=1).fit(
        X, y, on_round=lambda r, logs: seen.append(logs)
    )
    np.testing.assert_array_equal(plain.predict_proba(X), watched.predict_proba(X))
    assert plain.history_ == watched.history_
    assert [logs["round"] for logs in seen] == list(range(1, len(seen) + 1))
    assert len(seen) >= watched.n_rounds_ + 49  # every round up to early stopping
    assert seen[0]["max_rounds"] == 300 and seen[0]["patience"] == 50
    np.testing.assert_allclose(
        [logs["val_loss"] for logs in seen[: watched.n_rounds_]],
        [h["val_loss"] for h in watched.history_],
    )
    watched.save_files(tmp_path)  # the display's hook is not part of the saved model
    assert "on_round" not in json.loads((tmp_path / "estimator.json").read_text())["params"]
    loaded = type(watched).load_files(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X), plain.predict_proba(X))


def test_rounds_show_like_epochs_with_the_estimators_patience(capsys, clock):
    observer = ConsoleObserver(plain=True)
    observer.PLAIN_EVERY = 0.0
    observer.candidate_started(2, 3, "lightgbm")
    for round_ in range(1, 121):
        clock.now += 0.01
        logs = {"round": round_, "val_loss": 0.3 if round_ >= 100 else 1 - round_ / 200}
        logs.update(max_rounds=2000, patience=50)
        observer.round_end("lightgbm", round_, 2000, logs)
    last = capsys.readouterr().err.splitlines()[-1]
    # best round 100 + patience 50 = round 150: 30 more rounds of 0.01 s
    assert last == "[2/3] lightgbm round 120/2000 val 0.3 1.2s eta ~0.3s"


def test_bagged_folds_rounds_name_their_fold_and_keep_their_own_pace(capsys, clock):
    # two folds fitting at once interleave their rounds: one pace would restart at every
    # switch, and a plain log showed "round 1/3000" once per fold and nothing after it
    observer = ConsoleObserver(plain=True)
    observer.candidate_started(4, 4, "lightgbm")
    for round_ in range(1, 101):
        for fold, step in ((1, 0.01), (2, 0.03)):
            clock.now += step
            logs = {"round": round_, "val_loss": 1 - round_ / 200, "fold": fold, "folds": 5}
            logs.update(max_rounds=3000, patience=50)
            observer.round_end("lightgbm", round_, 3000, logs)
    lines = capsys.readouterr().err.splitlines()
    # 4 s of rounds: the first line only (the next comes PLAIN_EVERY = 5 s later)
    assert lines == ["[4] training lightgbm", "[4] lightgbm fold 1/5 round 1/3000 val 0.995 0.0s"]
    observer.PLAIN_EVERY = 0.0
    clock.now += 0.03
    logs = {"round": 101, "val_loss": 0.1, "fold": 2, "folds": 5, "max_rounds": 3000}
    observer.round_end("lightgbm", 101, 3000, {**logs, "patience": 50})
    # fold 2's own pace (0.04 s a round since its first at 1000.01 s), to its round 151
    assert capsys.readouterr().err.splitlines() == [
        "[4] lightgbm fold 2/5 round 101/3000 val 0.1 4.0s eta ~2.0s"
    ]


def test_a_bagged_fit_reports_each_folds_rounds_in_order(small_table, tmp_path):
    seen = []

    class Rounds(SilentObserver):
        def round_end(self, name, round_, total, logs):
            seen.append((logs["fold"], logs["folds"], round_))

    trainforge.train(
        data=small_table,
        target="y",
        models=[{"name": "lightgbm", "n_estimators": 40}],
        folds=4,
        output=tmp_path,
        tracking=False,
        observer=Rounds(),
    )
    assert {(fold, folds) for fold, folds, _ in seen} == {(f, 4) for f in (1, 2, 3, 4)}
    for fold in (1, 2, 3, 4):  # interleaved or not, each fold's rounds count up from 1
        rounds = [r for f, _, r in seen if f == fold]
        assert rounds == list(range(1, len(rounds) + 1)) and len(rounds) > 10


# -- item 5: the real CLI in a 100-column terminal --------------------------------------------

ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][A-Za-z0-9]|[=>78])")


def _in_terminal(args: list[str], cwd: Path, columns: int = 100, timeout: float = 300):
    """Run ``python -m trainforge ARGS`` with a pseudo-terminal as its stdin, stdout and stderr;
    returns its exit code and what it wrote, ANSI escapes removed, split into the lines the
    terminal shows (a carriage return redraws a line)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "40", "TERM": "xterm-256color"}
    process = subprocess.Popen(
        [sys.executable, "-m", "trainforge", *args],
        cwd=cwd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 1.0)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer is gone
                    break
                if not data:
                    break
                chunks.append(data)
        else:
            pytest.fail(f"trainforge {' '.join(args)} took over {timeout} s")
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        os.close(master)
    text = ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))
    return process.returncode, [part for line in text.split("\n") for part in line.split("\r")]


def test_train_and_runs_fit_a_100_column_terminal(tmp_path, small_csv):
    args = ["train", small_csv.name, "--target", "y", "--no-tracking"]
    code, lines = _in_terminal([*args, "--models", "logistic_regression,lightgbm"], tmp_path)
    shown = "\n".join(lines)
    assert code == 0, shown
    assert max(len(line) for line in lines) <= 100, shown
    (board,) = tmp_path.glob("runs/*/leaderboard.csv")
    scores = pd.read_csv(board)
    header = [_cells(line) for line in lines if "┃" in line]
    assert header and "candidate" in header[0] and "roc_auc" in header[0], shown
    for name, auc in zip(scores["candidate"], scores["roc_auc"]):
        row = [_cells(line) for line in lines if "│" in line and f" {name} " in line]
        assert row and f"{auc:.4f}" in row[0], shown  # the primary score, whole
    code, lines = _in_terminal(["runs"], tmp_path)
    shown = "\n".join(lines)
    assert code == 0 and max(len(line) for line in lines) <= 100, shown
    row = next(line for line in lines if board.parent.name in line)
    assert "completed" in row and f"{scores['roc_auc'][0]:.4f}" in row
