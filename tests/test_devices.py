"""Devices (issue 16), what a CPU machine can check: the run's device setting resolves, is
recorded and refuses a GPU that is not there; the CNN's pooling is deterministic everywhere."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import trainforge
from conftest import make_small_table, run_cli


def test_the_device_setting_resolves_and_is_recorded(tmp_path, small_table):
    from trainforge.device import resolve

    assert resolve("auto", needs_torch=False).used == "cpu"  # no torch family: no torch import
    result = trainforge.train(
        data=small_table,
        target="y",
        models=[{"name": "mlp", "max_epochs": 2}],
        output=tmp_path,
        tracking=False,
        ensemble=False,
        quiet=True,
        device="cpu",
    )
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["device"] == {"requested": "cpu", "used": "cpu", "gpu": None}
    if not torch.cuda.is_available():
        auto = trainforge.train(
            data=small_table,
            target="y",
            models=[{"name": "mlp", "max_epochs": 2}],
            output=tmp_path / "auto",
            tracking=False,
            ensemble=False,
            quiet=True,
        )
        recorded = json.loads((auto.path / "manifest.json").read_text())["device"]
        assert recorded == {"requested": "auto", "used": "cpu", "gpu": None}


def test_a_cuda_device_without_a_gpu_is_one_line_and_exit_2(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    make_small_table(60).to_csv(tmp_path / "t.csv", index=False)
    done = run_cli("train", "t.csv", "--target", "y", "--device", "cuda", "--quiet", cwd=tmp_path)
    assert done.code == 2
    assert done.stderr.strip() == (
        "error: device cuda: no CUDA GPU is available here (torch.cuda.is_available() is "
        "False); use --device cpu or --device auto"
    )
    assert not (tmp_path / "runs").exists()
    bad = run_cli("train", "t.csv", "--target", "y", "--device", "gpu", "--quiet", cwd=tmp_path)
    assert bad.code == 2 and bad.stderr.startswith("error: device:")


@pytest.mark.parametrize("height, width, size", [(7, 7, 7), (7, 7, 3), (13, 9, 4), (28, 28, 7)])
def test_the_cnns_pooling_equals_adaptive_pooling_and_is_deterministic(height, width, size):
    from trainforge.models.nets.cnn import AveragePool

    x = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(0))
    expected = torch.nn.AdaptiveAvgPool2d(size)(x)
    assert torch.allclose(AveragePool(size)(x), expected, atol=1e-6)
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=False)
    try:
        x.requires_grad_(True)
        AveragePool(size)(x).sum().backward()  # a deterministic backward exists
    finally:
        torch.use_deterministic_algorithms(before)
    # each output cell averages its window: the gradient of their sum sums to their count
    assert torch.allclose(x.grad[0, 0].sum(), torch.tensor(float(size * size)), atol=1e-4)


# -- the CUDA-graph step, through its CPU fallback -------------------------------------------


def _loop(graph: bool, callbacks=()):
    from trainforge.training.callbacks.grad_clip import GradientClipping
    from trainforge.training.loop import Loop
    from trainforge.training.optim import build_optimizer

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(16, 3)
    )
    optimizer = build_optimizer("adamw", model.parameters(), lr=1e-2, weight_decay=1e-3)
    loop = Loop(
        model=model,
        optimizer=optimizer,
        loss_fn=torch.nn.functional.cross_entropy,
        generator=torch.Generator().manual_seed(1),
        max_epochs=4,
        batch_size=32,
        l1=1e-4,
        callbacks=[GradientClipping(0.5), *callbacks],
        graph=graph,
    )
    return loop


def test_the_graph_step_on_the_cpu_computes_what_the_plain_step_does(monkeypatch):
    from trainforge.training import graph_step
    from trainforge.training.callbacks.lr_schedule import LRSchedule
    from trainforge.training.loop import fit
    from trainforge.training.schedules import build_schedule

    X = torch.randn(203, 6, generator=torch.Generator().manual_seed(2))  # a ragged last batch
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    calls = []
    original = graph_step.GraphStep.__call__
    monkeypatch.setattr(
        graph_step.GraphStep, "__call__", lambda self, *a: calls.append(1) or original(self, *a)
    )
    weights = []
    for graph in (False, True):
        loop = _loop(graph)
        schedule = build_schedule("cosine", loop.optimizer, steps_per_epoch=7, max_epochs=4)
        loop.callbacks = [*loop.callbacks, LRSchedule(schedule, monitor="loss")]
        fit(loop, X, y)
        weights.append({k: v.clone() for k, v in loop.model.state_dict().items()})
        assert [h["epoch"] for h in loop.history] == [1, 2, 3, 4]
    assert len(calls) == 4 * (203 // 32)  # every full batch, and only those, went through it
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key


def test_steps_a_graph_cannot_replay_stay_eager():
    from trainforge.training.callbacks.base import Callback
    from trainforge.training.graph_step import graph_safe

    class Reads(Callback):
        def after_backward(self, loop):
            float(next(loop.model.parameters()).grad.norm())  # syncs with the host

    assert graph_safe(_loop(True))  # gradient clipping is marked safe
    assert not graph_safe(_loop(True, [Reads()]))
    scaled = _loop(True)
    scaled.precision = "16"
    assert not graph_safe(scaled)
    from trainforge.training.optim import build_optimizer

    plain_adam = _loop(True)
    captured = build_optimizer("adam", plain_adam.model.parameters(), lr=1e-3, capturable=True)
    assert captured.param_groups[0]["capturable"] and not captured.param_groups[0]["fused"]


# -- every neural family under torch's deterministic mode ------------------------------------


@pytest.fixture
def strict_determinism():
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=False)
    yield
    torch.use_deterministic_algorithms(before)


def _families():
    import numpy as np
    from test_images import make_images
    from test_sequences import spam_texts, wave_series

    from trainforge.models.gan import GAN
    from trainforge.models.image import CNNClassifier
    from trainforge.models.neural import MLPClassifier, MLPRegressor
    from trainforge.models.sequence import (
        RNNClassifier,
        RNNRegressor,
        TransformerClassifier,
        TransformerRegressor,
    )

    rng = np.random.default_rng(0)
    table = rng.normal(size=(80, 5)).astype(np.float32)
    images, labels = make_images(60)
    series, waves = wave_series(40)
    texts, spam = spam_texts(40)
    short = {"max_epochs": 2, "random_state": 0}
    return {
        "mlp": (MLPClassifier(**short), table, (table[:, 0] > 0).astype(int)),
        "mlp_regression": (MLPRegressor(**short), table, table[:, 1]),
        "cnn_pooled": (CNNClassifier(channels=(4, 8), pooled_size=3, **short), images, labels),
        "rnn": (RNNClassifier(hidden_size=8, **short), series, waves),
        "rnn_text": (RNNRegressor(hidden_size=8, **short), texts, (spam == "spam").astype(float)),
        "transformer": (TransformerClassifier(d_model=8, heads=2, **short), texts, spam),
        "transformer_series": (
            TransformerRegressor(d_model=8, heads=2, **short),
            series,
            (waves == "fast").astype(float),
        ),
        "gan": (GAN(width=8, latent_dim=4, quality_samples=50, **short), table, None),
    }


@pytest.mark.parametrize(
    "name",
    [
        "mlp",
        "mlp_regression",
        "cnn_pooled",
        "rnn",
        "rnn_text",
        "transformer",
        "transformer_series",
        "gan",
    ],
)
def test_every_neural_family_fits_in_strict_deterministic_mode(strict_determinism, name):
    estimator, X, y = _families()[name]
    fitted = estimator.fit(X) if y is None else estimator.fit(X, y)
    again = type(estimator)(**estimator.get_params())
    again = again.fit(X) if y is None else again.fit(X, y)
    if y is None:
        assert np.array_equal(fitted.sample(5, random_state=0), again.sample(5, random_state=0))
    else:
        assert np.array_equal(fitted.predict(X), again.predict(X))


# -- what the GPU check (benchmarks/gpu.py on an H200) changed --------------------------------


def test_a_batch_of_another_shape_steps_eagerly_and_leaves_the_graphs_buffers_alone():
    from trainforge.training.graph_step import GraphStep

    loop = _loop(True)
    step = GraphStep(loop, loop.model, torch.autocast("cpu", enabled=False), lambda loss: loss)
    X = torch.randn(40, 6, generator=torch.Generator().manual_seed(3))
    y = (X[:, 0] > 0).long()
    step(X[:32], y[:32])
    buffers = [part.clone() for part in step.inputs]
    before = [p.clone() for p in loop.model.parameters()]
    loss = step(X[32:], y[32:])  # 8 rows: not the captured shape
    assert torch.isfinite(loss)
    assert all(torch.equal(a, b) for a, b in zip(step.inputs, buffers))
    assert any(not torch.equal(a, b) for a, b in zip(loop.model.parameters(), before))


def test_only_the_mlps_capture_their_step_in_a_cuda_graph():
    from trainforge.models.gan import GAN
    from trainforge.models.image import CNNClassifier
    from trainforge.models.neural import MLPClassifier, MLPRegressor
    from trainforge.models.sequence import RNNClassifier, TransformerRegressor
    from trainforge.models.torch_module import TorchModuleClassifier

    assert MLPClassifier._GRAPH_STEP and MLPRegressor._GRAPH_STEP
    for cls in (CNNClassifier, RNNClassifier, TransformerRegressor, TorchModuleClassifier):
        assert not cls._GRAPH_STEP, cls.__name__
    assert not hasattr(GAN, "_GRAPH_STEP") or not GAN._GRAPH_STEP


def test_the_cnn_takes_its_gpu_recipe_when_the_run_trains_on_a_gpu():
    from dataclasses import replace

    from trainforge.models.image_families import GPU_CNN
    from trainforge.models.registry import Profile, get_family

    profile = Profile("classification", 3000, 784, 10, image_shape=(28, 28, 1))
    cnn = get_family("cnn")
    assert cnn.initial(profile) == {"image_shape": [28, 28, 1]}
    on_gpu = cnn.initial(replace(profile, device="cuda:0"))
    assert on_gpu == {**GPU_CNN, "image_shape": [28, 28, 1]}
    assert on_gpu["convs_per_block"] == 2 and on_gpu["residual"] is True
    from trainforge.models.image import CNNClassifier

    CNNClassifier(**on_gpu)._validate_params()  # every setting is one the estimator takes


def test_a_run_records_its_device_in_the_profile_initial_settings_read(small_table):
    from trainforge.spec import build_spec
    from trainforge.supervised import prepare

    spec = build_spec(target="y", models=["mlp"], device="cpu", tracking=False)
    prepared = prepare(spec, small_table)
    assert prepared.profile.device == "cpu" == prepared.device.used


def test_the_cnns_pooling_windows_are_made_once_per_input_size():
    from trainforge.models.nets.cnn import AveragePool, _windows

    pool = AveragePool(3)
    x = torch.randn(2, 4, 9, 7, generator=torch.Generator().manual_seed(0))
    first = pool(x)
    rows = pool._windows[(9, x.dtype, x.device)]
    assert torch.equal(pool(x), first) and pool._windows[(9, x.dtype, x.device)] is rows
    assert set(pool._windows) == {(9, x.dtype, x.device), (7, x.dtype, x.device)}
    assert torch.equal(rows, _windows(9, 3, x))


def test_a_loop_restored_at_a_later_step_never_makes_a_graph_step(monkeypatch):
    from trainforge.training import loop as loop_module

    made = []
    monkeypatch.setattr(loop_module, "GraphStep", lambda *a: made.append(a) or None)
    X = torch.randn(64, 6, generator=torch.Generator().manual_seed(4))
    y = (X[:, 0] > 0).long()
    fresh = _loop(True)
    fresh.max_epochs = 1
    loop_module.fit(fresh, X, y)
    assert len(made) == 1  # a fresh loop makes one
    restored = _loop(True)
    restored.max_epochs, restored.step = 2, 2
    loop_module.fit(restored, X, y)
    assert len(made) == 1
