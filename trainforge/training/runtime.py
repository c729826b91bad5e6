"""What a fit is told about where it writes and whom it tells, apart from what it computes.

Checkpoint folders, resuming, extra callbacks (a search's deadline and pruning), an epoch
listener and verbosity are arguments of ``fit``, never constructor parameters: they are not
part of a model, so they stay out of ``get_params``, out of a checkpoint's identity and out of
a saved estimator. The torch estimators share what follows:

    model.fit(X, y, checkpoint_dir="ckpt", resume=True, on_epoch=print)

and a Pipeline routes them like ``sample_weight``: ``pipeline.fit(X, y, model__resume=True)``.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from trainforge.errors import CheckpointWarning

# Constructor settings of where a fit runs and how often it saves, not of what it computes: a
# checkpoint made on a GPU resumes on the CPU, one made every 5 steps resumes under every 50.
OUTSIDE_IDENTITY = ("device", "deterministic", "checkpoint_every_steps")


@dataclass(frozen=True)
class FitRuntime:
    """``fit``'s keyword arguments for the torch estimators.

    Attributes:
        checkpoint_dir: where resumable checkpoints are written (None: none are); how often
            is the estimator's ``checkpoint_every_steps`` (0: after every epoch).
        resume: continue from the newest good checkpoint in ``checkpoint_dir``, bit for bit.
        callbacks: extra training-loop callbacks, run after the model's own.
        on_epoch: ``on_epoch(step, logs)`` after every epoch (a resumed fit replays the
            epochs it already has first).
        verbose: print a line per epoch (at most every 5 s).
        data_parallel: train on this many Ray Train workers, each on its share of the rows
            with gradients averaged (trainforge.distributed); 1 trains here.
        shard: ``(rank, workers)``: this fit is one data-parallel worker of ``workers`` and
            trains on rows ``rank::workers`` (set by trainforge.distributed, not by hand).
    """

    checkpoint_dir: str | os.PathLike | None = None
    resume: bool = False
    callbacks: Sequence = ()
    on_epoch: Callable[[int, dict], None] | None = None
    verbose: bool = False
    data_parallel: int = 1
    shard: tuple[int, int] | None = None

    @classmethod
    def of(cls, owner: str, given: dict, also: tuple[str, ...] = ()) -> FitRuntime:
        """The runtime ``given`` to ``owner.fit``, checked (``also``: the other keywords that
        ``fit`` takes, for the message).

        Raises:
            TypeError: a keyword ``fit`` does not take, or a value of the wrong type.
        """
        unknown = sorted(set(given) - NAMES)
        if unknown:
            raise TypeError(
                f"{owner}.fit() got unexpected keyword argument(s) {', '.join(unknown)}; it "
                f"takes {', '.join(sorted(NAMES | set(also)))}"
            )
        # None (and an empty folder name) mean the default
        runtime = cls(**{k: v for k, v in given.items() if v is not None and v != ""})
        folder = runtime.checkpoint_dir
        if folder is not None and not isinstance(folder, (str, os.PathLike)):
            raise TypeError(f"checkpoint_dir must be a path, got {type(folder).__name__}")
        for name in ("resume", "verbose"):
            if not isinstance(getattr(runtime, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(runtime, name)!r}")
        if runtime.on_epoch is not None and not callable(runtime.on_epoch):
            raise TypeError(f"on_epoch must be callable, got {runtime.on_epoch!r}")
        listed(runtime.callbacks)
        if not isinstance(runtime.data_parallel, int) or runtime.data_parallel < 1:
            raise TypeError(f"data_parallel must be an int >= 1, got {runtime.data_parallel!r}")
        return runtime

    @property
    def folder(self) -> Path | None:
        return None if self.checkpoint_dir is None else Path(self.checkpoint_dir)


NAMES = frozenset(f.name for f in fields(FitRuntime))
# What only the estimators on the one-net loop (trainforge.models.neural) take.
DATA_PARALLEL = frozenset({"data_parallel", "shard"})


def listed(callbacks) -> list:
    """``fit``'s ``callbacks`` argument (None: none) as a list, or a one-line TypeError."""
    if callbacks is not None and not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list, got {type(callbacks).__name__}")
    return list(callbacks or ())


def identity(estimator, *arrays: np.ndarray) -> dict:
    """What a checkpoint must match to be resumed: the class, its parameters (not where it
    runs) and the training data's bytes."""
    params = {k: repr(v) for k, v in estimator.get_params().items() if k not in OUTSIDE_IDENTITY}
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return {"estimator": type(estimator).__name__, **params, "data_sha256": digest.hexdigest()}


def starting_loop(build: Callable, runtime: FitRuntime, checkpoint_identity: dict):
    """``build()``'s loop, restored from the newest good checkpoint when ``runtime`` resumes
    (a checkpoint that fails to load or restore is reported and the previous one tried)."""
    from trainforge.training.checkpoint import resume_latest
    from trainforge.training.state import restore

    if not (runtime.resume and runtime.folder):
        return build()
    return resume_latest(
        runtime.folder,
        build,
        lambda loop, found: restore(loop, found.tensors, found.state, checkpoint_identity),
        warn=lambda message: warnings.warn(CheckpointWarning(message), stacklevel=4),
    )


def runtime_callbacks(
    runtime: FitRuntime, monitor: str, checkpoint_identity: dict, every_steps: int = 0
) -> list:
    """The callbacks every torch estimator ends its list with, in this order: the progress
    line, the epoch listener, the caller's callbacks, and checkpointing last (it saves what
    the others did in the step)."""
    from trainforge.training.callbacks.checkpointing import Checkpointing
    from trainforge.training.callbacks.metrics_hook import MetricsHook
    from trainforge.training.callbacks.progress import Progress

    callbacks: list = [Progress(monitor, enabled=None if runtime.verbose else False)]
    if runtime.on_epoch is not None:  # live metrics for a display or a tracker
        callbacks.append(MetricsHook(runtime.on_epoch))
    callbacks.extend(runtime.callbacks)  # e.g. a time budget's Deadline, search Pruning
    if runtime.folder:
        callbacks.append(
            Checkpointing(
                runtime.folder,
                checkpoint_identity,
                monitor=monitor,
                every_steps=every_steps,
            )
        )
    return callbacks
