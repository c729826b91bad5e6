"""Time-budgeted search: the budget setting, pruning and deadline callbacks, reproducible trials,
an honoured time limit, and a search that continues after a kill without repeating trials."""

from __future__ import annotations

import json
import math
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

import trainforge
from conftest import ROOT, run_cli
from trainforge.errors import SpecError
from trainforge.search.budget import Budget, PartDeadlines
from trainforge.spec import build_spec, parse_duration

TRIAL_COLUMNS = ["study", "number", "candidate", "state", "value", "params"]


# -- the budget setting ------------------------------------------------------------------------


def test_durations_parse_in_seconds_minutes_and_hours():
    assert parse_duration("90s") == 90
    assert parse_duration("10m") == 600
    assert parse_duration("1.5h") == 5400
    assert parse_duration(45) == 45
    assert parse_duration(" 2M ") == 120


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ({"time": "ten"}, "budget.time: expected a duration such as 90s, 10m or 1h, got 'ten'"),
        ({"time": "0s"}, "budget.time: expected a positive duration, got '0s'"),
        ({}, "budget: give time (e.g. 10m), trials (e.g. 20), or both, got {}"),
        ({"trials": -1}, "budget.trials: input should be greater than or equal to 0, got -1"),
        (
            {"time": "1m", "tries": 3},
            "budget.tries: unknown setting; remove it or check its spelling",
        ),
    ],
)
def test_bad_budgets_are_refused_with_one_line(budget, message):
    with pytest.raises(SpecError) as caught:
        build_spec({"data": {"train": "x.csv", "target": "y"}, "budget": budget})
    assert str(caught.value) == message


def test_cli_flags_and_python_keywords_set_the_budget():
    spec = build_spec(train="x.csv", target="y", time_limit="10m", trials=7)
    assert spec.budget.time == 600 and spec.budget.trials == 7
    assert "budget:\n  time: 600.0\n  trials: 7" in spec.to_yaml()
    assert build_spec(train="x.csv", target="y").budget is None


# -- callbacks ---------------------------------------------------------------------------------


def test_pruning_callback_stops_a_trial_worse_than_the_median():
    import optuna

    from trainforge.training.callbacks.pruning import Pruning

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
    )
    stopped_at = []
    for losses in ([1.0, 0.8, 0.6, 0.5], [1.0, 0.7, 0.6, 0.5], [0.9, 0.8, 0.6, 0.4], [2, 2, 2, 2]):
        trial = study.ask()

        def report(step, value, trial=trial):
            trial.report(value, step)
            return trial.should_prune()

        callback, loop = Pruning(report), SimpleNamespace(stop=False)
        for epoch, loss in enumerate(losses, start=1):
            callback.on_epoch_end(loop, {"epoch": epoch, "val_loss": loss})
            if loop.stop:
                break
        stopped_at.append(epoch if loop.stop else None)
        study.tell(trial, losses[-1])
    assert stopped_at == [None, None, None, 2]  # epoch 1 is inside the warm-up
    assert callback.pruned and callback.state_dict() == ({"pruned": True}, {})


def test_deadline_stops_an_mlp_mid_training_with_a_usable_model():
    from trainforge.models.neural import MLPClassifier
    from trainforge.training.callbacks.deadline import Deadline

    rng = np.random.RandomState(0)
    X = rng.normal(size=(3000, 10)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    MLPClassifier(max_epochs=1).fit(X[:100], y[:100])  # torch's one-time set-up, not timed
    deadline = Deadline(time.monotonic() + 1.5)
    model = MLPClassifier(max_epochs=10_000, patience=10_000, random_state=0)
    model.fit(X, y, callbacks=[deadline])
    overran = time.monotonic() - deadline.at
    assert deadline.reached and 0 <= overran < 3  # a batch and a validation pass, on 2 busy cores
    assert 1 <= model.n_epochs_ < 10_000 and len(model.history_) == model.n_epochs_
    proba = model.predict_proba(X)
    assert proba.shape == (3000, 2) and np.isfinite(proba).all()
    assert (model.predict(X) == y).mean() > 0.6  # it learned something before it stopped
    assert "callbacks" not in model.get_params()  # an argument of fit, not part of the model


def test_round_hook_stops_at_the_deadline_or_when_the_trial_ended():
    from trainforge.search.hooks import RoundHook

    assert RoundHook(time.monotonic() - 1)(1, 0.5) is True
    assert RoundHook(time.monotonic() + 600)(10, 0.5) is False
    ended = []
    hook = RoundHook(time.monotonic() + 600, lambda: bool(ended))
    assert hook(1, 0.5) is False
    ended.append(1)
    assert hook(2, 0.5) is True


def test_boosting_fits_are_not_pruned_round_by_round():
    """At a given round a small learning rate trails a large one whatever the model, so the
    boosting hooks never ask the study: a report that always says "prune" stops nothing."""
    from trainforge.models.boosting import LightGBMClassifier
    from trainforge.search.hooks import boosting_hooks

    asked = []

    def report(step, value):
        asked.append(step)
        return True

    rng = np.random.RandomState(0)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] + rng.normal(scale=0.5, size=600) > 0).astype(int)
    settings = {"n_estimators": 60, "learning_rate": 0.01, "early_stopping_rounds": 100}
    hooked = LightGBMClassifier(**settings, random_state=0).fit(
        X, y, callbacks=boosting_hooks(report, time.monotonic() + 600)
    )
    plain = LightGBMClassifier(**settings, random_state=0).fit(X, y)
    assert asked == [] and hooked.n_rounds_ == plain.n_rounds_ == 60
    assert np.array_equal(hooked.predict_proba(X), plain.predict_proba(X))


def test_each_part_of_a_cross_validated_fit_gets_its_share_of_the_deadline():
    now = [0.0]
    deadlines = PartDeadlines(60.0, parts=6, clock=lambda: now[0])  # 5 folds and the refit
    assert deadlines.next() == 10.0  # fold 0 starts at once: an even sixth
    now[0] = 8.0  # fold 0 ended early: the time it left over is shared by the rest
    assert deadlines.next() == 8.0 + 52.0 / 5
    now[0] = 45.0  # slow folds: never less than an even sixth of the whole
    assert deadlines.next() == 55.0
    now[0] = 70.0  # past the fit's end: the refit that becomes the saved model still gets 10 s
    deadlines.started = 5
    assert deadlines.next() == 80.0
    assert PartDeadlines(math.inf, parts=6).next() == math.inf


def test_once_no_fit_passes_the_share_rule_each_fit_gets_all_the_time_left():
    from trainforge.models.registry import get_family

    lightgbm = get_family("lightgbm")
    budget = Budget(100.0, None)  # 10 s kept for the end: about 90 s to train
    budget.record("lightgbm", 40.0)  # the next lightgbm fit is predicted at 1.5 x 40 = 60 s
    left = budget.remaining()
    assert 89.0 < left <= 90.0
    # its deadline would be a quarter of what is left, and 60 s is more than twice that
    assert not budget.fits(lightgbm, None, 5, interruptible=True)
    assert budget.fit_deadline() - time.monotonic() == pytest.approx(left / 4, abs=0.5)
    assert budget.last_fits() and not budget.last_fits()  # switched once
    assert budget.fits(lightgbm, None, 5, interruptible=True)
    assert budget.fit_deadline() - time.monotonic() == pytest.approx(left, abs=0.5)
    budget.record("lightgbm", 70.0)  # predicted 105 s: more than is left, even now
    assert not budget.fits(lightgbm, None, 5, interruptible=True)
    assert not Budget(None, 5).last_fits()  # without a time limit every fit runs to its end


def test_time_is_held_for_a_later_step_only_when_that_step_fits():
    budget = Budget(100.0, None)  # about 90 s to train
    budget.hold(95.0)  # the step could not start even now: the search keeps the time
    assert budget.held == 0.0 and budget.remaining() > 89.0
    budget.hold(30.0)
    assert budget.held == 30.0 and 59.0 < budget.remaining() <= 60.0


def test_the_reserve_covers_the_slowest_writing_of_files_seen_so_far():
    """The last candidate's files are written after the search: the end's reserve is at least
    CLOSING_BASE_SECONDS plus the slowest writing so far, within the usual bounds."""
    from trainforge.candidate_run import Saver
    from trainforge.search.budget import CLOSING_BASE_SECONDS

    saver = Saver()
    saver.submit(lambda: time.sleep(0.3))
    saver.submit(lambda: None)
    saver.wait()
    assert 0.3 <= saver.longest < 2.0  # the slow task, not the last one
    budget = Budget(60.0, None)
    assert budget.reserve == 6.0
    budget.saving = 1.5  # 4 + 1.5 is below the 6 s floor: no change
    assert budget.reserve == 6.0
    budget.saving = 3.5
    assert budget.reserve == CLOSING_BASE_SECONDS + 3.5 == 7.5
    assert 52.0 < budget.remaining() <= 52.5
    slow = Budget(300.0, None)
    slow.saving = 3.5  # a tenth of 300 s already covers it
    assert slow.reserve == 30.0
    tight = Budget(15.0, None)
    tight.saving = 10.0  # never more than a third of the limit
    assert tight.reserve == 5.0


# -- search runs -------------------------------------------------------------------------------


def _trials(run: Path) -> pd.DataFrame:
    trials = pd.read_csv(run / "search.csv")[TRIAL_COLUMNS]
    return trials.sort_values(["study", "number"]).reset_index(drop=True)


def _searches(tmp_path, small_table, seeds: list[int]) -> list[SimpleNamespace]:
    """The same trial-limited search with each seed, all at once (each fits on one core) from
    the command line; each run's folder, leaderboard and best candidate."""
    small_table.to_csv(tmp_path / "t.csv", index=False)
    models = ["logistic_regression", {"name": "random_forest", "n_estimators": 20}]
    spec = {"data": {"train": "t.csv", "target": "y"}, "budget": {"trials": 5}, "models": models}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({**spec, "tracking": {"enabled": False}}))

    def search(seed: int) -> Path:
        done = run_cli("train", "spec.yaml", "--seed", seed, "--out", "runs", cwd=tmp_path)
        assert done.code == 0, done.stderr
        return tmp_path / done.stdout.strip().splitlines()[-1].removeprefix("run: ")

    with ThreadPoolExecutor(len(seeds)) as pool:
        paths = list(pool.map(search, seeds))
    return [
        SimpleNamespace(
            path=path,
            leaderboard=pd.read_csv(path / "leaderboard.csv"),
            best_name=json.loads((path / "manifest.json").read_text())["best"]["candidate"],
        )
        for path in paths
    ]


def test_same_seed_gives_the_same_trials_and_scores(tmp_path, small_table):
    first, second, other = _searches(tmp_path, small_table, [3, 3, 4])
    trials = _trials(first.path)
    assert len(trials) == 5 and set(trials.state) == {"COMPLETE"}
    assert set(trials.study) == {"logistic_regression", "random_forest"}
    pd.testing.assert_frame_equal(trials, _trials(second.path))
    assert not trials.params.equals(_trials(other.path).params)
    # each study starts from its candidate's own result, added as a finished trial
    import optuna

    storage = f"sqlite:///{first.path / 'search.db'}"
    board = first.leaderboard.set_index("candidate")
    for study_name in ("logistic_regression", "random_forest"):
        study = optuna.load_study(study_name=study_name, storage=storage)
        seeded = [t for t in study.trials if t.user_attrs.get("seeded")]
        assert [t.user_attrs["candidate"] for t in seeded] == [study_name]
        assert seeded[0].value == pytest.approx(board.loc[study_name, "roc_auc"])
    # the leaderboard: each candidate once, plus its best trial where one beat it, and the
    # ensemble and the stacked model of them: a small table under a budget is bagged
    names = first.leaderboard.candidate.tolist()
    assert {"ensemble", "stacking", "stack_lightgbm"} <= set(names)
    singles = [c for c in names if c not in ("ensemble", "stacking", "stack_lightgbm")]
    assert {c.split("#")[0] for c in singles} == {"logistic_regression", "random_forest"}
    best_trials = [c for c in singles if "#t" in c]
    for name in best_trials:  # a listed trial is its study's best result
        study = name.split("#")[0]
        values = trials[trials.study == study].set_index("candidate").value
        assert values[name] == values.max() > board.loc[study, "roc_auc"]
    kept = {p.parent.name for p in first.path.glob("candidates/*#t*/model")}
    assert kept == set(best_trials)  # other trials' models went into the ensemble's copies
    manifest = json.loads((first.path / "manifest.json").read_text())
    assert manifest["budget"]["trials_run"] == 5 and manifest["budget"]["stopped_by"] == "trials"
    # no time limit: 8 folds (docs/search.md)
    assert manifest["data"]["validation"] == {"strategy": "cv", "folds": 8, "bagged": True}
    assert any("is 8 models, one per fold of 8-fold" in n for n in manifest["notices"])
    assert (
        yaml.safe_load((first.path / "spec.yaml").read_text())["data"]["split"]["strategy"] == "cv"
    )
    assert first.best_name == manifest["best"]["candidate"]
    assert trainforge.load(first.path).predict(small_table).shape == (len(small_table),)
    # the report shows the search: score over time (and parameter importance), counts by state
    page = (first.path / "report.html").read_text()
    section = page.split("<h2>Search history</h2>")[1].split("<h2>")[0]
    importance = json.loads((first.path / "search_importance.json").read_text())
    assert section.count("data:image/png;base64,") == 1 + bool(importance)
    assert "<th" in section and "COMPLETE" in section


def test_a_time_limit_is_honoured_with_a_usable_best_model(tmp_path, small_table):
    import optuna

    limit = 14.0
    started = time.monotonic()
    result = trainforge.train(
        {"budget": {"time": f"{limit}s"}, "models": ["logistic_regression", "mlp"]},
        data=small_table,
        target="y",
        output=tmp_path,
        validation_fraction=0.2,  # a holdout: 5-fold CV of the MLP would leave no trials in 9 s
        tracking=False,  # MLflow's upload after the run is outside the budget (docs/search.md)
    )
    elapsed = time.monotonic() - started
    manifest = json.loads((result.path / "manifest.json").read_text())
    budget = manifest["budget"]
    assert manifest["status"] == "completed"
    assert budget["stopped_by"] == "time" and budget["trials_run"] >= 1
    # the search stops early enough for the ensemble, importance and report to fit
    kept = Budget(limit, None).reserve  # a third of a 14 s limit
    assert budget["search_seconds"] <= limit - kept + 1
    assert budget["closing_seconds"] > 0 and "ensemble" in set(result.leaderboard.candidate)
    assert budget["used_seconds"] == pytest.approx(
        budget["search_seconds"] + budget["closing_seconds"], abs=0.002
    )
    assert budget["used_seconds"] <= limit + 3 and budget["overrun_seconds"] <= 3
    assert elapsed <= limit + 10  # plus loading data and libraries before the clock starts
    trials = _trials(result.path)
    assert len(trials) == budget["trials_run"]
    assert trainforge.load(result.path).predict(small_table).shape == (len(small_table),)
    # neural trials report each epoch's validation loss to the study (what pruning works on)
    storage = f"sqlite:///{result.path / 'search.db'}"
    if "mlp" in set(trials.study):
        study = optuna.load_study(study_name="mlp", storage=storage)
        sampled = [t for t in study.trials if not t.user_attrs.get("seeded")]
        assert all(t.intermediate_values for t in sampled if t.state.is_finished())


# -- kill and resume ---------------------------------------------------------------------------


def _states(db: Path) -> list[str]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1) as connection:
            seeded = "SELECT trial_id FROM trial_user_attributes WHERE key = 'seeded'"
            query = f"SELECT state FROM trials WHERE trial_id NOT IN ({seeded})"
            return [row[0] for row in connection.execute(query)]
    except sqlite3.Error:
        return []


def test_a_killed_search_resumes_without_repeating_finished_trials(tmp_path, small_csv):
    models = "logistic_regression,extra_trees"  # a forest's trials last long enough to kill
    flags = ["--target", "y", "--models", models, "--trials", "5", "--seed", "5", "--cv", "3"]
    command = [sys.executable, "-m", "trainforge", "train", str(small_csv), *flags]
    command.append("--no-ensemble")
    # the uninterrupted run goes beside the one to kill: each fits on one core of two
    with open(tmp_path / "whole.log", "w") as log:
        whole = subprocess.Popen(
            [*command, "--out", "whole"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=log
        )
    process = subprocess.Popen(
        [*command, "--out", "runs"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    db = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        runs = list((tmp_path / "runs").glob("*/search.db"))
        db = runs[0] if runs else None
        written = list(db.parent.glob("candidates/*#t*/metrics.json")) if db else []
        if len(written) >= 2:  # two trials' files are written; others may still be on the way
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the search ended before it could be killed"
    assert whole.wait(timeout=300) == 0, (tmp_path / "whole.log").read_text()
    reference = _trials(next((tmp_path / "whole").glob("*/search.db")).parent)
    run = db.parent
    from trainforge.search.history import history_frame

    before = history_frame(f"sqlite:///{run / 'search.db'}")[TRIAL_COLUMNS]
    before = before[before.state == "COMPLETE"]
    stamps = {p: p.stat().st_mtime_ns for p in run.glob("candidates/*#t*/metrics.json")}
    assert len(before) >= 2 and len(stamps) >= 2

    done = subprocess.run(
        [sys.executable, "-m", "trainforge", "resume", run.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    after = _trials(run)
    # a trial the kill interrupted was continued (same number and name); trials whose files
    # were written did not run again (a trial whose files were still being written does)
    assert pd.read_csv(run / "search.csv").resumed.sum() <= 1 and len(after) == 5
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    kept = after.merge(before, on=["study", "number"], suffixes=("", "_before"))
    assert len(kept) == len(before) and (kept.value == kept.value_before).all()
    # and the search as a whole is the one an uninterrupted run makes
    pd.testing.assert_frame_equal(after, reference)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["budget"]["trials_run"] == 5


def test_search_doc_lists_every_space():
    import runpy

    script = runpy.run_path(str(ROOT / "scripts" / "search_doc.py"))
    text = (ROOT / "docs" / "search.md").read_text()
    assert script["render"](text) == text, "run: python scripts/search_doc.py"
    assert (
        "| `hist_gradient_boosting` | `learning_rate` | number in [0.01, 0.3], log scale |" in text
    )


def test_default_candidates_follow_the_portfolio_and_leave_weak_families_out(monkeypatch):
    from trainforge.candidates import plan
    from trainforge.models.registry import Profile
    from trainforge.search import portfolio
    from trainforge.search.portfolio import default_order

    learned = [("xgboost", {"max_depth": 4}), ("knn", {}), ("lightgbm", {}), ("xgboost", {})]
    monkeypatch.setattr(portfolio, "portfolio", lambda task: learned)
    monkeypatch.setattr("trainforge.search.portfolio.portfolio", lambda task: learned)
    candidates, _ = plan([], Profile("binary", 1000, 5, 2))

    def names(limit, rows=50_000):
        order, left_out = default_order(candidates, Profile("binary", rows, 5, 2), limit)
        return [c.name for c, _, _ in order], [c.params for c, _, _ in order], left_out

    order, params, left_out = names(60)
    # the baseline, the portfolio in its order (knn is left out under a budget), then the
    # kept families it does not hold, by their budget rank; no mlp below 5 minutes on a
    # table this large
    assert order[:4] == ["baseline", "xgboost", "lightgbm", "xgboost_2"]
    assert params[1] == {"max_depth": 4} and params[3] == {}
    assert order[4:] == [
        "hist_gradient_boosting",
        "logistic_regression",
        "random_forest",
        "extra_trees",
        "catboost",
    ]
    assert {"knn", "svm", "naive_bayes", "decision_tree", "mlp"} <= set(left_out)
    assert names(300)[0][-1] == "mlp" and "mlp" not in names(300)[2]
    assert "knn" not in names(None)[0]
    # a small table: the mlp trains at any limit, after the portfolio's first entry
    for limit in (20, 60, 300, None):
        order, _, left_out = names(limit, rows=1_000)
        assert order[:5] == ["baseline", "xgboost", "mlp", "lightgbm", "xgboost_2"], limit
        assert "mlp" not in left_out and order.count("mlp") == 1


def test_boosting_trials_finish_unpruned_and_keep_the_spec_settings(tmp_path, small_table):
    import optuna

    result = trainforge.train(
        {"budget": {"trials": 3}, "models": [{"name": "lightgbm", "learning_rate": 0.05}]},
        data=small_table,
        target="y",
        output=tmp_path,
        ensemble=False,
        tracking=False,
    )
    trials = _trials(result.path)
    assert len(trials) == 3 and set(trials.study) == {"lightgbm"}
    assert set(trials.state) == {"COMPLETE"}
    for params in trials.params.map(json.loads):  # the spec's learning rate is held
        assert "num_leaves" in params and "learning_rate" not in params
    study = optuna.load_study(study_name="lightgbm", storage=f"sqlite:///{result.path}/search.db")
    assert [trial.intermediate_values for trial in study.trials] == [{}, {}, {}]


def test_a_pruned_trial_is_shown_as_pruned_in_a_real_search(
    tmp_path, small_table, monkeypatch, capfd
):
    """The study is told before the console line is written, so a pruned trial's line says so
    (it once showed a bare rmse=3,482 next to the best candidate's 527)."""
    from trainforge.search import tuner

    def always_prune(self, trial, pruned):
        def report(step, value):
            trial.report(value, step)
            pruned.append(step)
            return True

        return report

    monkeypatch.setattr(tuner.Tuner, "_reporter", always_prune)
    result = trainforge.train(
        {"budget": {"trials": 2}, "models": [{"name": "mlp", "max_epochs": 20}]},
        data=small_table,
        target="y",
        output=tmp_path,
        ensemble=False,
        tracking=False,
        validation_fraction=0.2,
    )
    trials = _trials(result.path)
    assert list(trials.state) == ["PRUNED", "PRUNED"]
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "mlp#t" in line and "(fit" in line]
    assert len(lines) == 2 and all("pruned (" in line for line in lines), lines


def test_a_split_the_spec_sets_is_kept_under_a_budget(tmp_path, small_table):
    result = trainforge.train(
        {"budget": {"trials": 1}, "models": ["logistic_regression"]},
        data=small_table,
        target="y",
        validation_fraction=0.25,
        output=tmp_path,
        tracking=False,
    )
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["data"]["validation"]["strategy"] == "holdout"
    assert not any("cross-validation" in n for n in manifest["notices"])
