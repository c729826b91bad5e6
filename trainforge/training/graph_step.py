"""The training step of full batches replayed from a CUDA graph.

On a GPU a small network's step is a string of tiny kernel launches, and launching them costs
more than running them: at batch 32 an eager step of a 128-64 MLP is slower on an H100 than on
two CPU cores. A CUDA graph records the whole step (forward, loss, backward, gradient
callbacks, optimizer step) once and then launches it as one unit. What that needs:

- static inputs: every full batch is copied into the same two buffers before a replay (the
  ragged last batch of an epoch, and any batch of another shape, runs eagerly, outside the
  graph);
- an optimizer that keeps its step count on the device (Adam and AdamW with
  ``capturable=True``; SGD needs nothing);
- nothing else touching CUDA during a capture: Python's garbage collector is held off while
  it lasts (a collection that frees an earlier fit's graph would end it; torch no longer
  collects before a capture), and other threads' calls are allowed (``thread_local``);
- no host synchronisation inside the step: the loss stays on the device, and only callbacks
  marked ``graph_safe`` may act after the backward pass (gradient clipping is);
- no autocast weight cache: a cached cast made during the capture would be freed when the
  autocast context closes while the graph still reads it (torch's CUDA-graph notes);
- settings frozen into the graph (learning rate, betas, momentum, weight decay) are compared
  before each replay, and the step is captured again when one changed (a plateau schedule
  halving the rate); a schedule that changes them every step (one-cycle) makes the graph
  useless, so after too many captures the step runs eagerly for the rest of the fit. A step
  that cannot be captured (its forward reads a value back to the host) is a ``TrainingError``
  saying to fit with ``cuda_graph=False``; the estimators whose networks do that never try.

The first ``WARMUP`` steps of each fit run eagerly on a side stream, as CUDA requires before
a capture; they are ordinary training steps on ordinary batches. A resumed fit (a loop
restored at a step above 0) trains eagerly: on an H200 the capture after a checkpoint was
restored failed in every try, for reasons not found in the time that GPU was lent.

Everywhere else (the CPU) the same static-buffer step runs eagerly: it computes exactly what
the plain loop does, which is how the CPU test suite exercises this path.
"""

from __future__ import annotations

import gc
from typing import Callable

import torch

from trainforge.errors import TrainingError

WARMUP = 3
# captures allowed beyond the first before the step gives up on the graph: a plateau schedule
# changes the rate a few times a fit, a per-step schedule every step
MAX_RECAPTURES = 20


def graph_safe(loop) -> bool:
    """Whether the loop's step can be captured: no scaler, no custom step, no compile, and
    every callback acting after the backward pass is marked ``graph_safe``."""
    from trainforge.training.callbacks.base import Callback

    unsafe = [
        c
        for c in loop.callbacks
        if type(c).after_backward is not Callback.after_backward
        and not getattr(c, "graph_safe", False)
    ]
    return (
        loop.train_step is None
        and loop.precision != "16"
        and loop.forward is None
        and not unsafe
        and _capturable(loop.optimizer)
    )


def _capturable(optimizer: torch.optim.Optimizer) -> bool:
    """SGD, or an optimizer built with ``capturable=True`` for CUDA parameters; on the CPU
    (where torch has no capturable optimizers) the step runs eagerly, so any will do."""
    on_cuda = any(p.is_cuda for group in optimizer.param_groups for p in group["params"])
    if not on_cuda or isinstance(optimizer, torch.optim.SGD):
        return True
    return all(group.get("capturable", False) for group in optimizer.param_groups)


class GraphStep:
    """One training step on a full batch; see the module's docstring."""

    def __init__(self, loop, forward: Callable, autocast, penalty: Callable):
        self.loop = loop
        self.forward = forward
        self.autocast = autocast
        self.penalty = penalty
        self.inputs: tuple[torch.Tensor, torch.Tensor] | None = None
        self.graph = None
        self.loss: torch.Tensor | None = None
        self.frozen: list | None = None
        self.eager_steps = 0
        self.captures = 0
        self.on_cuda = False

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        if self.inputs is None:
            self.inputs = (xb.clone(), yb.clone())
            self.on_cuda = xb.is_cuda
        elif xb.shape != self.inputs[0].shape or yb.shape != self.inputs[1].shape:
            return self._step(xb, yb)  # a batch of another shape: eager, buffers untouched
        else:
            self.inputs[0].copy_(xb)
            self.inputs[1].copy_(yb)
        if not self.on_cuda or self.captures > MAX_RECAPTURES:
            return self._step(*self.inputs)
        if self.eager_steps < WARMUP:
            return self._side_stream_step()
        if self.graph is None or self._settings() != self.frozen:
            self._capture()
            if self.graph is None:  # too many captures: eager from now on
                return self._step(*self.inputs)
        self.graph.replay()
        return self.loss

    @property
    def active(self) -> bool:
        """Whether full batches are replayed from a graph now."""
        return self.graph is not None and self.captures <= MAX_RECAPTURES

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loop = self.loop
        with self.autocast:
            loss = loop.loss_fn(self.forward(x), y)
        loop.optimizer.zero_grad(set_to_none=True)
        self.penalty(loss).backward()
        for callback in loop.callbacks:
            callback.after_backward(loop)
        loop.optimizer.step()
        return loss.detach()

    def _side_stream_step(self) -> torch.Tensor:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            loss = self._step(*self.inputs)
        torch.cuda.current_stream().wait_stream(stream)
        self.eager_steps += 1
        return loss

    def _capture(self) -> None:
        self.captures += 1
        if self.captures > MAX_RECAPTURES:
            self.graph = None
            return
        self.loop.optimizer.zero_grad(set_to_none=True)  # backward allocates in the graph's pool
        if self.captures == 1:
            gc.collect()  # dead graphs and tensors of earlier fits go now, not during a capture
        collecting = gc.isenabled()
        gc.disable()  # a collection during the capture could free CUDA objects, which ends it
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                self.loss = self._step(*self.inputs)
        except RuntimeError as error:
            # no eager fallback: a failed capture leaves torch's CUDA random generator unusable
            # for the rest of the process (seen on an H200: every later dropout raised)
            raise TrainingError(
                f"the training step could not be captured in a CUDA graph ({error}); fit with "
                "cuda_graph=False"
            ) from error
        finally:
            if collecting:
                gc.enable()
        self.graph = graph
        self.frozen = self._settings()

    def _settings(self) -> list:
        keys = ("lr", "betas", "momentum", "weight_decay")
        return [tuple(group.get(key) for key in keys) for group in self.loop.optimizer.param_groups]
