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
    assert saved["config"]["builder"] == "trainforge.models.layers:build"
    assert saved["config"]["args"]["layers"] == SEED_LAYERS


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


def test_a_bundle_naming_another_function_of_trainforge_as_builder_is_refused(adult_run, tmp_path):
    import shutil

    _, run = adult_run
    model = tmp_path / "model"
    shutil.copytree(run / "candidates" / "net" / "model", model)
    saved_file = model / "estimator" / "estimator.json"
    saved = json.loads(saved_file.read_text())
    saved["config"]["builder"] = "trainforge.cli:run"  # would run the CLI on load
    saved_file.write_text(json.dumps(saved))
    info = json.loads((model / "bundle.json").read_text())  # an attacker fixes the hash too
    info["files"]["estimator/estimator.json"] = hashlib.sha256(saved_file.read_bytes()).hexdigest()
    (model / "bundle.json").write_text(json.dumps(info))
    with pytest.raises(BundleError, match="refusing to import trainforge.cli unless you trust"):
        trainforge.load(model)


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
