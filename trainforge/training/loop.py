"""The training loop: one function you can read in one sitting.

Who owns what: ``fit`` owns epochs, batches and optimizer steps; the data is held as tensors and
sliced per batch (no per-sample Dataset); the loop's own seeded generator draws each epoch's row
order; callbacks own everything optional (early stopping, checkpoints, schedules, clipping,
progress, tracking). Callbacks talk to the loop through the ``Loop`` fields and its ``stop`` flag.

The loop syncs with the host once per epoch (to read the epoch's mean loss), never per step, so
it stays fast on a GPU. Optional speed-ups: ``forward`` can be a ``torch.compile``-d model (the
plain ``model`` is what checkpoints save), ``precision`` runs forward and loss under
autocast in bfloat16 or float16 (float16 with a gradient scaler, saved in checkpoints too), and
``graph`` replays the step of full batches from a CUDA graph (trainforge.training.graph_step).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from trainforge.errors import TrainingError
from trainforge.training.callbacks import Callback
from trainforge.training.graph_step import GraphStep, graph_safe
from trainforge.training.optim import l1_penalty

PRECISIONS = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}


@dataclass
class Loop:
    """Everything a run of the loop needs and changes; a checkpoint saves all of it.

    Attributes:
        epoch: epochs completed.
        batch: batches completed in the current epoch (0 between epochs).
        step: optimizer steps in total.
        order: the current epoch's row order, drawn from ``generator``.
        loss_sum: the current epoch's summed training loss (float64, on the model's device).
        rows: rows seen in the current epoch.
        forward: what computes outputs in training (``model`` itself, or a compiled copy).
        precision: ``"32"``, or ``"bf16"``/``"16"`` for mixed precision under autocast.
        scaler: the float16 gradient scaler (made by the loop when precision is ``"16"``).
        augment: optional per-batch transform of training inputs (image augmentation); it
            draws on its own seeded generator, which a callback saves in checkpoints.
        train_step: optional replacement for forward/backward/step on one batch that returns
            the batch's loss (a GAN's alternating updates with two optimizers).
        graph: replay full batches' steps from a CUDA graph where the step allows it (on the
            CPU the same static-buffer step runs eagerly and computes what the plain one does);
            a loop restored from a checkpoint (``step`` above 0) trains eagerly.
        shard: ``(rank, workers)`` for one worker of a data-parallel fit: every worker draws
            the same row order and takes every ``workers``-th row of it from ``rank``, so
            their batches together are the batch one fit would take (trainforge.distributed).
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    generator: torch.Generator
    max_epochs: int
    batch_size: int
    l1: float = 0.0
    callbacks: Sequence[Callback] = ()
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None
    precision: str = "32"
    scaler: torch.amp.GradScaler | None = None
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None
    train_step: Callable[[Loop, torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    graph: bool = False
    shard: tuple[int, int] | None = None
    epoch: int = 0
    batch: int = 0
    step: int = 0
    order: torch.Tensor | None = None
    loss_sum: torch.Tensor | None = None
    rows: int = 0
    history: list[dict] = field(default_factory=list)
    stop: bool = False


def fit(
    loop: Loop,
    X: torch.Tensor,
    y: torch.Tensor,
    evaluate: Callable[[torch.nn.Module], dict] | None = None,
) -> Loop:
    """Train ``loop.model`` on ``(X, y)`` from wherever ``loop`` stands (fresh or resumed).

    Args:
        X, y: training tensors on the model's device.
        evaluate: returns validation metrics (``val_loss``, ...) for the model, once per epoch.
    """
    n_rows = len(X)
    n_mine = n_rows if loop.shard is None else n_rows // loop.shard[1]
    n_batches = -(-n_mine // loop.batch_size)
    shuffled = None
    forward = loop.model if loop.forward is None else loop.forward
    dtype, mixed = PRECISIONS[loop.precision], loop.precision != "32"
    autocast = torch.autocast(X.device.type, dtype, mixed)
    if loop.precision == "16" and loop.scaler is None:
        loop.scaler = torch.amp.GradScaler(X.device.type)
    graphed = None
    if loop.graph and loop.step == 0 and graph_safe(loop):  # resumed: eager (graph_step says why)
        uncached = torch.autocast(X.device.type, dtype, mixed, cache_enabled=False)
        graphed = GraphStep(loop, forward, uncached, lambda loss: _penalised(loop, loss))
    _each(loop, "on_train_begin")
    while loop.epoch < loop.max_epochs and not loop.stop:
        if loop.batch == 0:  # a new epoch; a resumed one keeps its order and sums
            order = torch.randperm(n_rows, generator=loop.generator)
            if loop.shard is not None:
                rank, workers = loop.shard
                order = order[rank::workers][:n_mine]
            loop.order = order.to(X.device)
            loop.loss_sum = torch.zeros((), dtype=torch.float64, device=X.device)
            loop.rows = 0
            shuffled = None
            _each(loop, "on_epoch_begin")
        if shuffled is None:  # one gather per epoch; batches are then contiguous slices
            shuffled = X[loop.order], y[loop.order]
        loop.model.train()
        while loop.batch < n_batches and not loop.stop:
            start = loop.batch * loop.batch_size
            xb, yb = (part[start : start + loop.batch_size] for part in shuffled)
            if loop.augment is not None:
                xb = loop.augment(xb)
            if loop.train_step is not None:
                loss = loop.train_step(loop, xb, yb)
            elif graphed is not None and len(xb) == loop.batch_size:
                loss = graphed(xb, yb)
            else:
                with autocast:
                    loss = loop.loss_fn(forward(xb), yb)
                loop.optimizer.zero_grad(set_to_none=True)
                _backward(loop, _penalised(loop, loss))
                _each(loop, "after_backward")
                _step(loop)
            loop.loss_sum += loss.detach().double() * len(xb)
            loop.rows += len(xb)
            loop.batch += 1
            loop.step += 1
            _each(loop, "on_batch_end")
        logs = {"epoch": loop.epoch + 1, "loss": _epoch_loss(loop)}
        if evaluate is not None:
            loop.model.eval()
            with torch.no_grad():
                logs.update(evaluate(loop.model))
        loop.history.append(logs)
        loop.epoch += 1
        loop.batch = 0
        _each(loop, "on_epoch_end", logs)
    _each(loop, "on_train_end")
    return loop


def _penalised(loop: Loop, loss: torch.Tensor) -> torch.Tensor:
    return loss + l1_penalty(loop.model, loop.l1) if loop.l1 else loss


def _backward(loop: Loop, loss: torch.Tensor) -> None:
    if loop.scaler is None:
        loss.backward()
        return
    loop.scaler.scale(loss).backward()
    loop.scaler.unscale_(loop.optimizer)  # callbacks (gradient clipping) see true gradients


def _step(loop: Loop) -> None:
    if loop.scaler is None:
        loop.optimizer.step()
        return
    loop.scaler.step(loop.optimizer)  # skipped when the scaled gradients overflowed
    loop.scaler.update()


def _epoch_loss(loop: Loop) -> float:
    value = (loop.loss_sum / max(loop.rows, 1)).item()
    if value != value or value in (float("inf"), float("-inf")):
        raise TrainingError(
            f"the training loss became {value} in epoch {loop.epoch + 1}; lower the learning "
            "rate or check the data (the last good checkpoint, if any, is kept)"
        )
    return value


def _each(loop: Loop, hook: str, *args) -> None:
    for callback in loop.callbacks:
        getattr(callback, hook)(loop, *args)
