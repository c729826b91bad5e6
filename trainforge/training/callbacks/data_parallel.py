"""The callback that keeps every worker of a data-parallel fit (trainforge.distributed) on the
same net; each worker's share of a batch is the loop's (``Loop.shard``).

Every worker starts from the same seed, so from the same weights; after each backward pass the
gradients are averaged over the workers (one all-reduce of them all, flattened), so every
worker takes the same optimizer step and the nets stay identical. Validation rows are the same
on every worker, so the validation loss, and with it early stopping and the learning-rate
schedule, agree everywhere; the epoch's training loss is averaged before anything reads it, for
fits that monitor it.
"""

from __future__ import annotations

import torch

from trainforge.training.callbacks.base import Callback


class AllReduce(Callback):
    """Averages the gradients, and the epoch's training loss, over the workers."""

    name = "all_reduce"

    def __init__(self, workers: int):
        self.workers = workers

    def after_backward(self, loop) -> None:
        import torch.distributed as dist

        grads = [p.grad for p in loop.model.parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.workers
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def on_epoch_end(self, loop, logs: dict) -> None:
        """Average the training loss; take rank 0's buffers (batch-norm statistics, which
        each worker gathers from its own rows) and validation scores, so every worker decides
        the same about stopping and the schedule."""
        import torch.distributed as dist

        device = next(loop.model.parameters()).device
        loss = torch.tensor([logs["loss"]], dtype=torch.float64, device=device)
        dist.all_reduce(loss)
        logs["loss"] = loss.item() / self.workers
        for buffer in loop.model.buffers():
            dist.broadcast(buffer, src=0)
        names = sorted(k for k, v in logs.items() if k != "loss" and isinstance(v, float))
        if names:
            values = torch.tensor([logs[k] for k in names], dtype=torch.float64, device=device)
            dist.broadcast(values, src=0)
            logs.update(zip(names, values.tolist()))
