"""Data-parallel training of one neural net over Ray Train workers (docs/scale.md).

``fit(X, y, data_parallel=N)`` on a torch estimator of the one-net loop (MLP, CNN, RNN,
Transformer) runs its fit on N Ray Train workers through ``TorchTrainer`` (gloo on CPUs, NCCL
on GPUs). Each worker trains the same net on every N-th training row with batches of
``batch_size / N`` rows, so one step of all of them together sees ``batch_size`` rows as a
single fit does; gradients are averaged after each backward pass
(trainforge.training.callbacks.data_parallel). Every worker starts from the run's seed (so from
the same weights) and keeps the same validation rows, so early stopping agrees everywhere.

Rank 0's trainforge checkpoints are reported to Ray Train every REPORT_SECONDS at an epoch's
end (``ray.train.report(..., checkpoint=...)``), stored under the fit's ``checkpoint_dir`` (which
must be on storage every node reaches when there are several); a fit started again with the
same ``checkpoint_dir`` (``trainforge resume``) continues from the newest of them. The fitted
net comes back as rank 0's saved files (JSON and safetensors), never a pickle.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from trainforge.errors import SpecError
from trainforge.training.callbacks.base import Callback

# What a fit leaves on the estimator that the driver takes from rank 0's copy.
FITTED = ("model_", "history_", "n_epochs_", "n_iter_", "best_epoch_", "n_features_in_")
RUN_NAME = "data_parallel"
# Ray Train takes a report from each worker only when its controller next polls (every 2 s in
# Ray 2.60), so a report every epoch would cost about 1.7 s per epoch; a checkpoint is reported
# when at least this many seconds passed since the last, and once more at the end.
REPORT_SECONDS = 5.0


def fit_data_parallel(estimator, X, targets, n_outputs: int, task: str, runtime):
    """Fit ``estimator`` on ``runtime.data_parallel`` Ray Train workers; returns it fitted."""
    try:
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError:
        raise SpecError(
            'data-parallel training needs Ray Train: pip install "trainforge[ray]"'
        ) from None
    started_here = not ray.is_initialized()
    if started_here:  # a private Ray on loopback, as for execution: {backend: ray}
        from trainforge.execution import start_private

        start_private(ray, include_dashboard=False)
    scratch = None
    if runtime.folder is None:
        scratch = Path(tempfile.mkdtemp(prefix="trainforge-data-parallel-"))
    storage = (runtime.folder or scratch).resolve()
    gpu = str(estimator.device).startswith("cuda")
    try:
        trainer = TorchTrainer(
            _worker,
            train_loop_config={
                "estimator": estimator,
                "data": ray.put((X, targets)),
                "n_outputs": n_outputs,
                "task": task,
                "gpu": gpu,
            },
            scaling_config=ScalingConfig(num_workers=runtime.data_parallel, use_gpu=gpu),
            run_config=RunConfig(name=RUN_NAME, storage_path=str(storage)),
        )
        result = trainer.fit()
        with result.checkpoint.as_directory() as found:
            fitted = type(estimator).load_files(Path(found) / "model")
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        if started_here:
            ray.shutdown()
    for name in FITTED:
        if hasattr(fitted, name):
            setattr(estimator, name, getattr(fitted, name))
    estimator.model_.to(estimator.device).eval()
    if runtime.on_epoch is not None:  # the epochs, as a single fit would have told them
        for step, logs in enumerate(estimator.history_, start=1):
            runtime.on_epoch(step, dict(logs))
    return estimator


def _worker(config: dict) -> None:
    """One Ray Train worker: fit on this rank's rows, continuing from the newest checkpoint
    reported by an earlier attempt; rank 0 reports the fitted net at the end."""
    import ray
    import ray.train
    from ray.train import Checkpoint

    context = ray.train.get_context()
    rank, workers = context.get_world_rank(), context.get_world_size()
    estimator = config["estimator"]
    if config["gpu"]:
        from ray.train.torch import get_device

        estimator.set_params(device=str(get_device()))
    X, targets = ray.get(config["data"])
    folder = Path(tempfile.mkdtemp(prefix="trainforge-worker-"))
    restored = ray.train.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as found:
            if (Path(found) / "loop").is_dir():
                shutil.copytree(Path(found) / "loop", folder, dirs_exist_ok=True)
    runtime = {
        "checkpoint_dir": str(folder),
        "resume": True,
        "callbacks": [_Reporter(rank, folder)],
        "shard": (rank, workers),
    }
    final = Path(tempfile.mkdtemp(prefix="trainforge-fitted-"))
    try:
        estimator._fit(X, targets, config["n_outputs"], config["task"], runtime)
        if rank == 0:
            estimator.model_.cpu()
            estimator.save_files(final / "model")
        checkpoint = Checkpoint.from_directory(str(final)) if rank == 0 else None
        ray.train.report({"epoch": estimator.n_epochs_, "fitted": True}, checkpoint=checkpoint)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)


class _Reporter(Callback):
    """At the start of an epoch, when REPORT_SECONDS have passed since the last report,
    reports the previous epoch to Ray Train; rank 0 attaches its checkpoint folder (written
    when that epoch ended). Rank 0's clock decides for every worker (one broadcast), so all
    report equally often, as Ray Train requires."""

    name = "ray_train_report"

    def __init__(self, rank: int, folder: Path):
        self.rank, self.folder = rank, folder
        self.last = time.monotonic()

    def on_epoch_begin(self, loop) -> None:
        import ray.train
        import torch
        import torch.distributed as dist
        from ray.train import Checkpoint

        if not loop.history:
            return
        device = next(loop.model.parameters()).device
        due = torch.tensor([time.monotonic() - self.last >= REPORT_SECONDS], device=device)
        dist.broadcast(due, src=0)
        if not due.item():
            return
        self.last = time.monotonic()
        staged, checkpoint = None, None
        if self.rank == 0:
            staged = Path(tempfile.mkdtemp(prefix="trainforge-report-"))
            shutil.copytree(self.folder, staged / "loop")
            checkpoint = Checkpoint.from_directory(str(staged))
        metrics = {k: v for k, v in loop.history[-1].items() if isinstance(v, (int, float))}
        ray.train.report(metrics, checkpoint=checkpoint)  # copies it to the fit's storage
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
