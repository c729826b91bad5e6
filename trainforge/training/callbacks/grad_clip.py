"""Clip the gradient norm after each backward pass."""

from __future__ import annotations

import torch

from trainforge.training.callbacks.base import Callback


class GradientClipping(Callback):
    """Scales gradients so their global L2 norm is at most ``max_norm``."""

    name = "gradient_clipping"
    graph_safe = True  # tensor operations only: a CUDA graph can replay them

    def __init__(self, max_norm: float):
        self.max_norm = max_norm

    def after_backward(self, loop) -> None:
        torch.nn.utils.clip_grad_norm_(loop.model.parameters(), self.max_norm)
