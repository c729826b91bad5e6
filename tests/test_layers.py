"""Networks written as layers in the spec (the ``net`` family, trainforge.models.layers): the
seed document's Keras model as YAML trains on adult and beats the baseline, is saved as its
layer list plus safetensors, reloads in a fresh process, and bad layers are one-line errors
naming the layer and field."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("torch", reason="the torch extra is not installed")

import trainforge  # noqa: E402
from conftest import DATA  # noqa: E402
from trainforge.errors import BundleError, SpecError  # noqa: E402

ADULT = DATA / "tabular" / "adult.csv"
TARGET = "income >50K"
# Keras: Dense(128, relu), Dropout(0.3), Dense(64, relu), Dropout(0.2), Dense(classes, softmax)
SEED_LAYERS = [
    {"type": "dense", "units": 128, "activation": "relu"},
    {"type": "dropout", "rate": 0.3},
    {"type": "dense", "units": 64, "activation": "relu"},
    {"type": "dropout", "rate": 0.2},
]


@pytest.fixture(scope="module")
def adult_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("layers")
    pd.read_csv(ADULT).sample(4000, random_state=0).to_csv(folder / "adult.csv", index=False)
    spec = {
        "data": {"train": "adult.csv", "target": TARGET},
        "models": ["baseline", {"name": "net", "layers": SEED_LAYERS, "max_epochs": 15}],
        "ensemble": False,
        "tracking": {"enabled": False},
    }
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    done = subprocess.run(
        [sys.executable, "-m", "trainforge", "train", "spec.yaml"],
        cwd=folder, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return folder, folder / done.stdout.strip().splitlines()[-1].removeprefix("run: ")


def test_the_seed_keras_model_as_yaml_layers_beats_the_baseline(adult_run):
    _, run = adult_run
    board = pd.read_csv(run / "leaderboard.csv").set_index("candidate")
    assert board.loc["net", "status"] == "ok"
    assert board.loc["net", "roc_auc"] >= 0.85 > board.loc["baseline", "roc_auc"] + 0.3
    saved = json.loads((run / "candidates/net/model/estimator/estimator.json").read_text())
    assert saved["config"]["input"] == "table" and saved["config"]["n_outputs"] == 2
    assert saved["config"]["layers"] == SEED_LAYERS


def test_it_reloads_in_a_fresh_process_predicting_identically(adult_run):
    folder, run = adult_run
    rows = pd.read_csv(ADULT).tail(200).drop(columns=TARGET)
    rows.to_csv(folder / "rows.csv", index=False)
    model = run / "candidates" / "net" / "model"
    done = subprocess.run(
        [sys.executable, "-m", "trainforge", "predict", str(model), "rows.csv"],
        cwd=folder, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr  # trainforge's own builder needs no trust
    fresh = pd.read_csv(io.StringIO(done.stdout))
    here = trainforge.load(model).predict_proba(rows)
    assert np.allclose(fresh[list(here.columns)].to_numpy(), here.to_numpy(), atol=1e-6)


@pytest.mark.parametrize(
    "tamper",
    [
        {"builder": "trainforge.cli:run"},  # a key naming code: never imported
        {"layers": [{"type": "os.system", "units": 8}]},
        {"layers": [{"type": "dense", "units": 200_000}]},  # weights no longer match
    ],
)
def test_a_tampered_layer_list_in_a_bundle_is_refused(adult_run, tmp_path, tamper):
    import shutil

    _, run = adult_run
    model = tmp_path / "model"
    shutil.copytree(run / "candidates" / "net" / "model", model)
    saved_file = model / "estimator" / "estimator.json"
    saved = json.loads(saved_file.read_text())
    saved["config"].update(tamper)
    saved_file.write_text(json.dumps(saved))
    info = json.loads((model / "bundle.json").read_text())  # an attacker fixes the hash too
    info["files"]["estimator/estimator.json"] = hashlib.sha256(saved_file.read_bytes()).hexdigest()
    (model / "bundle.json").write_text(json.dumps(info))
    with pytest.raises(BundleError) as refused:
        trainforge.load(model)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"type": "dense", "units": "x"}, r"models\[0\]\.layers\[3\]\.units: expected an integer >= 1, got 'x'"),
        ({"type": "dense"}, r"models\[0\]\.layers\[3\]\.units: dense needs units"),
        ({"type": "dropout", "rate": 1.5}, r"layers\[3\]\.rate: expected a number from 0"),
        ({"type": "conv9"}, r"layers\[3\]\.type: unknown layer 'conv9'; choose from dense"),
        ({"type": "dense", "units": 8, "size": 3}, r"layers\[3\]\.size: unknown field for dense"),
        ({"type": "activation", "name": "swish"}, r"layers\[3\]\.name: expected one of relu"),
        ({"type": "residual", "layers": [{"type": "dense", "units": 32}]},
         r"layers\[3\]\.layers: end at width 32 and the residual's input has width 64"),
    ],
)  # fmt: skip
def test_bad_layers_are_one_line_errors_naming_the_layer_and_field(layer, message, tmp_path):
    layers = [*SEED_LAYERS[:3], layer]
    with pytest.raises(SpecError, match=message) as refused:
        trainforge.train(
            data=str(ADULT), target=TARGET, output=tmp_path,
            models=[{"name": "net", "layers": layers}],
        )  # fmt: skip
    assert "\n" not in str(refused.value)
    assert not any(tmp_path.iterdir())


def test_layer_norm_residual_blocks_train_as_a_regressor(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(400, 4)), columns=list("abcd"))
    frame["y"] = 3 * frame["a"] - frame["b"] + rng.normal(scale=0.1, size=400)
    block = [{"type": "layer_norm"}, {"type": "dense", "units": 32, "activation": "gelu"}]
    layers = [{"type": "dense", "units": 32}, {"type": "residual", "layers": block}]
    result = trainforge.train(
        data=frame, target="y", models=[{"name": "net", "layers": layers, "max_epochs": 40}],
        output=tmp_path, tracking=False, quiet=True, ensemble=False,
    )  # fmt: skip
    assert result.leaderboard.set_index("candidate").loc["net", "r2"] > 0.8


@pytest.mark.parametrize("planted", ["weights.keras", "estimator/model.pkl", "folds.joblib"])
def test_a_planted_keras_or_pickle_file_in_a_bundle_is_refused(adult_run, tmp_path, planted):
    import shutil

    _, run = adult_run
    model = tmp_path / "model"
    shutil.copytree(run / "candidates" / "net" / "model", model)
    (model / planted).write_bytes(b"\x80\x04K\x01.")  # a pickle of 1
    with pytest.raises(BundleError, match="can run code when loaded") as refused:
        trainforge.load(model)
    assert planted.split("/")[-1] in str(refused.value) and "\n" not in str(refused.value)


# -- images, series and text -----------------------------------------------------------------

SEQUENCE_LAYERS = [
    {"type": "conv", "filters": 8, "kernel": 3, "activation": "relu"},
    {"type": "pool", "size": 2, "kind": "max"},
    {"type": "residual", "layers": [{"type": "dense", "units": 8, "activation": "gelu"}]},
    {"type": "positions"},
    {"type": "attention", "heads": 2, "ff": 16, "rate": 0.0},
    {"type": "layer_norm"},
    {"type": "recurrent", "units": 8, "bidirectional": True},
    {"type": "pool", "size": 2, "kind": "avg"},
    {"type": "global_pool", "kind": "avg"},
]


def test_every_sequence_layer_keeps_padding_out_of_the_prediction():
    import torch

    from trainforge.models.nets.layered import LayeredConfig, LayeredNet

    torch.manual_seed(0)
    final = [{**SEQUENCE_LAYERS[6], "sequences": False}]
    for layers in (SEQUENCE_LAYERS, SEQUENCE_LAYERS[:6] + final):
        net = LayeredNet(LayeredConfig("series", (2,), 3, tuple(layers))).eval()
        x = torch.randn(1, 7, 2)
        short = torch.cat([x, torch.ones(1, 7, 1)], dim=2)  # values, then the real-step mask
        long = torch.cat([short, torch.zeros(1, 6, 3)], dim=1)
        both = torch.cat([long, torch.cat([torch.randn(1, 13, 2), torch.ones(1, 13, 1)], 2)])
        torch.testing.assert_close(net(short), net(long), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(net(both)[:1], net(short), rtol=1e-5, atol=1e-6)


def test_series_as_layers_learn_and_reload(tmp_path):
    from test_sequences import wave_series

    from trainforge.models.net import NetSequenceClassifier

    X, y = wave_series(260)
    model = NetSequenceClassifier(
        layers=SEQUENCE_LAYERS, channels=2, max_epochs=12, learning_rate=3e-3, random_state=0
    ).fit(X[:200], y[:200])
    accuracy = (model.predict(X[200:]) == y[200:]).mean()
    assert accuracy >= 0.9, accuracy
    model.save_files(tmp_path)
    loaded = NetSequenceClassifier.load_files(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X[200:]), model.predict_proba(X[200:]))


def test_a_cnn_written_as_layers_trains_on_images_in_a_run(tmp_path):
    from test_images import make_images

    X, y = make_images(200)
    cnn = [
        {"type": "conv", "filters": 8, "activation": "relu"},
        {"type": "batch_norm"},
        {"type": "pool", "size": 2},
        {"type": "residual", "layers": [{"type": "conv", "filters": 8, "activation": "relu"}]},
        {"type": "global_pool", "kind": "max"},
        {"type": "dense", "units": 16, "activation": "relu"},
    ]
    result = trainforge.train(
        data=X, y=y, models=[{"name": "net", "layers": cnn, "batch_size": 16, "max_epochs": 15}],
        output=tmp_path, tracking=False, quiet=True, ensemble=False,
    )  # fmt: skip
    board = result.leaderboard.set_index("candidate")
    assert board.loc["net", "status"] == "ok" and board.loc["net", "accuracy"] >= 0.85
    saved = json.loads((result.path / "candidates/net/model/estimator/estimator.json").read_text())
    assert saved["config"]["input"] == "image" and saved["config"]["shape"] == [1, 8, 8]
    test_X, test_y = make_images(40, seed=1)
    assert (
        trainforge.load(result.path / "candidates/net/model").predict(test_X) == test_y
    ).mean() >= 0.85


def test_text_as_layers_embeds_tokens_then_attends(tmp_path):
    from test_sequences import spam_texts

    texts, labels = spam_texts(240)
    layers = [
        {"type": "embedding", "dim": 16},
        {"type": "positions"},
        {"type": "attention", "heads": 2},
        {"type": "global_pool"},
    ]
    result = trainforge.train(
        data=pd.DataFrame({"message": texts, "label": labels}), target="label",
        task="text_classification", models=[{"name": "net", "layers": layers, "max_epochs": 8}],
        output=tmp_path, tracking=False, quiet=True, ensemble=False,
    )  # fmt: skip
    board = result.leaderboard.set_index("candidate")
    assert board.loc["net", "accuracy"] >= 0.9
    assert (result.path / "candidates/net/model/estimator/tokenizer.json").is_file()


@pytest.mark.parametrize(
    ("input", "shape", "layers", "message"),
    [
        ("table", (5,), [{"type": "conv", "filters": 4}],
         r"layers\[0\] \(conv\): does not take rows of width 5; it reads images or sequences"),
        ("image", (1, 8, 8), [{"type": "conv", "filters": 4}],
         r"layers: they end in images of 4 channels, 8x8; end them with flatten or global_pool"),
        ("image", (1, 8, 8), [{"type": "dense", "units": 4}],
         r"layers\[0\] \(dense\): images need flatten or global_pool before dense"),
        ("tokens", (50,), [{"type": "dense", "units": 4}],
         r"layers\[0\] \(dense\): text comes as token ids; start with an embedding"),
        ("series", (2,), [{"type": "dense", "units": 6}, {"type": "attention", "heads": 4}],
         r"layers\[1\]\.heads: the sequence's width \(6\) must be a multiple of heads \(4\)"),
        ("image", (1, 4, 4), [{"type": "pool", "size": 8}, {"type": "flatten"}],
         r"layers\[0\]: the image shrinks to nothing here"),
    ],
)  # fmt: skip
def test_layers_that_do_not_fit_the_input_are_errors_naming_the_layer(
    input, shape, layers, message
):
    from trainforge.errors import DataError
    from trainforge.models.nets.layered import LayeredConfig, LayeredNet

    with pytest.raises(DataError, match=message):
        LayeredNet(LayeredConfig(input, shape, 2, tuple(layers)))
