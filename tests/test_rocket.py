"""ROCKET-family estimators (trainforge.models.rocket): unequal lengths, several channels,
seeds, saving without pickle, refusing malformed files, and their place in the ladder."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import trainforge
from trainforge.data.sequences import series_lengths
from trainforge.models import rocket_features
from trainforge.models.rocket import RocketClassifier, RocketRegressor

FEW = 2_000  # features: enough to learn the synthetic problems, fast to fit


def _waves(n: int, seed: int, channels: int = 3, unequal: bool = True):
    """Series whose class is the frequency of a wave in channel 1 (the others are noise),
    60 to 100 steps long (NaN after the end), and a regression target: its amplitude."""
    rng = np.random.RandomState(seed)
    X = np.full((n, 100, channels), np.nan, dtype=np.float32)
    y = rng.randint(2, size=n)
    amplitude = rng.uniform(0.5, 2.0, size=n)
    lengths = rng.randint(60, 101, size=n) if unequal else np.full(n, 100)
    for i in range(n):
        t = np.arange(lengths[i])
        X[i, : lengths[i]] = rng.normal(scale=0.3, size=(lengths[i], channels))
        wave = np.sin(2 * np.pi * t / (8 if y[i] else 20) + rng.uniform(0, 6.3))
        X[i, : lengths[i], min(1, channels - 1)] += amplitude[i] * wave
    return X, y, amplitude


def test_unequal_lengths_and_several_channels_are_learned():
    X, y, _ = _waves(120, 0)
    X_test, y_test, _ = _waves(80, 1)
    assert len(set(series_lengths(X))) > 20
    model = RocketClassifier(n_features=FEW, channels=3).fit(X, y)
    proba = model.predict_proba(X_test)
    assert proba.shape == (80, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert (model.predict(X_test) == y_test).mean() >= 0.95
    # flattened rows with the channels interleaved are the same series
    flat = RocketClassifier(n_features=FEW, channels=3).fit(X.reshape(120, -1), y)
    np.testing.assert_array_equal(flat.predict_proba(X_test.reshape(80, -1)), proba)


def test_a_series_is_pooled_over_its_own_steps_only():
    X, _, _ = _waves(30, 2, channels=1, unequal=False)
    kernels = rocket_features.fit(X, series_lengths(X), FEW, seed=0)
    short = X[:1, :70]
    padded = X[:1].copy()
    padded[:, 70:] = np.nan  # the same 70 steps, then the end of the series
    features = rocket_features.transform(short, np.array([70]), kernels)
    np.testing.assert_allclose(
        rocket_features.transform(padded, np.array([70]), kernels), features, rtol=1e-6
    )


def test_the_same_seed_gives_the_same_features_and_predictions():
    X, y, _ = _waves(60, 3)
    first = RocketClassifier(n_features=FEW, channels=3, random_state=7).fit(X, y)
    second = RocketClassifier(n_features=FEW, channels=3, random_state=7).fit(X, y)
    other = RocketClassifier(n_features=FEW, channels=3, random_state=8).fit(X, y)
    np.testing.assert_array_equal(first._features(X), second._features(X))
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert not np.array_equal(first._features(X), other._features(X))


def test_probabilities_stay_away_from_0_and_1_when_held_out_scores_separate_perfectly():
    X, y, _ = _waves(60, 4, unequal=False)
    model = RocketClassifier(n_features=FEW, channels=3).fit(X, y)
    proba = model.predict_proba(X)
    assert (model.predict(X) == y).all()
    assert proba.max() < 1.0 - 1e-4  # Platt-smoothed targets bound the temperature


def test_regression_learns_an_amplitude():
    X, _, amplitude = _waves(150, 5)
    X_test, _, amplitude_test = _waves(60, 6)
    model = RocketRegressor(n_features=FEW, channels=3).fit(X, amplitude)
    assert model.score(X_test, amplitude_test) > 0.8


def _run(tmp_path, X, y, task, models=None):
    settings = {"models": models} if models else {}
    return trainforge.train(
        {"task": task, **settings},
        data=X,
        y=y,
        target="label",
        output=tmp_path / "runs",
        tracking=False,
    )


def test_a_saved_model_predicts_the_same_in_a_fresh_process_without_pickle(tmp_path):
    X, y, _ = _waves(60, 7)
    result = _run(
        tmp_path, X, y, "sequence_classification", [{"name": "rocket", "n_features": FEW}]
    )
    X_test, _, _ = _waves(20, 8)
    np.save(tmp_path / "x.npy", X_test)
    expected = result.best.predict_proba(X_test).to_numpy()
    folder = result.path / "candidates" / "rocket" / "model"
    assert len(list((folder / "folds").iterdir())) == 5  # few series: bagged over 5 folds
    files = sorted(p.name for p in (folder / "folds" / "0" / "estimator").iterdir())
    assert files == ["arrays.npz", "estimator.json"]
    code = (
        "import numpy as np, pickle, sys\n"
        "pickle.loads = pickle.load = None  # no pickle may be read\n"
        "from trainforge.bundle import load_bundle\n"
        f"model = load_bundle({str(folder)!r})\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r}, allow_pickle=False)\n"
        "np.save(sys.argv[1], model.predict_proba(x).to_numpy())\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "p.npy")], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), expected)


def _no_channel(arrays):
    arrays["series.channel_counts"][:] = 1
    arrays["series.channels"] = np.full(len(arrays["series.channel_counts"]), 99)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(coef=np.zeros((1, 5), np.float32)), "ridge weights must be"),
        (_no_channel, "channel indices do not match"),
        (lambda a: a["diff.dilations"].fill(0), "dilations and bias counts must be positive"),
        (lambda a: a.update(mean=np.zeros(3, np.float32)), "'mean' must hold one value per"),
        (lambda a: a.update({"series.biases": np.zeros(2, object)}), "not a readable array"),
        (lambda a: a.pop("intercept"), "ridge weights must be"),
        (lambda a: a["series.dilations"].fill(10**9), "a dilation is longer than series"),
    ],
)
def test_a_malformed_array_file_is_refused_in_one_line(tmp_path, change, message):
    X, y, _ = _waves(30, 9, channels=1)
    model = RocketClassifier(n_features=FEW).fit(X, y)
    folder = tmp_path / "estimator"
    model.save_files(folder)
    with np.load(folder / "arrays.npz") as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    with open(folder / "arrays.npz", "wb") as file:
        np.savez(file, **arrays)
    with pytest.raises(ValueError, match=message):
        RocketClassifier.load_files(folder)


def test_the_sequence_ladder_starts_with_rocket_and_leaves_nets_out_of_tiny_data(tmp_path):
    X, y, _ = _waves(60, 10)
    result = _run(tmp_path, X, y, "sequence_classification")
    manifest = json.loads((result.path / "manifest.json").read_text())
    names = list(result.leaderboard["candidate"])
    assert "rocket" in names and "rnn" not in names and "transformer" not in names
    notices = " ".join(manifest["notices"])
    assert "rnn: left out of the sequence ladder on 48 series (fewer than 300" in notices
    rocket = result.leaderboard.set_index("candidate").loc["rocket"]
    assert rocket["accuracy"] >= 0.9
    # importance per channel (shuffling one step of a series says nothing): the wave's wins
    importance = pd.read_csv(result.path / "candidates" / result.best_name / "importance.csv")
    assert sorted(importance["feature"]) == ["channel 0", "channel 1", "channel 2"]
    assert importance["feature"].iloc[0] == "channel 1"


def test_a_spec_that_says_sequences_keeps_a_wide_3d_array_as_series(tmp_path):
    """(N, 100, 6) looks like images unless the task says otherwise, also in a spec mapping."""
    X, y, _ = _waves(40, 11, channels=6)
    result = _run(tmp_path, X, y, "sequence_classification", ["series_linear"])
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert any("40 series of 100 steps x 6 channel(s)" in n for n in manifest["notices"])
