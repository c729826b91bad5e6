"""ONNX export of image and sequence nets (trainforge.onnx_export.nets): the graph takes the
array a user has (images, series ending in NaN, token ids from the saved tokenizer) and matches
the Python model on held-out rows; what cannot export is refused in one line."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import onnxruntime
import pandas as pd
import pytest

import trainforge
from conftest import DATA
from trainforge.data.images import images_frame
from trainforge.data.sequences import sequence_frame
from trainforge.errors import DataError
from trainforge.onnx_export import export

SEQUENCES = DATA / "sequences"


@pytest.fixture(autouse=True)
def _no_importance(monkeypatch):
    """The runs here only make models to export: their permutation importance is left out."""
    monkeypatch.setattr("trainforge.supervised._importance", lambda *args, **kwargs: None)


def _train(tmp_path, name: str, **settings):
    return trainforge.train(
        output=tmp_path / "runs", tracking=False, quiet=True, ensemble=False, name=name, **settings
    )


def _run_graph(path, inputs: dict) -> dict:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, inputs)))


def _shortened(series: np.ndarray, seed: int = 1) -> np.ndarray:
    """Copies of ``series`` with their ends cut off (NaN), as shorter series are given."""
    rng = np.random.RandomState(seed)
    cut = series.astype(np.float32, copy=True)
    for row in cut:
        row[rng.randint(2, len(row)) :] = np.nan
    return cut


@pytest.fixture(scope="module")
def power():
    """ItalyPowerDemand, its larger published test part for training here."""
    with np.load(SEQUENCES / "italypowerdemand.npz") as found:
        return found["x_test"], found["y_test"].astype(str), found["x_train"]


def test_a_cnn_exports_with_its_pixel_normalisation_and_matches(tmp_path):
    with np.load(DATA / "images" / "fashion_mnist.npz") as found:
        images, labels = found["x_train"][:700], found["y_train"][:700]
        held_out = found["x_test"][:300]
    cnn = {"name": "cnn", "channels": [8, 16], "max_epochs": 1, "pooled_size": 7}
    run = _train(tmp_path, "cnn", data=images, y=labels, task="image_classification", models=[cnn])
    folder = run.path / "candidates" / "cnn" / "model"
    manifest = export(folder, tmp_path / "cnn.onnx", images_frame(images))
    assert manifest["inputs"] == [
        {"name": "images", "type": "float32", "shape": ["rows", 28, 28, 1]}
    ]
    assert manifest["verification"]["max_difference"] <= 1e-5
    got = _run_graph(tmp_path / "cnn.onnx", {"images": held_out[..., None].astype(np.float32)})
    model = trainforge.load(folder)
    expected = model.predict_proba(held_out).to_numpy()
    assert np.abs(got["probabilities"] - expected).max() <= 1e-5
    assert got["label"].tolist() == [str(v) for v in model.predict(held_out)]


@pytest.mark.parametrize(
    "family",
    [
        {"name": "rnn", "max_epochs": 2},  # the defaults: a bidirectional LSTM, its last states
        {"name": "rnn", "max_epochs": 2, "cell": "gru", "pooling": "max"},
        {"name": "transformer", "max_epochs": 2},
        {"name": "inception_time", "max_epochs": 2, "members": 2, "depth": 3, "filters": 8},
        {"name": "rnn", "max_epochs": 2, "rows": 200},
    ],
    ids=["lstm-last", "gru-max", "transformer", "inception_time", "bagged-lstm"],
)
def test_sequence_nets_export_with_their_masking_and_match(power, family, tmp_path):
    series, labels, held_out = power
    family = dict(family)
    name, rows = family["name"], family.pop("rows", len(series))
    run = _train(tmp_path, name, data=series[:rows], y=labels[:rows], target="label",
                 models=[family])  # fmt: skip
    folder = run.path / "candidates" / name / "model"
    manifest = export(folder, tmp_path / "net.onnx", sequence_frame(series))
    assert manifest["parts"] == (1 if rows > 500 else 5)  # few series: 5 bagged fold nets
    assert manifest["inputs"][0]["name"] == "series"
    assert manifest["inputs"][0]["shape"] == ["rows", 24, 1]
    rows = np.concatenate([held_out, _shortened(held_out)]).astype(np.float32)
    got = _run_graph(tmp_path / "net.onnx", {"series": rows})
    expected = trainforge.load(folder).predict_proba(rows).to_numpy()
    assert np.abs(got["probabilities"] - expected).max() <= 1e-5, name
    assert np.isnan(rows).any()  # shorter series were among the rows


def test_a_sequence_regressor_exports_its_values_in_target_units(tmp_path):
    rng = np.random.RandomState(0)
    series = rng.normal(size=(300, 20, 2)).astype(np.float32)
    target = 50.0 + 10.0 * series[:, :, 0].mean(axis=1) + series[:, -1, 1]
    data = sequence_frame(series).assign(y=target)
    run = _train(tmp_path, "reg", data=data, target="y", models=[{"name": "rnn", "max_epochs": 3}])
    folder = run.path / "candidates" / "rnn" / "model"
    export(folder, tmp_path / "reg.onnx", data.drop(columns="y"))
    rows = _shortened(rng.normal(size=(40, 20, 2)))
    got = _run_graph(tmp_path / "reg.onnx", {"series": rows})["value"].reshape(-1)
    expected = np.asarray(trainforge.load(folder).predict(sequence_frame(rows)), dtype=float)
    assert np.abs(got - expected).max() <= 1e-5 * np.std(target) * 10
    assert abs(float(np.mean(got)) - 50.0) < 5.0  # in the target's units, not standardised


def test_a_text_net_exports_token_ids_and_its_tokenizer(tmp_path):
    from tokenizers import Tokenizer

    sms = pd.read_csv(DATA / "text" / "sms_spam.tsv", sep="\t").sample(600, random_state=0)
    sms = sms[["message", "label"]]
    model = {"name": "transformer", "max_epochs": 2}
    run = _train(tmp_path, "text", data=sms, target="label", models=[model])
    folder = run.path / "candidates" / "transformer" / "model"
    manifest = export(folder, tmp_path / "text.onnx", sms.drop(columns="label"))
    assert manifest["inputs"][0]["name"] == "tokens" and manifest["inputs"][0]["type"] == "int64"
    # as a user in any language would: the tokenizer file, ids cut or padded with 0
    tokenizer = Tokenizer.from_file(str(tmp_path / manifest["tokenizer"]))
    texts = ["WINNER! claim your free cash prize now", "see you at lunch later?"]
    ids = np.zeros((len(texts), manifest["tokens"]), dtype=np.int64)
    for row, encoding in enumerate(tokenizer.encode_batch(texts, add_special_tokens=False)):
        kept = encoding.ids[: manifest["tokens"]]
        ids[row, : len(kept)] = kept
    got = _run_graph(tmp_path / "text.onnx", {"tokens": ids})
    frame = pd.DataFrame({"message": texts})
    expected = trainforge.load(folder).predict_proba(frame).to_numpy()
    assert np.abs(got["probabilities"] - expected).max() <= 1e-5


def test_rocket_is_refused_in_one_line_with_the_reason(power, tmp_path):
    series, labels, _ = power
    run = _train(
        tmp_path,
        "rocket",
        data=series[:200],
        y=labels[:200],
        target="label",
        models=[{"name": "rocket", "n_features": 1000}],
    )
    with pytest.raises(DataError, match="random dilated kernels") as refused:
        export(run.path / "candidates" / "rocket" / "model", tmp_path / "r.onnx", series)
    assert "\n" not in str(refused.value)
    assert not list(tmp_path.glob("r.onnx*"))  # nothing was written


def test_an_ensemble_of_a_net_and_a_table_model_is_refused():
    from trainforge.onnx_export import _networks

    net, table = SimpleNamespace(family="cnn"), SimpleNamespace(family="logistic_regression")
    assert _networks([(net, 0.5), (net, 0.5)]) is True
    assert _networks([(table, 1.0)]) is False
    with pytest.raises(DataError, match="no one ONNX input here; export a member instead"):
        _networks([(net, 0.5), (table, 0.5)])
