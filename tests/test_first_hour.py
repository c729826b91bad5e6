"""A newcomer's first hour (issue 14): text beside other columns, separators and decimal
commas, runs that can be run again, input errors that leave nothing behind, a Python API that
speaks, arrays at prediction, honest warnings, and the smaller things."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trainforge
from conftest import make_small_table, run_cli


def clinic(n: int = 300) -> pd.DataFrame:
    """A table with an id, numbers, a category and a note of about seven words, where the
    diagnosis depends on the note and a number."""
    rng = np.random.default_rng(7)
    words = ["fever", "cough", "pain", "rash", "fatigue", "nausea", "headache", "mild", "severe"]
    notes = [" ".join(rng.choice(words, 7)) for _ in range(n)]
    frame = pd.DataFrame(
        {
            "patient_id": [f"P{i:05d}" for i in range(n)],
            "age": rng.integers(20, 80, n),
            "radius": rng.normal(size=n),
            "sex": rng.choice(["m", "f"], n),
            "note": notes,
        }
    )
    severe = frame.note.str.contains("severe")
    frame["diagnosis"] = np.where(severe & (frame.radius > -0.5), "yes", "no")
    return frame


# -- 1. free text in a table ------------------------------------------------------------------


def test_a_text_column_is_used_beside_the_other_columns(tmp_path):
    clinic().to_csv(tmp_path / "clinic.csv", index=False)
    done = run_cli(
        "train",
        "clinic.csv",
        "--target",
        "diagnosis",
        "--models",
        "logistic_regression,lightgbm",
        "--no-tracking",
        "--out",
        "runs",
        cwd=tmp_path,
    )
    assert done.code == 0, done.stderr
    assert "'note' holds free text: read as TF-IDF features beside the other columns" in done.stderr
    assert "text models use only" not in done.stderr
    run = next((tmp_path / "runs").glob("*/manifest.json")).parent
    board = pd.read_csv(run / "leaderboard.csv").set_index("candidate")
    # the note carries the signal: a model that read only the table would stay far below
    assert board.loc["logistic_regression", "roc_auc"] > 0.9
    schema = json.loads((run / "candidates/lightgbm/model/bundle.json").read_text())["schema"]
    roles = {c["name"]: c["role"] for c in schema["columns"]}
    assert roles == {"age": "numeric", "radius": "numeric", "sex": "categorical", "note": "text"}
    rows = clinic().head(5).drop(columns="diagnosis")
    assert trainforge.load(run).predict(rows).shape == (5,)


# -- 4. separators and decimal commas ---------------------------------------------------------


def test_a_semicolon_csv_with_decimal_commas_is_sniffed_and_said(tmp_path):
    table = make_small_table(120)
    text = table.to_csv(index=False, sep=";").replace(".", ",")
    (tmp_path / "semi.csv").write_text(text)
    done = run_cli(
        "train",
        "semi.csv",
        "--target",
        "y",
        "--models",
        "logistic_regression",
        "--no-tracking",
        "--out",
        "runs",
        cwd=tmp_path,
    )
    assert done.code == 0, done.stderr
    assert "semi.csv: read with ';' (semicolon) as the separator" in done.stderr
    assert "semi.csv: numbers read with decimal commas" in done.stderr
    run = next((tmp_path / "runs").glob("*/manifest.json")).parent
    schema = json.loads((run / "candidates/logistic_regression/model/bundle.json").read_text())
    assert {c["name"]: c["role"] for c in schema["schema"]["columns"]}["x1"] == "numeric"


def test_sep_and_decimal_flags_override_sniffing(tmp_path):
    table = make_small_table(120)
    (tmp_path / "bar.csv").write_text(table.to_csv(index=False, sep="|"))
    done = run_cli(
        "train",
        "bar.csv",
        "--target",
        "y",
        "--sep",
        "|",
        "--decimal",
        ".",
        "--models",
        "logistic_regression",
        "--no-tracking",
        "--out",
        "runs",
        cwd=tmp_path,
    )
    assert done.code == 0, done.stderr
    spec = (next((tmp_path / "runs").glob("*/spec.yaml"))).read_text()
    assert "sep: '|'" in spec and "decimal: ." in spec


def test_a_target_hidden_in_a_header_joined_by_another_separator_is_named(tmp_path):
    table = make_small_table(50)
    (tmp_path / "t.csv").write_text(table.to_csv(index=False, sep=";"))
    done = run_cli("train", "t.csv", "--target", "y", "--sep", ",", "--quiet", cwd=tmp_path)
    assert done.code == 2
    assert "looks separated by ';'; read the file with --sep ';'" in done.stderr
    assert not (tmp_path / "runs").exists()


def test_a_misspelt_target_gets_a_suggestion(tmp_path):
    make_small_table(50).rename(columns={"y": "target"}).to_csv(tmp_path / "t.csv", index=False)
    done = run_cli("train", "t.csv", "--target", "Target", "--quiet", cwd=tmp_path)
    assert done.code == 2 and "did you mean 'target'?" in done.stderr


# -- 5. importance for every kind of best model; every notice kept ----------------------------


def test_importance_is_written_when_an_ensemble_or_a_bagged_model_wins(tmp_path, small_table):
    result = trainforge.train(
        data=small_table,
        target="y",
        models=["logistic_regression", "lightgbm"],
        folds=4,
        output=tmp_path,
        tracking=False,
        quiet=True,
    )
    importance = pd.read_csv(result.path / "candidates" / result.best_name / "importance.csv")
    assert importance.feature.iloc[0] in ("x1", "c")  # the label depends on x1 and c
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert not any("permutation importance skipped" in n for n in manifest["notices"])


def test_the_manifest_keeps_every_notice_including_the_late_ones(tmp_path, small_table):
    notices = []

    class Collect:
        def notice(self, message):
            notices.append(message)

    result = trainforge.train(
        {"budget": {"trials": 1}},
        data=small_table.assign(ident=[f"r{i}" for i in range(len(small_table))]),
        target="y",
        models=["logistic_regression", "naive_bayes"],
        output=tmp_path,
        tracking=False,
        observer=Collect(),
    )
    kept = json.loads((result.path / "manifest.json").read_text())["notices"]
    assert notices and set(notices) <= set(kept)


# -- 6. a run's spec.yaml runs again ----------------------------------------------------------


def test_a_runs_saved_spec_can_be_run_again_from_anywhere(tmp_path):
    make_small_table(80).to_csv(tmp_path / "data.csv", index=False)
    first = run_cli(
        "train",
        "data.csv",
        "--target",
        "y",
        "--models",
        "logistic_regression",
        "--no-tracking",
        "--out",
        "runs",
        cwd=tmp_path,
    )
    assert first.code == 0, first.stderr
    spec = next((tmp_path / "runs").glob("*/spec.yaml"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = run_cli("train", spec, "--no-tracking", "--out", "runs", cwd=elsewhere)
    assert again.code == 0, again.stderr
    boards = [pd.read_csv(p) for p in sorted(tmp_path.glob("**/runs/*/leaderboard.csv"))]
    assert len(boards) == 2 and boards[0].roc_auc.tolist() == boards[1].roc_auc.tolist()


# -- 7. input errors leave no run behind; a failed run says why --------------------------------


@pytest.mark.parametrize(
    "args, needle",
    [
        (["missing.csv", "--target", "y"], "missing.csv: no such file"),
        (["data.csv", "--target", "nope"], "target column 'nope' is not in the data"),
        (["data.csv", "--target", "y", "--models", "ridge"], "ridge does not support binary"),
    ],
)
def test_input_errors_create_no_run_folder_and_no_tracking_run(tmp_path, args, needle):
    make_small_table(60).to_csv(tmp_path / "data.csv", index=False)
    store = tmp_path / "store.db"
    done = run_cli(
        "train", *args, "--out", "runs", "--tracking-uri", f"sqlite:///{store}", cwd=tmp_path
    )
    assert done.code == 2 and needle in done.stderr
    assert "run 2" not in done.stderr  # no "run <id> (<path>)" line: no run was started
    assert not (tmp_path / "runs").exists()
    assert not store.exists()


# -- 8. the Python API speaks -----------------------------------------------------------------


def test_the_python_api_prints_progress_and_notices_and_logs_them(tmp_path, capsys, caplog):
    table = make_small_table(80).assign(ident=[f"r{i}" for i in range(80)])
    with caplog.at_level(logging.INFO, logger="trainforge"):
        trainforge.train(
            data=table,
            target="y",
            models=["logistic_regression"],
            output=tmp_path,
            tracking=False,
        )
    err = capsys.readouterr().err
    assert "column 'ident' dropped" in err and "logistic_regression: roc_auc=" in err
    assert any("column 'ident' dropped" in r.getMessage() for r in caplog.records)


def test_quiet_prints_nothing_and_verbose_is_accepted(tmp_path, capsys, caplog):
    table = make_small_table(80).assign(ident=[f"r{i}" for i in range(80)])
    with caplog.at_level(logging.INFO, logger="trainforge"):
        trainforge.train(
            data=table,
            target="y",
            models=["logistic_regression"],
            output=tmp_path / "q",
            tracking=False,
            quiet=True,
        )
    assert capsys.readouterr().err == ""
    assert any("column 'ident' dropped" in r.getMessage() for r in caplog.records)
    trainforge.train(
        data=table,
        target="y",
        models=["logistic_regression"],
        output=tmp_path / "v",
        tracking=False,
        verbose=True,
    )


def test_a_loaded_model_says_what_it_is(tmp_path, small_table):
    result = trainforge.train(
        data=small_table,
        target="y",
        models=["lightgbm"],
        folds=3,
        output=tmp_path,
        tracking=False,
        ensemble=False,
        quiet=True,
    )
    text = repr(trainforge.load(result.path))
    assert text.startswith("BaggedModel(family='lightgbm', task='binary', target='y'")
    assert "classes=['no', 'yes']" in text and "folds=3" in text
    assert "validation roc_auc=0." in text and "candidate='lightgbm'" in text


# -- 9. a 2-D array at prediction -------------------------------------------------------------


def test_predict_takes_a_2d_array_in_training_column_order(tmp_path, small_table):
    result = trainforge.train(
        data=small_table,
        target="y",
        models=["logistic_regression"],
        output=tmp_path,
        tracking=False,
        ensemble=False,
        quiet=True,
    )
    model = trainforge.load(result.path)
    rows = small_table.drop(columns="y")
    as_array = rows.to_numpy(dtype=object)
    np.testing.assert_array_equal(model.predict(as_array), model.predict(rows))
    from trainforge.errors import DataError

    with pytest.raises(DataError, match="the array has 3 column"):
        model.predict(as_array[:, :3])


# -- 10. an overconfident model is not called one that learned nothing ------------------------


def test_a_worse_log_loss_with_a_better_accuracy_is_called_overconfident():
    from trainforge.candidates import CandidateResult
    from trainforge.watchdog import Watchdog

    said = []
    dog = Watchdog(said.append)
    base = CandidateResult("baseline", "baseline", {}, metrics={"log_loss": 1.09, "accuracy": 0.39})
    tree = CandidateResult(
        "decision_tree", "decision_tree", {}, metrics={"log_loss": 2.11, "accuracy": 0.89}
    )
    noise = CandidateResult("knn", "knn", {}, metrics={"log_loss": 1.20, "accuracy": 0.30})
    for index, result in enumerate((base, tree, noise), start=1):
        dog.candidate_finished(index, 3, result)
    assert said == [
        "decision_tree: log_loss 2.1100 is no better than the baseline's 1.0900, though its "
        "accuracy 0.8900 beats the baseline's 0.3900: its probabilities are overconfident "
        "(regularise it, or calibrate it)",
        "knn: log_loss 1.2000 is no better than the baseline's 1.0900; it learned nothing "
        "useful from the features",
    ]


# -- 12. the catalogue tells the truth --------------------------------------------------------


def test_the_catalogue_shows_probabilities_only_for_classifiers(tmp_path):
    done = run_cli("models", cwd=tmp_path)
    assert done.code == 0
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    for name in ("ridge", "lasso", "linear_regression"):
        assert " yes " not in rows[name].split("regression", 1)[1][:20], rows[name]


# -- 15. the smaller things -------------------------------------------------------------------


def test_an_unknown_metric_lists_the_metrics_of_the_task(tmp_path):
    make_small_table(40).to_csv(tmp_path / "t.csv", index=False)
    done = run_cli(
        "train",
        "t.csv",
        "--target",
        "y",
        "--task",
        "binary",
        "--metric",
        "auc",
        "--quiet",
        cwd=tmp_path,
    )
    assert done.code == 2 and "did you mean 'pr_auc' or 'roc_auc'?" in done.stderr
    assert "silhouette" not in done.stderr and "metrics of a binary task" in done.stderr


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("predict")
    make_small_table(120).to_csv(folder / "train.csv", index=False)
    done = run_cli(
        "train",
        "train.csv",
        "--target",
        "y",
        "--models",
        "logistic_regression",
        "--no-tracking",
        "--out",
        "runs",
        "--no-ensemble",
        cwd=folder,
    )
    assert done.code == 0, done.stderr
    return next((folder / "runs").glob("*/manifest.json")).parent


@pytest.mark.parametrize("name, reader", [("p.tsv", "tsv"), ("p.parquet", "parquet")])
def test_predict_writes_by_the_outputs_extension(small_run, tmp_path, name, reader):
    make_small_table(10).drop(columns="y").to_csv(tmp_path / "rows.csv", index=False)
    done = run_cli("predict", small_run, "rows.csv", "-o", name, cwd=tmp_path)
    assert done.code == 0, done.stderr
    frame = (
        pd.read_csv(tmp_path / name, sep="\t")
        if reader == "tsv"
        else pd.read_parquet(tmp_path / name)
    )
    assert list(frame.columns[-3:]) == ["prediction", "proba_no", "proba_yes"] and len(frame) == 10


def test_predict_refuses_an_output_it_cannot_write(small_run, tmp_path):
    make_small_table(10).drop(columns="y").to_csv(tmp_path / "rows.csv", index=False)
    done = run_cli("predict", small_run, "rows.csv", "-o", "p.xlsx", cwd=tmp_path)
    assert (
        done.code == 2 and "cannot write .xlsx; name a .csv, .tsv or .parquet file" in done.stderr
    )
    assert not (tmp_path / "p.xlsx").exists()


def test_an_unseen_boolean_value_is_read_as_missing_with_a_note(small_run, tmp_path):
    rows = make_small_table(10).drop(columns="y")
    rows["flag"] = rows["flag"].astype(object)
    rows.loc[3, "flag"] = "maybe"
    rows.to_csv(tmp_path / "rows.csv", index=False)
    done = run_cli("predict", small_run, "rows.csv", "-o", "p.csv", cwd=tmp_path)
    assert done.code == 0, done.stderr
    assert "note: column 'flag' is boolean but 1 value(s) are not (first 'maybe'" in done.stderr
    assert len(pd.read_csv(tmp_path / "p.csv")) == 10


def test_an_mlp_that_reaches_max_epochs_warns_and_counts_its_epochs():
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from trainforge.models.neural import MLPClassifier

    X = np.random.default_rng(0).normal(size=(120, 3))
    y = (X[:, 0] > 0).astype(int)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = MLPClassifier(max_epochs=2, random_state=0).fit(X, y)
    assert model.n_iter_ == 2
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught)


def test_grammar_of_missing_packages_and_runs_that_did_not_complete(tmp_path, monkeypatch):
    from trainforge.candidates import plan
    from trainforge.errors import RunError
    from trainforge.models.registry import Family, Profile

    monkeypatch.setattr(Family, "available", lambda self: "tokenizers" not in self.requires)
    _, notices = plan([], Profile("binary", 500, 1, 2, modality="text"))
    assert any("torch and tokenizers are not installed" in n for n in notices), notices
    (tmp_path / "manifest.json").write_text(json.dumps({"status": "failed", "id": "x"}))
    with pytest.raises(RunError, match=r"did not complete \(status: failed\); it has no best"):
        trainforge.load(tmp_path)


def test_the_positive_class_is_named_and_can_be_chosen(tmp_path):
    make_small_table(120).to_csv(tmp_path / "t.csv", index=False)
    common = ["--models", "logistic_regression", "--no-tracking", "--no-ensemble"]
    default = run_cli("train", "t.csv", "--target", "y", *common, "--out", "a", cwd=tmp_path)
    assert "binary task: the positive class is 'yes'" in default.stderr
    chosen = run_cli(
        "train",
        "t.csv",
        "--target",
        "y",
        "--positive-class",
        "no",
        *common,
        "--out",
        "b",
        cwd=tmp_path,
    )
    assert chosen.code == 0 and "binary task: the positive class is 'no'" in chosen.stderr
    run = next((tmp_path / "b").glob("*/manifest.json")).parent
    schema = json.loads((run / "candidates/logistic_regression/model/bundle.json").read_text())
    assert schema["schema"]["classes"] == ["yes", "no"]
    wrong = run_cli(
        "train", "t.csv", "--target", "y", "--positive-class", "maybe", "--quiet", cwd=tmp_path
    )
    assert wrong.code == 2 and "'maybe' is not a class of 'y'; use 'no' or 'yes'" in wrong.stderr
