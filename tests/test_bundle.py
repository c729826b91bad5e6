"""Saved models load without executing code from the file, and refuse files that changed."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trainforge
from conftest import run_cli
from trainforge.bundle import INFO_FILE, MODEL_FILE, load_bundle
from trainforge.data.read import file_sha256
from trainforge.errors import BundleError


class _Payload:
    """Unpickling this creates a marker file: proof that code from the file ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def trained(tmp_path, small_table):
    result = trainforge.train(
        data=small_table, target="y", models=["logistic_regression"], output=tmp_path / "runs"
    )
    return result, result.path / "candidates" / "logistic_regression" / "model"


def _replace_model_file(bundle: Path, payload: bytes, fix_hash: bool) -> None:
    (bundle / MODEL_FILE).write_bytes(payload)
    if fix_hash:  # an attacker who can write the file can rewrite the recorded hash too
        info = json.loads((bundle / INFO_FILE).read_text())
        info["files"][MODEL_FILE] = file_sha256(bundle / MODEL_FILE)
        (bundle / INFO_FILE).write_text(json.dumps(info))


def test_pickle_payload_is_refused_without_running_it(trained, tmp_path):
    _, bundle = trained
    marker = tmp_path / "pwned"
    _replace_model_file(bundle, pickle.dumps(_Payload(marker)), fix_hash=True)
    with pytest.raises(BundleError, match="is not a skops model file"):
        load_bundle(bundle)
    assert not marker.exists()


def test_changed_model_file_fails_the_recorded_hash(trained, tmp_path):
    _, bundle = trained
    marker = tmp_path / "pwned"
    _replace_model_file(bundle, pickle.dumps(_Payload(marker)), fix_hash=False)
    with pytest.raises(BundleError, match="does not match the sha256 recorded"):
        load_bundle(bundle)
    assert not marker.exists()


def test_skops_file_with_an_untrusted_type_is_refused(trained, tmp_path):
    import skops.io as sio

    _, bundle = trained
    _replace_model_file(bundle, sio.dumps({"run": os.system}), fix_hash=True)
    with pytest.raises(BundleError, match=r"does not trust \(.*system"):
        load_bundle(bundle)


def test_tampered_bundle_is_refused_by_the_cli_in_one_line(trained, tmp_path, small_csv):
    result, bundle = trained
    marker = tmp_path / "pwned"
    _replace_model_file(bundle, pickle.dumps(_Payload(marker)), fix_hash=True)
    out = tmp_path / "pred.csv"
    done = run_cli("predict", result.path, small_csv, "-o", out, cwd=tmp_path)
    assert done.code == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "not a skops model file" in done.stderr
    assert not marker.exists() and not out.exists()


def test_bundle_without_info_or_with_unknown_format_is_refused(trained):
    _, bundle = trained
    info = json.loads((bundle / INFO_FILE).read_text())
    (bundle / INFO_FILE).write_text(json.dumps({**info, "format": "other/9"}))
    with pytest.raises(BundleError, match="format 'other/9'"):
        load_bundle(bundle)
    (bundle / INFO_FILE).unlink()
    with pytest.raises(BundleError, match="not a trainforge model"):
        load_bundle(bundle)


def test_fresh_process_predicts_exactly_what_the_in_memory_model_did(
    trained, tmp_path, small_table
):
    result, _ = trained
    rows = small_table.drop(columns="y")
    rows.to_csv(tmp_path / "rows.csv", index=False)
    expected = result.best.predict_proba(rows).to_numpy()
    script = (
        "import sys, numpy as np, trainforge\n"
        "m = trainforge.load(sys.argv[1])\n"
        "np.save(sys.argv[3], m.predict_proba(sys.argv[2]).to_numpy())\n"
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(result.path),
            str(tmp_path / "rows.csv"),
            str(tmp_path / "p.npy"),
        ],
        check=True,
    )
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), expected)


LOAD_AND_LIST = """
import json, sys
import trainforge
predicted = trainforge.load(sys.argv[1]).predict(sys.argv[2]).tolist()
torch_loaded = "torch" in sys.modules
import skops.io._trusted_types as trusted
import sklearn.externals.array_api_compat.torch as adapter
print(json.dumps({"torch": torch_loaded, "predicted": predicted, "adapter": adapter.__path__ != [],
                  "trusted": sorted(trusted.SKLEARN_ESTIMATOR_TYPE_NAMES)}))
"""
PLAIN_LIST = "import json, skops.io._trusted_types as t; print(json.dumps(sorted(t.%s)))"


def test_loading_a_skops_bundle_does_not_import_torch_and_trusts_the_same_types(
    trained, tmp_path, small_table
):
    # importing skops walks scikit-learn's packages, and the walk's torch adapter imported
    # torch: 1.2 s of a 3.5 s `trainforge predict` of a random forest
    rows = tmp_path / "rows.csv"
    small_table.drop(columns="y").to_csv(rows, index=False)
    _, bundle = trained
    command = [sys.executable, "-c", LOAD_AND_LIST, str(bundle), str(rows)]
    said = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    assert said["torch"] is False
    assert said["adapter"] is True  # a later import finds the real adapter, not the stand-in
    assert said["predicted"] == trainforge.load(bundle).predict(rows).tolist()
    plain = [sys.executable, "-c", PLAIN_LIST % "SKLEARN_ESTIMATOR_TYPE_NAMES"]
    listed = json.loads(subprocess.run(plain, capture_output=True, text=True, check=True).stdout)
    assert said["trusted"] == listed and len(listed) > 100


@pytest.mark.parametrize(
    "name", ["RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
             "ExtraTreesRegressor"],
)  # fmt: skip
def test_a_forest_saves_its_trees_in_one_array_file_and_predicts_the_same_after(tmp_path, name):
    import zipfile

    from trainforge.models import compact, forest

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = (X[:, 0] + rng.normal(size=300) > 0).astype(int) if "Class" in name else X[:, 1]
    model = getattr(forest, name)(n_estimators=40, min_samples_leaf=3, random_state=0).fit(X, y)
    written = model.save_files(tmp_path / "estimator")
    assert sorted(written) == [compact.ESTIMATOR_FILE, compact.TREES_FILE]
    with zipfile.ZipFile(tmp_path / "estimator" / compact.ESTIMATOR_FILE) as archive:
        arrays = [n for n in archive.namelist() if n.endswith(".npy")]
    assert len(arrays) < 10  # one tree's settings, not 40 trees' arrays
    loaded = type(model).load_files(tmp_path / "estimator")
    assert len(loaded.estimators_) == 40
    assert [t.random_state for t in loaded.estimators_] == [
        t.random_state for t in model.estimators_
    ]
    rows = rng.normal(size=(100, 5))
    method = "predict_proba" if "Class" in name else "predict"
    assert np.array_equal(getattr(loaded, method)(rows), getattr(model, method)(rows))
    # a file whose node counts do not add up to its arrays is refused, not half-read
    path = tmp_path / "estimator" / compact.TREES_FILE
    with np.load(path, allow_pickle=False) as saved:
        arrays = {key: saved[key] for key in saved.files}
    np.savez(path, **{**arrays, "node_counts": arrays["node_counts"] + 1})
    with pytest.raises(ValueError, match="node counts do not match"):
        type(model).load_files(tmp_path / "estimator")
    # and one whose trees have another number of classes than the forest
    np.savez(path, **{**arrays, "n_classes": arrays["n_classes"] + 1})
    with pytest.raises(ValueError, match="do not fit the forest's shape"):
        type(model).load_files(tmp_path / "estimator")


def test_a_bagged_forest_bundle_loads_its_compact_folds_in_a_fresh_process(tmp_path, small_csv):
    done = run_cli(
        "train", small_csv, "--target", "y", "--models", "random_forest", "--trials", "0",
        "--no-ensemble", "--no-tracking", "--out", tmp_path / "runs", cwd=tmp_path,
    )  # fmt: skip
    assert done.code == 0, done.stderr
    model = next((tmp_path / "runs").glob("*/candidates/random_forest/model"))
    folds = sorted(model.glob("folds/*/estimator/trees.npz"))
    info = json.loads((model / "folds" / "0" / INFO_FILE).read_text())
    assert len(folds) == 8, sorted(p.relative_to(model) for p in model.rglob("*"))
    assert info["estimator"] == "trainforge.models.forest.RandomForestClassifier"
    out = tmp_path / "pred.csv"
    done = run_cli("predict", model, small_csv, "-o", out, cwd=tmp_path)
    assert done.code == 0, done.stderr
    expected = trainforge.load(model).predict_frame(pd.read_csv(small_csv))
    got = pd.read_csv(out)
    assert np.allclose(got.filter(like="proba_").to_numpy(), expected.filter(like="proba_"))
