"""Hostile files and faults (issue 15): refuse in one line, stay inside the bundle, never crash,
never look finished when not. The whole corpus runs in benchmarks/hostile.py; a sample here."""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hostile_corpus as corpus
import trainforge
from conftest import make_small_table, run_cli
from trainforge.errors import BundleError, CheckpointWarning, RunError


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> tuple[dict[str, Path], Path]:
    folder = tmp_path_factory.mktemp("bases")
    return corpus.base_bundles(folder), folder / "rows.csv"


def _copy(base: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy" / "model"
    shutil.copytree(base, target, symlinks=True)
    (tmp_path / corpus.OUTSIDE).write_text("outside\n")
    return target


def _refused(bundle: Path, rows: Path, *needles: str) -> str:
    outcome = corpus.load_in_child(bundle, rows)
    assert outcome.kind == "refused", outcome
    for needle in needles:
        assert needle in outcome.detail, outcome.detail
    return outcome.detail


# -- 1. trees whose indices point out of range ---------------------------------------------


@pytest.mark.parametrize("kind", ["tree", "forest", "hgb"])
def test_a_tree_with_out_of_range_indices_is_refused_not_a_segfault(bases, tmp_path, kind):
    bundles, rows = bases
    corrupted = []
    for seed in range(3):
        target = tmp_path / f"s{seed}"
        target.mkdir()
        corrupted.append(_copy(bundles[kind], target))
        corpus.corrupt_tree(corrupted[-1], random.Random(seed))
    for outcome in corpus.load_all_in_child(corrupted, rows):
        assert outcome.kind == "refused" and "malformed" in outcome.detail, outcome


# -- 2. nothing outside the bundle ---------------------------------------------------------


def test_a_run_manifest_naming_a_best_candidate_outside_is_refused(bases, tmp_path):
    bundles, _ = bases
    run = bundles["logistic"].parent.parent.parent
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["best"]["candidate"] = "../../../outside/x"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunError, match="its best candidate is not"):
        trainforge.load(copy)


@pytest.mark.parametrize(
    "field, value",
    [
        ("files", {"../../../../../../../../etc/hostname": "0" * 64}),
        ("files", {"/etc/hostname": "0" * 64}),
        ("weights", {"../../../../../../outside/x/model": 1.0}),
    ],
)
def test_paths_a_bundle_names_must_stay_inside_it(bases, tmp_path, field, value):
    bundles, rows = bases
    bundle = _copy(bundles["ensemble" if field == "weights" else "logistic"], tmp_path)
    info = json.loads((bundle / "bundle.json").read_text())
    info[field] = {**info.get(field, {}), **value} if field == "files" else value
    (bundle / "bundle.json").write_text(json.dumps(info))
    _refused(bundle, rows, "refusing")


@pytest.mark.parametrize("name", ["model.skops", "estimator", "bundle.json", "."])
def test_symbolic_links_in_a_bundle_are_refused(bases, tmp_path, name):
    bundles, rows = bases
    bundle = _copy(bundles["lightgbm"], tmp_path)
    if name == ".":
        link = tmp_path / "link"
        os.symlink(bundle, link)
        bundle = link
    else:
        target = bundle / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.symlink(tmp_path / corpus.OUTSIDE, target)
    _refused(bundle, rows, "symbolic link")


# -- 3. crashes become refusals ------------------------------------------------------------


def test_a_pickled_object_array_inside_the_skops_file_is_refused(bases, tmp_path):
    bundles, rows = bases
    bundle = _copy(bundles["logistic"], tmp_path)
    corpus.object_array_in_skops(bundle, random.Random(0))
    _refused(bundle, rows)
    assert not Path("/tmp/trainforge-pwned").exists()


def test_an_estimator_entry_added_to_a_plain_bundle_is_refused(bases, tmp_path):
    bundles, rows = bases
    bundle = _copy(bundles["logistic"], tmp_path)
    info = json.loads((bundle / "bundle.json").read_text())
    info["estimator"] = "trainforge.models.boosting.LightGBMClassifier"
    (bundle / "bundle.json").write_text(json.dumps(info))
    _refused(bundle, rows, "estimator/ is missing")


def test_an_oversized_network_config_is_refused_before_allocating(bases, tmp_path):
    bundles, rows = bases
    bundle = _copy(bundles["mlp"], tmp_path)
    path = bundle / "estimator" / "estimator.json"
    saved = json.loads(path.read_text())
    saved["config"]["hidden"] = [200000, 200000]
    path.write_text(json.dumps(saved))
    corpus._rehash(bundle)
    _refused(bundle, rows, "does not match its weights")


@pytest.mark.parametrize(
    "key, value", [("predict_proba", "x"), ("classes_", {"a": 1}), ("n_features_in_", "x")]
)
def test_fitted_state_is_a_closed_list_of_typed_fields(bases, tmp_path, key, value):
    bundles, rows = bases
    bundle = _copy(bundles["mlp"], tmp_path)
    path = bundle / "estimator" / "estimator.json"
    saved = json.loads(path.read_text())
    saved["fitted"][key] = value
    path.write_text(json.dumps(saved))
    corpus._rehash(bundle)
    _refused(bundle, rows, "estimator cannot be loaded")


@pytest.mark.parametrize(
    "kind, name", [("mlp", "estimator/weights.safetensors"), ("ensemble", "model.skops")]
)
def test_a_pickle_where_weights_or_a_meta_model_belong_is_refused(bases, tmp_path, kind, name):
    bundles, rows = bases
    bundle = _copy(bundles[kind], tmp_path)
    target = next(p for p in bundle.rglob(Path(name).name))
    target.write_bytes(pickle.dumps(corpus._Payload()))
    corpus._rehash(target.parent.parent if target.parent.name == "estimator" else target.parent)
    _refused(bundle, rows)
    assert not Path("/tmp/trainforge-pwned").exists()


# -- 4. signatures -------------------------------------------------------------------------


def test_a_signed_bundle_loads_with_its_key_and_is_refused_when_changed(bases, tmp_path):
    bundles, rows = bases
    bundle = _copy(bundles["lightgbm"], tmp_path)
    key = tmp_path / "key"
    key.write_bytes(os.urandom(32))
    done = run_cli("sign", bundle, "--key", key, cwd=tmp_path)
    assert done.code == 0, done.stderr
    assert trainforge.load(bundle, key=key).predict(rows).shape == (200,)
    other = tmp_path / "other"
    other.write_bytes(os.urandom(32))
    with pytest.raises(BundleError, match="signature does not match"):
        trainforge.load(bundle, key=other)
    info = json.loads((bundle / "bundle.json").read_text())
    info["threshold"] = 0.01  # a change the sha256 values would not catch
    (bundle / "bundle.json").write_text(json.dumps(info))
    with pytest.raises(BundleError, match="signature does not match"):
        trainforge.load(bundle, key=key)
    unsigned = _copy(bundles["logistic"], tmp_path / "u")
    done = run_cli("predict", unsigned, rows, "--verify-key", key, cwd=tmp_path)
    assert done.code == 2 and "is not signed" in done.stderr


# -- 5-7. checkpoints -----------------------------------------------------------------------


@pytest.mark.parametrize("value", [[], None])
def test_a_checkpoint_manifest_of_the_wrong_type_falls_back(tmp_path, value):
    X, y, model, reference = corpus.interrupted_fit(tmp_path)
    newest = corpus._newest(tmp_path)
    (newest / "manifest.json").write_text(json.dumps(value))
    with pytest.warns(CheckpointWarning, match="using the previous checkpoint"):
        resumed = model().fit(X, y, checkpoint_dir=str(tmp_path), resume=True)
    assert all(np.array_equal(reference[k], v) for k, v in corpus._weights(resumed).items())


@pytest.mark.parametrize("mutation", ["state", "tensors", "pickle"])
def test_a_checkpoint_that_verifies_but_cannot_be_restored_falls_back(tmp_path, mutation):
    outcome = corpus.resume_mutated(tmp_path, mutation, seed=3)
    assert outcome.kind == "fallback", outcome


def test_a_running_loss_that_is_not_one_number_falls_back(tmp_path):
    outcome = corpus.resume_mutated(tmp_path, "tensors", seed=22)  # loop.loss_sum: 3 zeros
    assert "loop.loss_sum" in outcome.detail and outcome.kind == "fallback", outcome


def test_a_checkpoint_warning_reaches_the_terminal_and_the_manifest(tmp_path):
    make_small_table(300).to_csv(tmp_path / "t.csv", index=False)
    spec = {
        "data": {"train": "t.csv", "target": "y"},
        "models": [{"name": "mlp", "max_epochs": 4, "checkpoint_every_steps": 3}],
        "ensemble": False,
        "tracking": {"enabled": False},
    }
    (tmp_path / "spec.yaml").write_text(json.dumps(spec))
    first = run_cli("train", "spec.yaml", "--out", "runs", cwd=tmp_path)
    assert first.code == 0, first.stderr
    run = next((tmp_path / "runs").glob("*/manifest.json")).parent
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "candidates" / "mlp" / "metrics.json").unlink()  # as if killed before it finished
    checkpoints = run / "candidates" / "mlp" / "checkpoints" / "fold-0"
    newest = sorted(checkpoints.glob("step-*"))[-1]
    (newest / "manifest.json").write_text("[]")
    done = run_cli("resume", run.name, "--out", "runs", cwd=tmp_path)
    assert done.code == 0, done.stderr
    assert "warning: mlp: checkpoint" in done.stderr
    kept = json.loads((run / "manifest.json").read_text())
    assert kept["status"] == "completed"
    assert any("using the previous checkpoint" in w for w in kept["warnings"])


# -- 11-19. bad input ----------------------------------------------------------------------


def test_importance_on_thousands_of_columns_is_bounded(tmp_path, monkeypatch):
    import trainforge.artifacts

    monkeypatch.setattr(trainforge.artifacts, "IMPORTANCE_SECONDS", 12.0)  # 30 s by default
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(50, 5000)), columns=[f"x{i}" for i in range(5000)])
    table["y"] = np.where(table.x0 > 0, "a", "b")
    import time

    started = time.monotonic()
    result = trainforge.train(
        data=table,
        target="y",
        models=["logistic_regression"],
        output=tmp_path,
        tracking=False,
        ensemble=False,
        quiet=True,
    )
    assert time.monotonic() - started < 60  # unbounded, it ran for more than 600 s
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert any("seeded sample of 200 of the 5000 input columns" in n for n in manifest["notices"])


def test_a_header_of_twelve_thousand_columns_is_read(tmp_path):
    names = [f"x{i}" for i in range(12_000)]
    frame = pd.DataFrame(np.zeros((3, len(names))), columns=names)
    frame.to_csv(tmp_path / "wide.csv", index=False)
    from trainforge.data.read import read_table

    assert read_table(tmp_path / "wide.csv").shape == (3, 12_000)


def test_a_class_too_small_to_validate_is_an_error(tmp_path):
    table = make_small_table(400)
    table["y"] = "yes"
    table.loc[7, "y"] = "no"
    table.to_csv(tmp_path / "t.csv", index=False)
    done = run_cli("train", "t.csv", "--target", "y", "--quiet", cwd=tmp_path)
    assert done.code == 2 and "class 'no' of 'y' has 1 row(s): too few" in done.stderr


def test_values_that_overflow_name_their_column(tmp_path):
    table = make_small_table(60)
    table.loc[4, "x2"] = 1e308
    table.to_csv(tmp_path / "t.csv", index=False)
    done = run_cli("train", "t.csv", "--target", "y", "--quiet", cwd=tmp_path)
    assert done.code == 2 and "column 'x2' has 1 value(s) too large to compute with" in done.stderr


def test_an_output_folder_that_climbs_out_is_said(tmp_path):
    make_small_table(60).to_csv(tmp_path / "t.csv", index=False)
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    done = run_cli(
        "train",
        "../../t.csv",
        "--target",
        "y",
        "--models",
        "logistic_regression",
        "--out",
        "../../elsewhere",
        "--no-tracking",
        cwd=work,
    )
    assert done.code == 0, done.stderr
    where = (tmp_path / "elsewhere").resolve()
    assert (
        f"output ../../elsewhere is outside the working folder: runs go to {where}" in done.stderr
    )


def test_models_that_name_nothing_are_refused(tmp_path):
    make_small_table(60).to_csv(tmp_path / "t.csv", index=False)
    done = run_cli("train", "t.csv", "--target", "y", "--models", ",", cwd=tmp_path)
    assert done.code == 2 and "--models ',' names no model" in done.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("trained")
    make_small_table(80).to_csv(folder / "t.csv", index=False)
    done = run_cli(
        "train",
        "t.csv",
        "--target",
        "y",
        "--models",
        "logistic_regression",
        "--no-tracking",
        "--no-ensemble",
        "--out",
        "runs",
        cwd=folder,
    )
    assert done.code == 0, done.stderr
    return next((folder / "runs").glob("*/manifest.json")).parent


def test_predict_on_a_folder_says_it_is_a_folder(trained, tmp_path):
    done = run_cli("predict", trained, tmp_path, cwd=tmp_path)
    assert done.code == 2 and "is a folder; give a table file" in done.stderr


@pytest.mark.parametrize("place", ["folder", "missing", "under_a_file"])
def test_predict_and_report_to_places_they_cannot_write(trained, tmp_path, place):
    make_small_table(10).drop(columns="y").to_csv(tmp_path / "rows.csv", index=False)
    if place == "folder":
        (tmp_path / "out").mkdir()
        output = "out"
    elif place == "missing":
        output = "nowhere/p.csv"
    else:
        (tmp_path / "plain").write_text("a file, not a folder\n")
        output = "plain/p.csv"
    if place != "folder":
        done = run_cli("predict", trained, "rows.csv", "-o", output, cwd=tmp_path)
        assert (
            done.code == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr
        )
    report = output.replace(".csv", ".html") if place != "folder" else output
    done = run_cli("report", trained, "-o", report, cwd=tmp_path)
    assert done.code == 2 and "Traceback" not in done.stderr, done.stderr
    assert not list(tmp_path.rglob(".*.tmp"))


def test_resume_without_a_spec_or_with_a_broken_one_is_one_line(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["status"] = "failed"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    (copy / "spec.yaml").write_text("data: [unclosed")
    done = run_cli("resume", copy, cwd=tmp_path)
    assert done.code == 2 and "its spec.yaml is not valid YAML" in done.stderr
    (copy / "spec.yaml").unlink()
    done = run_cli("resume", copy, cwd=tmp_path)
    assert done.code == 2 and "has no readable spec.yaml" in done.stderr


# -- the corpus: a fast sample (the whole one: benchmarks/hostile.py) -------------------------


def test_a_sample_of_the_bundle_corpus_never_crashes(bases, tmp_path):
    bundles, rows = bases
    (tmp_path / corpus.OUTSIDE).write_text("outside\n")
    mutated = []
    for index, mutation in enumerate(corpus.BUNDLE_MUTATIONS):
        kind = list(bundles)[index % len(bundles)]
        mutated.append((kind, *corpus.mutated_bundle(bundles[kind], tmp_path, mutation, index)))
    loaded = corpus.load_all_in_child([bundle for _, bundle, _ in mutated], rows)
    outcomes = [(kind, said, o) for (kind, _, said), o in zip(mutated, loaded, strict=True)]
    crashed = [o for o in outcomes if o[2].kind == "crashed"]
    assert not crashed, crashed
    assert not Path("/tmp/trainforge-pwned").exists()


def test_a_sample_of_the_checkpoint_corpus_falls_back_correctly(tmp_path):
    outcomes = [
        (name, corpus.resume_mutated(tmp_path, name, seed))
        for seed, name in enumerate(corpus.CHECKPOINT_MUTATIONS)
    ]
    # flipped tensor values under a rewritten manifest are a valid checkpoint of other weights
    tampered = {"flip_rehash": ("wrong",)}
    bad = [
        (n, o) for n, o in outcomes if o.kind not in ("fallback", "refused", *tampered.get(n, ()))
    ]
    assert not bad, bad


# -- kills through the CLI, tracking on ------------------------------------------------------

TIMING = ["fit_seconds", "predict_ms_per_1k", "size_kb"]


def _board(run: Path) -> pd.DataFrame:
    board = pd.read_csv(run / "leaderboard.csv")
    return board.drop(columns=[c for c in TIMING if c in board.columns])


def kill_and_resume(folder: Path, fraction: float, command: list[str], store: str) -> str:
    """Start a training, SIGKILL it at ``fraction`` of a whole run's duration, resume it until
    it completes. Returns what happened."""
    import signal
    import subprocess
    import sys
    import time

    duration = float((folder / "duration").read_text())
    runs = folder / f"runs-{fraction:.3f}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    process = subprocess.Popen(
        [sys.executable, "-m", "trainforge", *command, "--out", str(runs)],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(duration * fraction)
    process.send_signal(signal.SIGKILL)
    process.wait()
    found = list(runs.glob("*/manifest.json"))
    if not found:
        return "killed before the run existed"
    run = found[0].parent
    for _ in range(3):
        status = json.loads((run / "manifest.json").read_text())["status"]
        if status == "completed":
            break
        done = subprocess.run(
            [sys.executable, "-m", "trainforge", "resume", str(run)],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    return str(run)


def test_runs_killed_at_random_moments_resume_to_the_same_leaderboard(tmp_path):
    import subprocess
    import sys
    import time

    from mlflow.tracking import MlflowClient

    make_small_table(300).to_csv(tmp_path / "t.csv", index=False)
    store = f"sqlite:///{tmp_path / 'store.db'}"
    command = [
        "train",
        "t.csv",
        "--target",
        "y",
        "--models",
        "logistic_regression,lightgbm",
        "--seed",
        "3",
    ]
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    started = time.monotonic()
    whole = subprocess.run(
        [sys.executable, "-m", "trainforge", *command, "--out", "whole"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert whole.returncode == 0, whole.stderr
    (tmp_path / "duration").write_text(str(time.monotonic() - started))
    reference = _board(next((tmp_path / "whole").glob("*/manifest.json")).parent)
    rng = random.Random(11)
    fractions = [0.85, 0.97, rng.uniform(0.3, 0.99)]
    for fraction in fractions:  # 0.85 and 0.97: inside the closing steps
        outcome = kill_and_resume(tmp_path, fraction, command, store)
        if outcome.startswith("killed before"):
            continue
        run = Path(outcome)
        assert json.loads((run / "manifest.json").read_text())["status"] == "completed"
        pd.testing.assert_frame_equal(_board(run), reference)
    client = MlflowClient(store)
    running = [
        r.info.run_id
        for e in client.search_experiments()
        for r in client.search_runs([e.experiment_id])
        if r.info.status == "RUNNING"
    ]
    assert running == []
