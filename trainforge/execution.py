"""Where a run's candidates and search trials execute: in this process (``Local``, the default)
or as Ray tasks on a cluster (``RayTasks``), as ``execution`` in the spec says (docs/scale.md).

An executor's ``submit(candidate, ctx, limits)`` returns ``outcome()``, which gives the fitted
CandidateResult and the fit's own seconds, or raises what the fit raised. The local executor
fits when the outcome is asked for, so a run that collects each candidate right after
submitting it trains exactly as it always did; a Ray task starts at once and ``outcome()``
waits for it. Either way only the driver writes the run folder, the leaderboard and tracking
(trainforge.candidate_run.collect): a task only fits and returns its result.
"""

from __future__ import annotations

import math
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from trainforge.errors import SpecError

# A Ray task whose worker process dies (killed, out of memory, its node gone) runs again this
# many times before its candidate counts as failed; the run goes on either way.
RETRIES = 3
# Seconds to wait for a cluster's address to answer before saying it cannot be reached (Ray's
# own client retries for about a minute).
REACH_SECONDS = 5.0


class Local:
    """Candidates fit in this process, one at a time, when they are collected.

    ``slots`` is how many trials a search decides before it has the results of the earlier
    ones (``execution.workers``, default 1): a local run with the workers of a Ray run draws the
    same trials as that run.
    """

    backend = "local"

    def __init__(self, workers: int | None = None):
        self.slots = workers or 1

    def submit(self, candidate, ctx, limits):
        return _here(candidate, ctx, limits)

    def progress(self) -> str | None:
        return None

    def record(self) -> dict:
        return {"backend": "local", "workers": self.slots}

    def close(self) -> None:
        pass


def _here(candidate, ctx, limits):
    """An outcome that fits the candidate in this process when it is asked for."""
    from trainforge.candidate_run import fit_here

    def outcome():
        clock = time.perf_counter()
        result = fit_here(candidate, ctx, limits)
        return result, time.perf_counter() - clock

    return outcome


def executor_for(execution):
    """The executor an ``ExecutionSpec`` asks for; connecting to Ray happens here, so a wrong
    address fails before the run has a folder."""
    if execution.backend == "local":
        return Local(execution.workers)
    return RayTasks(execution)


class RayTasks:
    """Each candidate (or trial) is a Ray task that fits it on some node of the cluster.

    The run's data goes to Ray's object store once; a task asks for ``execution.cpus`` CPUs
    and ``execution.gpus`` GPUs and holds its fits to those CPUs; at most ``slots`` are in
    flight. Neural nets in a task do not checkpoint mid-fit (the run folder is the driver's):
    a task cut short by a dead worker runs again from the start, up to RETRIES times.
    """

    backend = "ray"

    def __init__(self, execution):
        ray = _import_ray()
        self.execution = execution
        address = execution.address or os.environ.get("RAY_ADDRESS") or None
        self.address = address
        self.owns = not ray.is_initialized()  # a Ray the caller connected to stays theirs
        if self.owns:
            _connect(ray, address)
        resources = ray.cluster_resources()
        self.nodes = sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))
        self.cpus = float(resources.get("CPU", 0))
        self.gpus = float(resources.get("GPU", 0))
        if execution.gpus > self.gpus:
            self.close()
            raise SpecError(
                f"execution.gpus: each task asks for {execution.gpus:g} GPU(s) but the Ray "
                f"cluster has {self.gpus:g}; lower execution.gpus or add GPU nodes"
            )
        if execution.data_parallel > self.cpus:  # Ray Train would wait for them forever
            self.close()
            raise SpecError(
                f"execution.data_parallel: {execution.data_parallel} workers need as many CPUs "
                f"and the Ray cluster has {self.cpus:g}; lower data_parallel or add nodes"
            )
        self.slots = execution.workers or max(1, int(self.cpus // execution.cpus))
        self.placement: dict[str, str] = {}  # candidate -> the node its task finished on
        self.in_flight: set[str] = set()
        self._data = None  # (dataset id, its object ref)
        self._task = ray.remote(_fit_task).options(
            num_cpus=execution.cpus,
            num_gpus=execution.gpus,
            max_retries=RETRIES,
            retry_exceptions=False,
        )

    def submit(self, candidate, ctx, limits):
        import ray

        if ctx.data_parallel > 1 and "torch" in candidate.family.requires:
            # the driver runs the fit, whose net trains on Ray Train workers
            self.placement[candidate.name] = f"ray train: {ctx.data_parallel} workers"
            return _here(candidate, ctx, limits)
        data = self._dataset(ctx.dataset)
        seconds = limits.deadline - time.monotonic()  # as wall-clock time: a task may queue
        ref = self._task.remote(
            candidate,
            data,
            ctx.profile,
            ctx.primary,
            ctx.imbalance,
            ctx.device,
            None if math.isinf(seconds) else time.time() + max(seconds, 0.0),
            self.execution.cpus,
        )
        self.in_flight.add(candidate.name)

        def outcome():
            try:
                result, seconds, node = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:  # the fit's own error, raised again here
                cause = getattr(exc, "cause", None)
                raise cause if isinstance(cause, BaseException) else exc
            finally:
                self.in_flight.discard(candidate.name)
            self.placement[candidate.name] = node
            return result, seconds

        return outcome

    def progress(self) -> str | None:
        """How many tasks are in flight: running (at most ``slots``) and queued."""
        waiting = len(self.in_flight)
        if not waiting:
            return None
        running = min(waiting, self.slots)
        return f"on Ray: {running} task(s) running, {waiting - running} queued"

    def _dataset(self, dataset):
        """The run's data in the object store, put there once."""
        import ray

        if self._data is None or self._data[0] != id(dataset):
            self._data = (id(dataset), ray.put(dataset))
        return self._data[1]

    def record(self) -> dict:
        """What the manifest says of where the run executed (the address without secrets)."""
        return {
            "backend": "ray",
            "address": public_address(self.address) if self.address else "local Ray (127.0.0.1)",
            "nodes": len(self.nodes),
            "cpus": self.cpus,
            "gpus": self.gpus,
            "workers": self.slots,
            "task": {"cpus": self.execution.cpus, "gpus": self.execution.gpus},
            "placement": dict(sorted(self.placement.items())),
        }

    def close(self) -> None:
        """Disconnect (stopping the Ray this run started); a caller's own Ray stays up."""
        import ray

        if self.owns and ray.is_initialized():
            ray.shutdown()


def _fit_task(candidate, dataset, profile, primary, imbalance, device, deadline, cpus):
    """What a Ray worker runs: fit one candidate, held to the task's CPUs, stopping an
    interruptible fit at ``deadline`` (``time.time()``); returns ``(result, fit seconds, node
    id)``. Neural nets use the task's GPU when Ray gave it one, else the CPU."""
    import ray

    from trainforge.candidates import fit_candidate
    from trainforge.threads import hold_to

    hold_to(max(1, int(cpus)))
    device = device if ray.get_gpu_ids() else "cpu"
    callbacks = None
    space = candidate.family.space
    if deadline is not None and space is not None and space.hooks is not None:
        from trainforge.search.budget import PartDeadlines

        left = max(deadline - time.time(), 0.0)
        deadlines = PartDeadlines(time.monotonic() + left, len(dataset.folds))

        def callbacks(part: str, workers: int = 1) -> list:
            return space.hooks(None, deadlines.next(workers), lambda: False)

    clock = time.perf_counter()
    result = fit_candidate(
        candidate, dataset, profile, primary, None, imbalance, None, callbacks, None, device
    )
    node = ray.get_runtime_context().get_node_id()
    return result, time.perf_counter() - clock, node


def _import_ray():
    try:
        import ray
    except ImportError:
        raise SpecError(
            'execution.backend ray needs Ray: pip install "trainforge[ray]" '
            "(or use the local backend)"
        ) from None
    return ray


def _connect(ray, address: str | None) -> None:
    """Connect to the cluster at ``address``, or start a private Ray on this machine's
    loopback when there is none; a cluster that cannot be reached is one line."""
    import logging

    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        start_private(ray, **quiet)
        return
    if address != "auto" and not address.startswith("ray://"):
        _check_reachable(address)
    package = str(Path(__file__).resolve().parent)
    try:
        ray.init(address=address, runtime_env={"py_modules": [package]}, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(
            f"execution.address: cannot reach a Ray cluster at {public_address(address)} "
            f"({reason}); start one with `ray start --head` or check the address"
        ) from None


def start_private(ray, **settings) -> None:
    """A Ray of this process's own on this machine's loopback, with the cores it may use."""
    from trainforge.threads import usable_cores

    ray.init(num_cpus=usable_cores(), _node_ip_address="127.0.0.1", **settings)


def _check_reachable(address: str) -> None:
    """Refuse at once an address nothing answers at (Ray's client would retry for a minute)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise SpecError(
            f"execution.address: expected host:port, auto or ray://host:port, got {address!r}"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_SECONDS).close()
    except OSError as exc:
        raise SpecError(
            f"execution.address: cannot reach a Ray cluster at {address} "
            f"({exc.strerror or exc}); start one with `ray start --head` or check the address"
        ) from None


def public_address(address: str) -> str:
    """An address as the manifest may show it: no user name, password or query."""
    if "://" not in address:
        return address.rpartition("@")[2]
    parts = urlsplit(address)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"
