"""Live monitoring: per-epoch events on the console (plain lines), as JSON lines, quiet; and the
watchdog's warnings about overfitting, stalls, divergence and models no better than baseline."""

from __future__ import annotations

import json
import re

import pytest

import trainforge
from conftest import make_small_table, run_cli
from trainforge.candidates import CandidateResult
from trainforge.console import ConsoleObserver
from trainforge.events import FanOut
from trainforge.watchdog import Watchdog


def _watch(history: list[dict], total: int = 100) -> list[str]:
    raised: list[str] = []
    dog = Watchdog(raised.append)
    dog.candidate_started(1, 1, "net")
    for logs in history:
        dog.epoch_end("net", logs["epoch"], total, logs)
    assert raised == dog.raised
    return raised


def _epochs(losses, val_losses) -> list[dict]:
    return [
        {"epoch": i + 1, "loss": a, "val_loss": b}
        for i, (a, b) in enumerate(zip(losses, val_losses))
    ]


def test_a_growing_gap_between_training_and_validation_is_called_overfitting():
    losses = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2]
    valid = [0.9, 0.7, 0.6, 0.62, 0.64, 0.7, 0.8]
    raised = _watch(_epochs(losses, valid))
    assert raised == [
        "net: val_loss rose 17% above its best (epoch 3) while loss kept falling "
        "(0.6000 -> 0.3000): overfitting; the best epoch is kept, and more regularisation "
        "(dropout, weight decay) may help"
    ]  # said once, although the gap grows again in the last epoch


def test_a_healthy_curve_raises_nothing():
    losses = [1.0 / (i + 1) for i in range(30)]
    assert _watch(_epochs(losses, [v + 0.05 for v in losses])) == []


def test_many_epochs_without_improvement_are_a_stall():
    valid = [0.9, 0.5] + [0.55] * 10
    raised = _watch(_epochs([0.5] * 12, valid))
    assert raised == ["net: no improvement in val_loss for 10 epochs (best 0.5000 at epoch 2)"]
    # with a budget of 300 epochs, a stall needs 30 epochs
    assert _watch(_epochs([0.5] * 12, valid), total=300) == []


def test_a_rising_training_loss_blames_the_learning_rate():
    raised = _watch(_epochs([1.0, 0.8, 0.9, 1.3, 2.0], [1.0] * 5))
    assert raised == [
        "net: the training loss is rising (0.8000 at best, 1.3000 now): the learning rate is "
        "probably too high; lower it"
    ]


def test_a_near_perfect_fit_whose_loss_drifts_up_is_not_called_diverging():
    # 0.0048 at best, 0.0079 at the end (1.6 times its lowest, rising for three epochs): it
    # gave back a fraction of a percent of what it had learned
    losses = [1.3, 0.2, 0.02, 0.0048, 0.0055, 0.0066, 0.0079]
    assert _watch(_epochs(losses, [0.05] * 7)) == []
    # the same drift when it gives back a tenth of what it learned is a divergence
    raised = _watch(_epochs([0.1, 0.02, 0.01, 0.015, 0.02, 0.025], [0.05] * 6))
    assert raised == [
        "net: the training loss is rising (0.0100 at best, 0.0200 now): the learning rate is "
        "probably too high; lower it"
    ]


def test_each_fold_of_a_bagged_candidate_is_watched_on_its_own():
    # the MLP on car: fold 1 ended at 0.0055 (0.0048 at best) and fold 2 began at 1.247, which
    # read as one history was "the training loss is rising (0.0048 at best, 1.2472 now)"
    first = _epochs([1.2, 0.3, 0.05, 0.0048, 0.0055], [1.1, 0.3, 0.1, 0.08, 0.08])
    second = _epochs([1.247, 0.4, 0.06, 0.005], [1.09, 0.35, 0.1, 0.08])
    assert _watch(first + second) == []
    # a fold that diverges on its own is still said
    third = _epochs([1.2, 0.8, 0.9, 1.3, 2.0], [1.0] * 5)
    assert _watch(first + third)[0].startswith("net: the training loss is rising (0.8000")


def test_a_loss_that_became_nan_is_reported_with_the_learning_rate():
    raised: list[str] = []
    failed = CandidateResult("mlp", "mlp", {"learning_rate": 10.0}, status="failed")
    failed.error = "the training loss became nan in epoch 2; lower the learning rate"
    Watchdog(raised.append).candidate_finished(2, 2, failed)
    assert raised == [
        "mlp: the training loss diverged to a non-finite value; lower the learning rate "
        "(learning_rate 10.0)"
    ]


def test_boosting_rounds_reported_after_fitting_are_checked_too():
    history = [
        {"epoch": i + 1, "logloss": 0.6 - 0.05 * i, "val_logloss": v}
        for i, v in enumerate([0.6, 0.5, 0.45, 0.47, 0.5, 0.55])
    ]
    result = CandidateResult("xgboost", "xgboost", {}, metrics={"roc_auc": 0.9}, history=history)
    raised: list[str] = []
    Watchdog(raised.append).candidate_finished(1, 1, result)
    assert len(raised) == 1 and raised[0].startswith("xgboost: val_logloss rose 22%")


def test_a_model_no_better_than_the_baseline_is_named():
    raised: list[str] = []
    dog = Watchdog(raised.append)

    def finish(name: str, family: str, auc: float) -> None:
        dog.candidate_finished(1, 3, CandidateResult(name, family, {}, metrics={"roc_auc": auc}))

    finish("tree", "decision_tree", 0.48)  # before the baseline: judged once it arrives
    finish("baseline", "baseline", 0.5)
    finish("forest", "random_forest", 0.9)
    finish("svm", "svm", 0.5)
    assert raised == [
        "tree: roc_auc 0.4800 is no better than the baseline's 0.5000; it learned nothing "
        "useful from the features",
        "svm: roc_auc 0.5000 is no better than the baseline's 0.5000; it learned nothing "
        "useful from the features",
    ]
    raised.clear()
    dog = Watchdog(raised.append)
    dog.candidate_finished(1, 2, CandidateResult("baseline", "baseline", {}, metrics={"rmse": 2.0}))
    dog.candidate_finished(2, 2, CandidateResult("ridge", "ridge", {}, metrics={"rmse": 2.5}))
    assert raised[0].startswith("ridge: rmse 2.5000 is no better")  # lower is better


def test_a_real_run_keeps_its_warnings_in_the_manifest_and_report(tmp_path):
    net = {"name": "mlp", "max_epochs": 5, "learning_rate": 50.0, "schedule": None}
    result = trainforge.train(
        data=make_small_table(), target="y", models=["baseline", net], output=tmp_path,
        tracking=False,
    )  # fmt: skip
    warnings = json.loads((result.path / "manifest.json").read_text())["warnings"]
    assert len(warnings) == 1
    assert warnings[0].startswith("mlp: the training loss is rising (0.7013 at best")
    page = (result.path / "report.html").read_text()
    assert "warning: mlp: the training loss is rising" in page


def test_fan_out_skips_observers_that_lack_an_event():
    calls = []

    class Old:  # written before epoch_end existed
        def notice(self, message):
            calls.append(("old", message))

    class New(Old):
        def epoch_end(self, name, epoch, total, metrics):
            calls.append(("new", epoch))

    both = FanOut(Old(), None, New())
    both.notice("hi")
    both.epoch_end("mlp", 2, 3, {})
    assert calls == [("old", "hi"), ("old", "hi"), ("new", 2)]
    with pytest.raises(AttributeError):
        both.not_an_event


def test_quiet_console_shows_warnings_but_no_progress(capsys):
    console = ConsoleObserver(quiet=True, plain=True)
    console.run_started("r1", "runs/r1")
    console.candidate_started(1, 1, "mlp")
    console.epoch_end("mlp", 1, 3, {"epoch": 1, "loss": 0.5})
    console.warning("mlp: something")
    console.candidate_finished(1, 1, CandidateResult("mlp", "mlp", {}, metrics={"roc_auc": 0.9}))
    assert capsys.readouterr().err == "warning: mlp: something\n"


SPEC = """data: {train: small.csv, target: y}
models: [baseline, {name: mlp, max_epochs: 3, patience: 50}]
tracking: {enabled: false}
"""


@pytest.fixture
def spec_dir(tmp_path):
    make_small_table().to_csv(tmp_path / "small.csv", index=False)
    (tmp_path / "spec.yaml").write_text(SPEC)
    return tmp_path


def test_plain_log_lines_show_each_epoch_with_losses_elapsed_and_eta(spec_dir):
    done = run_cli("train", "spec.yaml", "--log-format", "plain", cwd=spec_dir)
    assert done.code == 0, done.stderr
    lines = done.stderr.splitlines()
    started = next(line for line in lines if " training baseline " in line)
    total = int(re.match(r"\[1/(\d+)\]", started)[1])  # 2, or 3 with an ensemble after them
    assert started == f"[1/{total}] training baseline ({total - 1} remaining after it)"
    first = next(line for line in lines if line.startswith(f"[2/{total}] mlp epoch 1/3 "))
    # one short line: training and validation loss, the candidate's time, its ETA
    assert re.fullmatch(
        r"\[2/\d\] mlp epoch 1/3 loss 0\.70\d* val 0\.6\d* [\d.ms]+ eta ~[\d.ms]+", first
    )
    last = next(line for line in lines if line.startswith(f"[2/{total}] mlp epoch 3/3 "))
    assert re.fullmatch(r"\[2/\d\] mlp epoch 3/3 loss [\d.]+ val [\d.]+ [\d.ms]+", last), last
    report, run = done.stdout.strip().splitlines()[-2:]
    assert run.startswith("run: runs/") and report == f"report: {run[5:]}/report.html"


def test_json_log_format_writes_one_event_per_line(spec_dir):
    done = run_cli("train", "spec.yaml", "--log-format", "json", cwd=spec_dir)
    assert done.code == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert events[-1]["status"] == "completed"
    epochs = [e for e in events if e["event"] == "epoch_end"]
    assert [(e["candidate"], e["epoch"], e["total"]) for e in epochs] == [
        ("mlp", i, 3) for i in (1, 2, 3)
    ]
    run = events[0]["path"]
    history = (spec_dir / run / "candidates" / "mlp" / "history.csv").read_text().splitlines()
    header = history[0].split(",")
    for event, row in zip(epochs, history[1:]):
        saved = dict(zip(header, map(float, row.split(","))))
        assert event["metrics"]["val_loss"] == pytest.approx(saved["val_loss"])
    finished = [e for e in events if e["event"] == "candidate_finished"]
    assert [e["candidate"] for e in finished] == ["baseline", "mlp"]
    assert all(e["status"] == "ok" and "roc_auc" in e["metrics"] for e in finished)


def test_messages_keep_their_square_brackets(capsys):
    console = ConsoleObserver(plain=True)
    console.notice('mlp: left out because torch is not installed (pip install "trainforge[torch]")')
    console.warning("models[2]: check [this]")
    assert capsys.readouterr().err == (
        'note: mlp: left out because torch is not installed (pip install "trainforge[torch]")\n'
        "warning: models[2]: check [this]\n"
    )
