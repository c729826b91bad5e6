"""Where neural families train: the run's ``device`` setting (``auto``, ``cpu``, ``cuda``,
``cuda:N``) resolved against what this machine has.

``auto`` is the first CUDA GPU when torch sees one, else the CPU. Only families built on torch
use it; the boosting libraries train on the CPU (the installed xgboost-cpu and LightGBM wheels
have no CUDA support), which the run says in a notice when a GPU was asked for. Checking for a
GPU imports torch, so it happens only when a planned candidate needs torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trainforge.errors import SpecError

PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@dataclass(frozen=True)
class Device:
    """A resolved device: what was asked, what neural families use, and the GPU's name."""

    requested: str
    used: str
    gpu: str | None = None

    def record(self) -> dict:
        return {"requested": self.requested, "used": self.used, "gpu": self.gpu}


def resolve(requested: str, needs_torch: bool) -> Device:
    """The device neural families will use.

    Raises:
        SpecError: a CUDA device was asked for and this machine has none (or not that one).
    """
    if not PATTERN.match(requested):
        raise SpecError(f"device: expected auto, cpu, cuda or cuda:N, got {requested!r}")
    if requested == "cpu" or (requested == "auto" and not needs_torch):
        return Device(requested, "cpu")
    try:
        import torch
    except ImportError:
        if requested == "auto":
            return Device(requested, "cpu")
        raise SpecError(
            f"device {requested}: torch is not installed; install it with "
            'pip install "trainforge[torch]" (a CUDA build for a GPU) or use --device cpu'
        ) from None
    available = torch.cuda.is_available()
    if requested == "auto":
        return (
            Device(requested, "cuda:0", torch.cuda.get_device_name(0))
            if available
            else Device(requested, "cpu")
        )
    index = int(requested.split(":")[1]) if ":" in requested else 0
    if not available:
        raise SpecError(
            f"device {requested}: no CUDA GPU is available here (torch.cuda.is_available() is "
            "False); use --device cpu or --device auto"
        )
    if index >= torch.cuda.device_count():
        raise SpecError(
            f"device {requested}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
            f"numbered from 0"
        )
    return Device(requested, f"cuda:{index}", torch.cuda.get_device_name(index))
