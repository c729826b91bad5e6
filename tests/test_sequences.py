"""Text and sequence inputs, and the RNN and Transformer estimators on small data: masks,
scaling from training data, tokenizer saved as JSON, learning, saving and reloading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.base import clone

from trainforge.data import sequences, text
from trainforge.errors import DataError
from trainforge.models.nets.rnn import RNN, RNNConfig
from trainforge.models.nets.transformer import TransformerConfig, TransformerEncoder
from trainforge.models.sequence import (
    RNNClassifier,
    RNNRegressor,
    TransformerClassifier,
    TransformerRegressor,
)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small nets on 2 shared cores: one thread is several times faster than two that wait
    for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def wave_series(n: int, seed: int = 0):
    """Two classes of noisy sine waves (slow / fast), 2 channels, lengths 10 to 20."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    series = []
    for label, length in zip(labels, rng.integers(10, 21, n)):
        t = np.arange(length)
        wave = 3 + 2 * np.sin(t * (0.3 + 0.6 * label)) + 0.1 * rng.normal(size=length)
        series.append(np.stack([wave, 10 * rng.normal(size=length)], axis=1))
    return sequences.pad_series(series), np.where(labels == 1, "fast", "slow")


def spam_texts(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    spam, ham = ["free", "win", "prize", "cash", "call"], ["lunch", "see", "you", "later", "ok"]
    texts = [
        " ".join(rng.choice(spam if label else ham, 4)) + " " + " ".join(rng.choice(ham, 2))
        for label in labels
    ]
    return np.array(texts, dtype=object), np.where(labels == 1, "spam", "ham")


# -- series ----------------------------------------------------------------------------------


def test_shorter_series_end_in_nan_and_get_lengths_and_masks():
    X = sequences.pad_series([np.arange(3.0), np.arange(5.0)])
    assert X.shape == (2, 5, 1) and np.isnan(X[0, 3:]).all()
    lengths = sequences.series_lengths(X)
    assert lengths.tolist() == [3, 5]
    mean, scale = sequences.channel_stats(X, lengths)
    observed = np.array([0, 1, 2, 0, 1, 2, 3, 4], dtype=float)
    assert mean[0] == pytest.approx(observed.mean()) and scale[0] == pytest.approx(observed.std())
    net = sequences.network_input(X, lengths, mean, scale)
    assert net.shape == (2, 5, 2)
    assert net[:, :, 1].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert net[0, 3:, 0].tolist() == [0, 0]  # padding is zero, not NaN


def test_nan_inside_a_series_is_a_clear_error():
    X = np.ones((3, 6, 2), dtype=np.float32)
    X[1, 2, 1] = np.nan
    with pytest.raises(DataError, match=r"series 1 has NaN at step 2 \(channel 1\) before its end"):
        sequences.series_lengths(X)
    with pytest.raises(DataError, match="series 1 has NaN at step 2"):
        RNNClassifier(max_epochs=1).fit(X, ["a", "b", "a"])
    empty = np.full((2, 4, 1), np.nan, dtype=np.float32)
    empty[0] = 1
    with pytest.raises(DataError, match="series 1 has no values"):
        sequences.series_lengths(empty)


def test_flattened_rows_interleave_channels():
    X = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    frame = sequences.sequence_frame(X)
    assert list(frame.columns[:4]) == ["t0.c0", "t0.c1", "t0.c2", "t1.c0"]
    assert sequences.flat_channels(frame.columns) == 3
    np.testing.assert_array_equal(sequences.as_series(frame, 3), X)


def test_padding_never_changes_a_prediction():
    """Masks: the same series padded to a longer width gives the same outputs."""
    torch.manual_seed(0)
    x = torch.randn(1, 7, 2)
    short = torch.cat([x, torch.ones(1, 7, 1)], dim=2)
    long = torch.cat([short, torch.zeros(1, 5, 3)], dim=1)
    nets = [
        RNN(RNNConfig(False, 2, 3, "lstm", pooling="last")),
        RNN(RNNConfig(False, 2, 3, "gru", pooling="mean", patch=2)),
        TransformerEncoder(TransformerConfig(False, 2, 3, pooling="cls", patch=3)),
        TransformerEncoder(TransformerConfig(False, 2, 3, pooling="mean")),
    ]
    for net in nets:
        net.eval()
        torch.testing.assert_close(net(short), net(long), rtol=1e-5, atol=1e-6)
    tokens = TransformerEncoder(TransformerConfig(True, 50, 2)).eval()
    ids = torch.tensor([[5, 9, 3, 0, 0, 0]])
    torch.testing.assert_close(tokens(ids), tokens(ids[:, :3]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [RNNClassifier, TransformerClassifier])
def test_sequence_classifiers_learn_variable_length_series_and_reload(cls, tmp_path):
    X, y = wave_series(260)
    model = cls(max_epochs=12, random_state=0).fit(X[:200], y[:200])
    accuracy = (model.predict(X[200:]) == y[200:]).mean()
    assert accuracy >= 0.9, accuracy
    assert model.channel_mean_[0] == pytest.approx(np.nanmean(X[:200, :, 0]), abs=1e-4)
    model.save_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["estimator.json", "weights.safetensors"]
    loaded = cls.load_files(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X[200:]), model.predict_proba(X[200:]))
    flat = sequences.sequence_frame(X[200:]).to_numpy()
    two_d = clone(model).set_params(channels=2)
    assert two_d.get_params()["channels"] == 2
    np.testing.assert_array_equal(
        cls.load_files(tmp_path).set_params(channels=2).predict(flat), model.predict(X[200:])
    )


def test_sequence_regressor_predicts_in_target_units():
    X, y = wave_series(160, seed=1)
    target = np.where(y == "fast", 100.0, 50.0)
    model = TransformerRegressor(max_epochs=10, random_state=0).fit(X[:120], target[:120])
    error = np.abs(model.predict(X[120:]) - target[120:]).mean()
    assert error < 10, error


# -- text ------------------------------------------------------------------------------------


def test_tokenizer_is_deterministic_and_pads_with_zero():
    texts, _ = spam_texts(80)
    first = text.train_tokenizer(list(texts), 100)
    second = text.train_tokenizer(list(texts), 100)
    assert first.to_str() == second.to_str()
    ids = text.encode(first, ["win cash", "", "see you later ok lunch"], 4)
    assert ids.dtype == np.int64 and ids.shape == (3, 4)
    assert (ids[0, 2:] == 0).all() and (ids[1] == 0).all() and (ids[2] > 0).all()  # truncated
    assert first.token_to_id(text.PAD) == 0
    with pytest.raises(DataError, match="row 2 holds int 7, not text"):
        text.as_texts(["fine", 7])


@pytest.mark.parametrize("cls", [RNNClassifier, TransformerClassifier])
def test_text_classifiers_learn_and_save_the_tokenizer_as_json(cls, tmp_path):
    texts, labels = spam_texts(300)
    model = cls(max_epochs=6, random_state=0, max_length=16).fit(texts[:240], labels[:240])
    assert model.seq_len_ == 6  # the longest training text, under max_length
    assert (model.predict(texts[240:]) == labels[240:]).mean() >= 0.95
    names = model.save_files(tmp_path)
    assert names == ["estimator.json", "weights.safetensors", "tokenizer.json"]
    assert json.loads((tmp_path / "tokenizer.json").read_text())["model"]["type"] == "BPE"
    loaded = cls.load_files(tmp_path)
    np.testing.assert_array_equal(
        loaded.predict_proba(texts[240:]), model.predict_proba(texts[240:])
    )
    column = texts[240:].reshape(-1, 1)  # a one-column table, as from a pipeline
    np.testing.assert_array_equal(loaded.predict(column), model.predict(texts[240:]))


def test_text_regressor_and_a_text_model_refuses_numbers():
    texts, labels = spam_texts(200, seed=3)
    model = RNNRegressor(max_epochs=5, random_state=0).fit(texts, (labels == "spam") * 10.0)
    assert model.predict(["win cash prize free see you"])[0] > 5
    with pytest.raises(DataError, match="trained on text"):
        model.predict(np.zeros((2, 3)))
