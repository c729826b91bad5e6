"""Text and sequence data through whole runs: the Python API and the CLI, task inference, the
ladders, saved models predicting on raw rows, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_sequences import one_torch_thread, spam_texts, wave_series  # noqa: F401

import trainforge
from conftest import run_cli
from trainforge.candidate_run import profile_of
from trainforge.candidates import plan
from trainforge.data.dataset import load_dataset
from trainforge.data.modality import modality_of
from trainforge.errors import DataError, SpecError
from trainforge.spec import build_spec


@pytest.fixture
def sms_like(tmp_path: Path) -> Path:
    texts, labels = spam_texts(240)
    frame = pd.DataFrame({"label": labels, "message": texts, "length": [len(t) for t in texts]})
    path = tmp_path / "sms.tsv"
    frame.to_csv(path, sep="\t", index=False)
    return path


def test_text_is_inferred_and_gets_the_text_ladder(sms_like):
    only_text = pd.read_csv(sms_like, sep="\t").drop(columns="length")
    spec = build_spec(target="label")
    dataset = load_dataset(spec.data, "auto", 0, train=only_text)
    assert dataset.task == "binary"
    assert modality_of(dataset.schema) == ("text", 1)
    assert [c.name for c in dataset.schema.columns] == ["message"]
    candidates, _ = plan([], profile_of(dataset, 0))
    assert [c.name for c in candidates] == ["baseline", "tfidf_linear", "rnn", "transformer"]
    # beside another column the text is a table's feature, unless the task asks for text
    spec = build_spec(train=sms_like, target="label")
    table = load_dataset(spec.data, "auto", 0)
    assert modality_of(table.schema)[0] == "table"
    assert {c.name: c.role for c in table.schema.columns}["message"] == "text"
    assert any("'message' holds free text" in n for n in table.notices)
    text = load_dataset(spec.data, "text_classification", 0)
    assert [c.name for c in text.schema.columns] == ["message"]
    assert any("left out: 'length'" in n for n in text.notices)


def test_python_api_trains_text_models_and_the_best_predicts_raw_rows(sms_like, tmp_path):
    result = trainforge.train(
        data=sms_like,
        target="label",
        task="text_classification",
        models=["tfidf_linear", {"name": "transformer", "max_epochs": 4}],
        output=tmp_path / "runs",
    )
    board = result.leaderboard.set_index("candidate")
    assert set(board.index) == {"tfidf_linear", "transformer", "ensemble"}
    assert (board["accuracy"] >= 0.95).all(), board["accuracy"]
    bundle = result.path / "candidates" / "transformer" / "model"
    assert (bundle / "estimator" / "tokenizer.json").is_file()
    assert json.loads((bundle / "bundle.json").read_text())["estimator"].endswith(
        "TransformerClassifier"
    )
    loaded = trainforge.load(bundle)
    rows = pd.DataFrame({"message": ["win cash prize free see you", "see you later ok lunch"]})
    assert loaded.predict(rows).tolist() == ["spam", "ham"]
    frame = loaded.predict_frame(rows)
    assert list(frame.columns) == ["message", "prediction", "proba_ham", "proba_spam"]
    assert np.allclose(frame[["proba_ham", "proba_spam"]].sum(axis=1), 1.0)


def test_python_api_takes_3d_arrays_and_predicts_on_arrays(tmp_path):
    X, y = wave_series(200)
    result = trainforge.train(
        data=X[:160],
        y=y[:160],
        target="label",
        models=["series_linear", {"name": "rnn", "max_epochs": 8}],
        output=tmp_path / "runs",
    )
    assert result.best.task == "binary"
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert any("160 series of 20 steps x 2 channel(s)" in n for n in manifest["notices"])
    rnn = trainforge.load(result.path / "candidates" / "rnn" / "model")
    assert (rnn.predict(X[160:]) == y[160:]).mean() >= 0.9
    assert len(result.best.predict(X[160:])) == 40


def test_series_with_a_real_valued_target_are_a_regression(tmp_path):
    X, _ = wave_series(120)
    y = 3.0 * X[:, :, 0].mean(axis=1) + 0.1 * np.arange(len(X))  # 120 distinct real values
    result = trainforge.train(
        data=X, y=y, target="value", models=["series_linear"], output=tmp_path / "runs",
        tracking=False, quiet=True,
    )  # fmt: skip
    assert result.best.task == "regression"
    assert "rmse" in result.leaderboard.columns


def test_cli_trains_on_npz_and_predicts_an_npz(tmp_path):
    X, y = wave_series(150, seed=2)
    np.savez(tmp_path / "waves.npz", x_train=X[:120], y_train=y[:120], x_test=X[120:])
    np.savez(tmp_path / "new.npz", x=X[120:])
    spec = {
        "data": {"train": "waves.npz", "target": "y"},
        "task": "sequence_classification",
        "models": ["series_linear", {"name": "transformer", "max_epochs": 6}],
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    done = run_cli("train", "spec.yaml", "--out", "runs", "--quiet", cwd=tmp_path)
    assert done.code == 0, done.stderr
    run = Path(tmp_path, done.stdout.strip().splitlines()[-1].removeprefix("run: "))
    done = run_cli("predict", run, "new.npz", "-o", "pred.csv", cwd=tmp_path)
    assert done.code == 0, done.stderr
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert list(pred.columns[-3:]) == ["prediction", "proba_fast", "proba_slow"]
    assert (pred["prediction"] == y[120:]).mean() >= 0.85


def test_text_task_without_a_text_column_is_a_clear_error(tmp_path, small_csv):
    done = run_cli(
        "train", small_csv, "--target", "y", "--task", "text_classification", cwd=tmp_path
    )
    assert done.code == 2
    error = done.stderr.strip().splitlines()[-1]  # after the line naming the run folder
    assert error.startswith("error: task text_classification: the data has no text column")
    assert "(columns: 'x1', 'x2', 'c', 'flag')" in error


def test_sequences_with_nan_gaps_are_a_clear_error(tmp_path):
    rows = pd.DataFrame(np.ones((30, 8)), columns=[f"v{i}" for i in range(8)])
    rows.iloc[4, 2] = np.nan  # a gap; trailing NaN would just be a shorter series
    rows.iloc[5, 6:] = np.nan
    rows["label"] = ["a", "b"] * 15
    rows.to_csv(tmp_path / "wide.csv", index=False)
    done = run_cli(
        "train", "wide.csv", "--target", "label", "--task", "sequence_classification", cwd=tmp_path
    )
    assert done.code == 2
    assert "error: sequences: series 4 has NaN at step 2 (channel 0) before its end" in done.stderr
    assert "1 series have gaps" in done.stderr


def test_sequence_models_on_a_table_and_table_tasks_on_text_say_what_to_do(small_table):
    spec = build_spec(target="y", models=["rnn"])
    dataset = load_dataset(spec.data, "auto", 0, train=small_table)
    with pytest.raises(SpecError, match=r"models\[0\].name: rnn takes text or sequence data"):
        plan(spec.models, profile_of(dataset, 0))
    texts, labels = spam_texts(50)
    frame = pd.DataFrame({"label": labels, "message": texts, "n": np.arange(50) % 7})
    spec = build_spec(target="label")
    table = load_dataset(spec.data, "binary", 0, train=frame)  # asked for a table: no text role
    assert modality_of(table.schema)[0] == "table"
    with pytest.raises(DataError, match="columns gives the text role to 2 columns"):
        roles = build_spec(target="label", columns={"a": "text", "b": "text"})
        load_dataset(roles.data, "text_classification", 0, train=frame.assign(a=texts, b=texts))


def test_3d_arrays_and_npz_files_are_images_or_series_by_shape_unless_the_task_says(tmp_path):
    from trainforge.data.images import is_image_array, is_image_source

    wide, narrow = np.zeros((5, 28, 28)), np.zeros((5, 20, 2))
    assert is_image_array(wide) and is_image_array(np.zeros((5, 8, 8, 3)))
    assert not is_image_array(narrow)  # 20 steps x 2 channels
    assert is_image_array(narrow, "image_classification")
    assert not is_image_array(wide, "sequence_classification")
    np.savez_compressed(tmp_path / "images.npz", x_train=wide, y_train=np.arange(5))
    np.savez(tmp_path / "series.npz", x=narrow, y=np.arange(5))
    assert is_image_source(tmp_path / "images.npz")
    assert not is_image_source(tmp_path / "series.npz")
    assert not is_image_source(tmp_path / "images.npz", "sequence_regression")
    assert is_image_source(tmp_path / "series.npz", "image_classification")
    assert is_image_source(tmp_path) and not is_image_source(tmp_path / "table.csv")
