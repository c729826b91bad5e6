"""Devices (issue 16), what a CPU machine can check: the run's device setting resolves, is
recorded and refuses a GPU that is not there; the CNN's pooling is deterministic everywhere."""

from __future__ import annotations

import json

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
