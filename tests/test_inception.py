"""InceptionTime (trainforge.models.inception): members that learn on their own losses,
padding that changes nothing, an interrupted fit that resumes to identical weights, saving."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from test_sequences import wave_series

from trainforge.models.inception import InceptionTimeClassifier, InceptionTimeRegressor, MemberLoss

SMALL = dict(members=2, depth=3, filters=4, kernel=8, batch_size=16, random_state=0)


def _digest(model) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(model.model_.state_dict().items()):
        digest.update(key.encode() + value.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def test_it_learns_waves_and_the_ensemble_averages_member_probabilities():
    X, y = wave_series(160, seed=1)
    model = InceptionTimeClassifier(max_epochs=40, patience=40, **SMALL).fit(X[:120], y[:120])
    assert (model.predict(X[120:]) == y[120:]).mean() >= 0.9
    inputs = torch.as_tensor(model._check(X[120:]))
    network = model.model_
    network.train(False)
    ensemble = torch.softmax(network(inputs), dim=1)
    network.training = True  # every member's logits, as in training (batch norm stays frozen)
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.training = False
    members = torch.softmax(network(inputs), dim=2).mean(dim=1)
    network.train(False)
    torch.testing.assert_close(ensemble, members, rtol=1e-5, atol=1e-6)


def test_member_loss_is_each_members_own_loss_averaged():
    inner = torch.nn.CrossEntropyLoss()
    outputs = torch.randn(6, 3, 4)
    targets = torch.tensor([0, 1, 2, 3, 0, 1])
    expected = sum(inner(outputs[:, m], targets) for m in range(3)) / 3
    torch.testing.assert_close(MemberLoss(inner)(outputs, targets), expected)
    torch.testing.assert_close(
        MemberLoss(inner)(outputs[:, 0], targets), inner(outputs[:, 0], targets)
    )


def test_padding_after_a_series_changes_no_prediction():
    X, y = wave_series(60, seed=2)
    model = InceptionTimeClassifier(max_epochs=3, **SMALL).fit(X, y)
    longer = np.concatenate([X, np.full((60, 15, 2), np.nan, dtype=np.float32)], axis=1)
    flat = model.predict_proba(X)
    wider = InceptionTimeClassifier(max_epochs=3, **SMALL).fit(longer, y)  # same series
    np.testing.assert_allclose(wider.predict_proba(longer), flat, rtol=1e-5, atol=1e-6)


def test_an_interrupted_fit_resumes_to_the_weights_of_one_never_interrupted(tmp_path):
    X, y = wave_series(80, seed=3)
    settings = dict(max_epochs=8, patience=8, checkpoint_every_steps=3, **SMALL)
    whole = InceptionTimeClassifier(**settings).fit(X, y, checkpoint_dir=str(tmp_path / "whole"))

    def stop(step, logs):  # at the end of the fourth epoch (5 batches each)
        if step >= 20:
            raise KeyboardInterrupt

    folder = str(tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        InceptionTimeClassifier(**settings).fit(X, y, checkpoint_dir=folder, on_epoch=stop)
    resumed = InceptionTimeClassifier(**settings).fit(X, y, checkpoint_dir=folder, resume=True)
    assert resumed.history_ == whole.history_
    assert _digest(resumed) == _digest(whole)


def test_it_saves_as_json_and_tensors_and_reloads(tmp_path):
    X, y = wave_series(40, seed=4)
    model = InceptionTimeRegressor(max_epochs=2, **SMALL).fit(X, np.arange(40.0))
    names = model.save_files(tmp_path / "estimator")
    assert sorted(names) == ["estimator.json", "weights.safetensors"]
    loaded = InceptionTimeRegressor.load_files(tmp_path / "estimator")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_text_is_refused_in_one_line():
    with pytest.raises(Exception, match="inception_time reads series, not text"):
        InceptionTimeClassifier(max_epochs=1, **SMALL).fit(["a text", "another"] * 5, [0, 1] * 5)
