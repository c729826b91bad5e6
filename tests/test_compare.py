"""`trainforge compare RUN_A RUN_B`, and `runs`/`show` reading the same records."""

from __future__ import annotations

import json

import pytest

import trainforge
from conftest import make_small_table
from trainforge.cli import main
from trainforge.compare import compare_runs, flatten


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare")
    table = make_small_table()
    first = trainforge.train(
        data=table, target="y", models=["baseline", "logistic_regression"], output=folder,
        name="first", tracking=False,
    )  # fmt: skip
    second = trainforge.train(
        data=table.iloc[:250], target="y", models=["baseline", "decision_tree"], output=folder,
        name="second", seed=7, tracking=False,
    )  # fmt: skip
    return first.path, second.path


def test_flatten_names_every_setting_by_its_path():
    tree = {"data": {"split": {"folds": 5}}, "models": [{"name": "ridge"}], "columns": {}}
    assert flatten(tree) == {"data.split.folds": 5, "models[0].name": "ridge", "columns": {}}


def test_compare_shows_spec_data_code_and_score_differences(two_runs):
    a, b = two_runs
    found = compare_runs(a, b)
    spec = found["spec"].set_index("setting")
    assert spec.loc["seed"].tolist() == [0, 7]
    assert spec.loc["models[1].name"].tolist() == ["logistic_regression", "decision_tree"]
    assert spec.loc["name"].tolist() == ["first", "second"]
    assert "data.target" not in spec.index  # the same in both
    records = found["records"].set_index("what")
    assert records.loc["data: train sha256", "same"] == "NO"  # 300 rows against 250
    assert records.loc["code commit", "same"] == "yes"
    assert records.loc["version: scikit-learn", "same"] == "yes"
    scores = found["scores"].set_index("candidate")
    boards = [
        json.loads((p / "candidates" / "baseline" / "metrics.json").read_text()) for p in (a, b)
    ]
    assert scores.loc["baseline", "roc_auc a"] == pytest.approx(boards[0]["metrics"]["roc_auc"])
    assert scores.loc["baseline", "b - a"] == pytest.approx(
        boards[1]["metrics"]["roc_auc"] - boards[0]["metrics"]["roc_auc"]
    )
    assert scores.loc["decision_tree"].isna()["roc_auc a"]  # trained in b only


def test_compare_runs_and_show_on_the_command_line(two_runs, capsys):
    a, b = two_runs
    out = a.parent
    assert main(["compare", a.name, b.name[:-2], "--out", str(out)]) == 0  # id, id prefix
    text = capsys.readouterr().out
    assert "spec settings that differ" in text and "models[1].name" in text
    assert "data: train sha256" in text and "NO" in text
    assert "validation scores" in text and "decision_tree" in text
    assert main(["runs", "--out", str(out)]) == 0
    listing = capsys.readouterr().out
    assert a.name in listing and b.name in listing
    assert main(["show", b.name, "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    assert f"report: {b / 'report.html'}" in shown and "decision_tree" in shown
