"""The training engine in process: determinism, early stopping, checkpoints and resume."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from trainforge.errors import CheckpointError, TrainingError
from trainforge.models.neural import MLPClassifier, MLPRegressor
from trainforge.training.callbacks.base import Callback
from trainforge.training.checkpoint import (
    MANIFEST,
    STATE,
    TENSORS,
    checkpoints,
    load_checkpoint,
)


def _data(n=600, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 8)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] + rng.normal(scale=0.7, size=n) > 0).astype(int)
    return X, y


def _sha(model) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(model.model_.state_dict().items()):
        digest.update(key.encode() + value.numpy().tobytes())
    return digest.hexdigest()


SMALL = dict(hidden_sizes=(32,), batch_size=32, max_epochs=12, patience=3, random_state=0)


def test_same_seed_gives_identical_weights_and_another_seed_does_not():
    X, y = _data()
    first, second = MLPClassifier(**SMALL).fit(X, y), MLPClassifier(**SMALL).fit(X, y)
    assert _sha(first) == _sha(second) and first.history_ == second.history_
    other = MLPClassifier(**{**SMALL, "random_state": 1}).fit(X, y)
    assert _sha(other) != _sha(first)


def test_early_stopping_restores_the_best_epoch(tmp_path):
    X, y = _data()
    model = MLPClassifier(**{**SMALL, "max_epochs": 200, "learning_rate": 0.01}).fit(
        X, y, checkpoint_dir=str(tmp_path)
    )
    losses = [h["val_loss"] for h in model.history_]
    assert model.n_epochs_ == model.best_epoch_ + 3 < 200
    assert min(losses) == losses[model.best_epoch_ - 1]
    from safetensors.torch import load_file

    best = load_file(tmp_path / "best.safetensors")
    for key, value in model.model_.state_dict().items():
        assert torch.equal(best[key], value)


class _Interrupt(Callback):
    name = "interrupt"

    def __init__(self, at_step):
        self.at_step = at_step

    def on_batch_end(self, loop):
        if loop.step == self.at_step:
            raise KeyboardInterrupt


def _interrupted_then_resumed(tmp_path, at_step, monkeypatch, corrupt=False, **extra):
    X, y = _data()
    params = dict(SMALL, **extra, checkpoint_every_steps=5)
    runtime = dict(checkpoint_dir=str(tmp_path), resume=True)
    original = MLPClassifier._callbacks

    def with_interrupt(self, *args):
        return [_Interrupt(at_step), *original(self, *args)]

    monkeypatch.setattr(MLPClassifier, "_callbacks", with_interrupt)
    with pytest.raises(KeyboardInterrupt):
        MLPClassifier(**params).fit(X, y, **runtime)
    monkeypatch.setattr(MLPClassifier, "_callbacks", original)
    if corrupt:
        newest = checkpoints(tmp_path)[-1]
        (newest / TENSORS).write_bytes(b"not what was saved")
    return MLPClassifier(**params).fit(X, y, **runtime)


@pytest.mark.parametrize("at_step", [3, 19, 57, 100])
def test_interrupted_fit_resumes_bit_identically(tmp_path, monkeypatch, at_step):
    X, y = _data()
    reference = MLPClassifier(**SMALL).fit(X, y)
    resumed = _interrupted_then_resumed(tmp_path, at_step, monkeypatch)
    assert _sha(resumed) == _sha(reference)
    assert resumed.history_ == reference.history_
    assert resumed.best_epoch_ == reference.best_epoch_


@pytest.mark.parametrize("precision", ["bf16", "16"])
def test_mixed_precision_trains_and_resumes_bit_identically(tmp_path, monkeypatch, precision):
    X, y = _data()
    full = MLPClassifier(**SMALL).fit(X, y)
    reference = MLPClassifier(**SMALL, precision=precision).fit(X, y)
    assert _sha(reference) != _sha(full)  # autocast really changed the arithmetic
    assert reference.score(X, y) > full.score(X, y) - 0.03
    resumed = _interrupted_then_resumed(tmp_path, 57, monkeypatch, precision=precision)
    assert _sha(resumed) == _sha(reference) and resumed.history_ == reference.history_
    if precision == "16":  # the gradient scaler's state travels with the checkpoint
        state = json.loads((checkpoints(tmp_path)[-1] / STATE).read_text())
        assert state["scaler"]["scale"] > 0 and state["scaler"]["growth_interval"] == 2000


def test_compiled_forward_learns_the_same_model_and_resumes_bit_identically(tmp_path, monkeypatch):
    X, y = _data(n=300)
    params = {**SMALL, "max_epochs": 3, "dropout": 0.0}  # compiled dropout draws other masks
    plain = MLPClassifier(**params).fit(X, y)
    compiled = MLPClassifier(**params, compile=True).fit(X, y)
    np.testing.assert_allclose(compiled.predict_proba(X), plain.predict_proba(X), atol=1e-5)

    X, y = _data()
    reference = MLPClassifier(**SMALL, compile=True).fit(X, y)
    resumed = _interrupted_then_resumed(tmp_path, 19, monkeypatch, compile=True)
    assert _sha(resumed) == _sha(reference) and resumed.history_ == reference.history_
    saved = load_checkpoint(checkpoints(tmp_path)[-1])
    assert not any("_orig_mod" in key for key in saved.tensors)  # the plain module is saved


def test_a_corrupt_newest_checkpoint_is_reported_and_the_previous_one_used(tmp_path, monkeypatch):
    X, y = _data()
    reference = MLPClassifier(**SMALL).fit(X, y)
    with pytest.warns(
        RuntimeWarning, match=r"checkpoint step-\d+ is corrupt .*previous checkpoint"
    ):
        resumed = _interrupted_then_resumed(tmp_path, 57, monkeypatch, corrupt=True)
    assert _sha(resumed) == _sha(reference)


def test_checkpoint_manifest_lists_sha256_of_every_file(tmp_path):
    X, y = _data()
    MLPClassifier(**SMALL).fit(X, y, checkpoint_dir=str(tmp_path))
    newest = checkpoints(tmp_path)[-1]
    manifest = json.loads((newest / MANIFEST).read_text())
    assert set(manifest) == {"tensors.safetensors", "state.json"}
    state = load_checkpoint(newest).state
    assert {"identity", "loop", "optimizer", "rng", "callbacks"} <= set(state)
    assert {"early_stopping", "lr_schedule", "checkpointing"} <= set(state["callbacks"])
    assert len(checkpoints(tmp_path)) == 2  # keep_last


def test_a_checkpoint_from_another_spec_is_refused_saying_what_differs(tmp_path):
    X, y = _data()
    resume = dict(checkpoint_dir=str(tmp_path), resume=True)
    MLPClassifier(**SMALL).fit(X, y, checkpoint_dir=str(tmp_path))
    with pytest.raises(CheckpointError, match=r"hidden_sizes: checkpoint '\(32,\)', now '\(16,\)'"):
        MLPClassifier(**{**SMALL, "hidden_sizes": (16,)}).fit(X, y, **resume)
    with pytest.raises(CheckpointError, match="data_sha256"):
        MLPClassifier(**SMALL).fit(X[:-1], y[:-1], **resume)


def test_a_diverging_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    X, y = _data()
    X[:, 0] *= 1e30  # overflows the loss in float32
    with pytest.raises(TrainingError, match="loss became"):
        MLPRegressor(**SMALL, learning_rate=10.0, optimizer="sgd").fit(
            X, X[:, 0], checkpoint_dir=str(tmp_path)
        )
    for path in checkpoints(tmp_path):
        assert torch.isfinite(load_checkpoint(path).tensors["loop.loss_sum"])


def test_non_finite_features_are_refused_before_training():
    X, y = _data()
    X[5, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MLPClassifier(**SMALL).fit(X, y)


def test_a_resumed_fit_replays_its_history_so_the_watchdog_judges_the_whole_curve(
    tmp_path, monkeypatch
):
    from trainforge.watchdog import Watchdog

    X, y = _data(n=120)  # few rows and a wide net overfit: the watchdog has something to say
    params = dict(
        hidden_sizes=(256,),
        batch_size=16,
        max_epochs=30,
        patience=40,
        learning_rate=0.01,
        dropout=0.0,
        random_state=0,
    )

    def watched(**extra):
        """``fit``'s runtime arguments with an epoch listener feeding a watchdog."""
        seen, raised = [], []
        dog = Watchdog(raised.append)

        def on_epoch(step, logs):
            seen.append((logs["epoch"], logs["val_loss"]))
            dog.epoch_end("mlp", logs["epoch"], 30, logs)

        return dict(on_epoch=on_epoch, **extra), seen, raised

    reference, seen_whole, raised_whole = watched()
    MLPClassifier(**params).fit(X, y, **reference)
    assert raised_whole and "epoch" in raised_whole[0]  # the curve has a best epoch to name

    params["checkpoint_every_steps"] = 5
    interrupted, _, _ = watched(checkpoint_dir=str(tmp_path), resume=True)
    original = MLPClassifier._callbacks
    monkeypatch.setattr(
        MLPClassifier, "_callbacks", lambda self, *a: [_Interrupt(100), *original(self, *a)]
    )
    with pytest.raises(KeyboardInterrupt):
        MLPClassifier(**params).fit(X, y, **interrupted)  # stopped in epoch 15 of 30
    monkeypatch.setattr(MLPClassifier, "_callbacks", original)
    resumed, seen_resumed, raised_resumed = watched(checkpoint_dir=str(tmp_path), resume=True)
    MLPClassifier(**params).fit(X, y, **resumed)
    assert seen_resumed == seen_whole  # epochs 1.. replayed first, then the rest
    assert raised_resumed == raised_whole


def test_where_a_fit_writes_is_an_argument_of_fit_not_a_parameter(tmp_path):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from trainforge.training.runtime import NAMES

    assert NAMES == {
        "checkpoint_dir",
        "resume",
        "callbacks",
        "on_epoch",
        "verbose",
        "data_parallel",
        "shard",
    }
    assert not NAMES & set(MLPClassifier().get_params())
    X, y = _data(n=200)
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", MLPClassifier(**SMALL))])
    pipe.fit(X, y, mlp__checkpoint_dir=str(tmp_path))  # routed like sample_weight
    assert checkpoints(tmp_path)
    saved = json.loads((checkpoints(tmp_path)[-1] / STATE).read_text())["identity"]
    assert "checkpoint_dir" not in saved and "device" not in saved
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) checkpoint_folder"):
        MLPClassifier(**SMALL).fit(X, y, checkpoint_folder=str(tmp_path))
    with pytest.raises(TypeError, match="on_epoch must be callable"):
        MLPClassifier(**SMALL).fit(X, y, on_epoch="print")
    with pytest.raises(TypeError, match="resume must be True or False, got 'no'"):
        MLPClassifier(**SMALL).fit(X, y, checkpoint_dir=str(tmp_path), resume="no")
    with pytest.raises(TypeError, match="data_parallel must be an int >= 1, got 0"):
        MLPClassifier(**SMALL).fit(X, y, data_parallel=0)


def test_an_estimator_saved_when_runtime_settings_were_parameters_still_loads(tmp_path):
    X, y = _data(n=200)
    model = MLPClassifier(**SMALL).fit(X, y)
    model.save_files(tmp_path)
    path = tmp_path / "estimator.json"
    saved = json.loads(path.read_text())
    old = dict(checkpoint_dir=None, resume=False, verbose=False, on_epoch=None, callbacks=None)
    saved["params"].update(old)  # what bundles written before held
    path.write_text(json.dumps(saved))
    loaded = MLPClassifier.load_files(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    saved["params"]["checkpoint_dir"] = "/somewhere"  # not a neutral value: refused
    path.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="sets checkpoint_dir, which MLPClassifier lacks"):
        MLPClassifier.load_files(tmp_path)
