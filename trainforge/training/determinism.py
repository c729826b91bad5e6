"""Deterministic GPU training for the duration of one fit.

On the CPU the kernels trainforge's loop uses are deterministic already, so a seeded fit gives
the same weights bit for bit. On a GPU some kernels are not; this turns on torch's
deterministic algorithms while the fit runs and puts the previous global setting back after.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch


@contextmanager
def deterministic(enabled: bool, device: torch.device):
    if not enabled or device.type != "cuda":
        yield
        return
    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    # cuBLAS needs a fixed workspace for repeatable results; it reads this when it starts.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]
