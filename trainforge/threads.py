"""How many threads one fit may use, and holding a fit to that many.

A fit's native code (OpenMP in scikit-learn's histogram boosting, LightGBM and XGBoost; BLAS;
torch's intra-op pool; CatBoost's own pool) starts one thread per core by default. When other
processes keep those cores busy, the threads wait on each other at every barrier and a fit
slows down many times over: on 2 cores with one other busy process, one 5-fold histogram
boosting took 47 s, and at a load of 17 it took 261 s on 2 threads against 12 s on one. So
each fit gets the cores this process may use (CPU affinity and a cgroup quota) less those other
processes keep busy right now, and fits on small tables, where thread start-up and barriers
cost more than they give, run on one thread.

The count reaches each library through its own parameter (``n_jobs``) and, for the thread
pools a parameter cannot reach, through ``limited``, which sets them for the duration of one
fit and restores them after: nothing here changes a setting of the caller's process for good.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys
import time
from typing import Callable

# Below this many training rows a fit runs on one thread (XGBoost on 240 rows: 3.4 s on one
# thread, 120 s on two on a busy 2-core machine).
THREADED_ROWS = 20_000
# Samples of the run queue taken to judge how busy the cores are, and the pause between them.
SAMPLES = 5
SAMPLE_PAUSE = 0.01


# The CPUs a Ray task was given (trainforge.execution): its worker process fits on no more.
_task_cpus: int | None = None
# Processes whose load is this run's own (count_as_ours), each with when that starts.
_helpers: dict[int, Callable[[], bool]] = {}


def hold_to(cpus: int | None) -> None:
    """Fit on at most ``cpus`` cores in this process from now on (None: no such bound). Only
    a Ray worker process calls it, for the task it runs."""
    global _task_cpus
    _task_cpus = cpus


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota and
    by the CPUs of the Ray task it runs."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = _cgroup_quota()
    return max(1, min(cores or 1, quota or cores or 1, _task_cpus or cores or 1))


def _cgroup_quota() -> int | None:
    """The cgroup v2 CPU quota in whole cores (rounded up), or None when there is none."""
    try:
        limit, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
    except (OSError, ValueError):
        return None
    if limit == "max":
        return None
    return max(1, math.ceil(int(limit) / int(period)))


def busy_elsewhere() -> float:
    """How many cores other processes keep busy now: the runnable tasks in the kernel's run
    queue (``/proc/loadavg``, an instant count, unlike the load averages) less this process's
    own runnable threads and those of its helper processes (``count_as_ours``), as the median
    of a few samples. 0 where the count cannot be read.

    This run's own work is left out: a fit starts just as the one before it ends, while the
    thread that writes that fit's files and the tracking process logging it are busy, and
    counting them cost every fit of a 30,000-row table its second core (diamonds, 60 s, MLflow
    tracking on: 10 of 10 fits on one thread of two)."""
    counts = []
    for index in range(SAMPLES):
        try:
            running = int(open("/proc/loadavg").read().split()[3].split("/")[0])
        except (OSError, IndexError, ValueError):
            return 0.0
        counts.append(running - _runnable_ours())
        if index + 1 < SAMPLES:
            time.sleep(SAMPLE_PAUSE)
    return float(max(statistics.median(counts), 0))


def count_as_ours(pid: int | None, ready: Callable[[], bool] = lambda: True) -> None:
    """Leave process ``pid``'s load out of ``busy_elsewhere`` from when ``ready()`` is true: a
    helper of this run, such as the tracking process once its start-up is over."""
    if pid is not None:
        _helpers[pid] = ready


def count_again(pid: int | None) -> None:
    """Count process ``pid``'s load as other processes' again (it ended, or is no helper)."""
    _helpers.pop(pid, None)


def _runnable_ours() -> int:
    """Runnable threads of this process (the one reading, at least) and of its helpers."""
    total = 0
    for pid in ("self", *[pid for pid, ready in _helpers.items() if ready()]):
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                stat = open(f"/proc/{pid}/task/{task}/stat").read()
            except OSError:
                continue  # the thread ended while we looked
            total += stat[stat.rfind(")") + 2] == "R"  # the state follows the name's ")"
    return max(total, 1)


def fit_threads(rows: int) -> int:
    """Threads for a fit on ``rows`` training rows: one on small tables, else the usable cores
    that other processes leave free (at least one)."""
    if rows < THREADED_ROWS:
        return 1
    return free_cores()


def free_cores() -> int:
    """The usable cores other processes leave free now (at least one)."""
    cores = usable_cores()
    return 1 if cores == 1 else max(1, min(cores, round(cores - busy_elsewhere())))


@contextlib.contextmanager
def limited(threads: int, torch: bool = False):
    """Native thread pools (OpenMP, BLAS, and torch's when ``torch`` or when torch is already
    loaded) hold at most ``threads`` threads inside the block; the earlier limits come back
    after it."""
    from threadpoolctl import threadpool_limits

    if torch:
        import torch as _torch  # noqa: F401 - loaded so that its pool can be limited
    torch = sys.modules.get("torch")
    if not hasattr(torch, "get_num_threads"):
        torch = None  # absent, or still being imported by another thread: nothing to limit yet
    before = torch.get_num_threads() if torch is not None else None
    try:
        with threadpool_limits(limits=threads):
            if torch is not None:
                torch.set_num_threads(threads)
            yield
    finally:
        if torch is not None and before is not None:
            torch.set_num_threads(before)
