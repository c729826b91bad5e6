"""The run's budget: how much time and how many trials are left, across resumed attempts.

Time is counted from the start of the run's first attempt. A resumed run continues with what
the earlier attempts left: their used seconds are saved in the manifest after every candidate,
so at most one candidate's time is lost to a kill.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

# Time kept back from the search for what follows it: the search history, the ensemble, the
# permutation importance and the report (2 to 8 s measured on small tables, mostly the
# ensemble and drawing the report): this share of the limit, within these bounds, and never more
# than a third of the limit.
CLOSING_SHARE = 0.1
CLOSING_MIN_SECONDS = 8.0
CLOSING_MAX_SECONDS = 60.0
# Under a budget, tables with fewer training rows than this are scored by CV_FOLDS-fold
# cross-validation unless the spec sets a split or gives a validation file: a search picks the
# best of many trials, and on a small holdout that pick follows noise (credit_g, 800 rows:
# 352 trials raised the holdout score while the test score stayed below FLAML's, which
# cross-validates small data).
CV_ROWS = 10_000
CV_FOLDS = 5
# Of that time, the permutation importance leaves this much for the report after it: the
# importance's repeats shrink to what fits (trainforge.artifacts.write_importance).
REPORT_SECONDS = 3.0
# An interruptible fit (a neural net or a boosting library; under cross-validation all its
# folds and the refit, see PartDeadlines) gets at most this share of the remaining time, so
# one slow family cannot eat the whole budget.
FIT_SHARE = 0.25
# Predicted seconds for a fit that cannot be stopped: this many times the slowest earlier fit
# of the same family (costs grow with the settings a search tries).
COST_MARGIN = 1.5
# From this load per core on, fits run on one thread (see ``fit_threads``).
BUSY_LOAD_PER_CORE = 2.0


@dataclass
class Budget:
    """Time and trial limits of one run.

    Args:
        limit: seconds for the whole run, or None for no time limit.
        trials: search trials after the portfolio, or None for as many as time allows.
        used_before: seconds used by earlier attempts at this run.
        started: ``time.monotonic()`` when this attempt started.
    """

    limit: float | None
    trials: int | None
    used_before: float = 0.0
    started: float = field(default_factory=time.monotonic)
    costs: dict[str, list[float]] = field(default_factory=dict)

    def used(self) -> float:
        return self.used_before + time.monotonic() - self.started

    @property
    def reserve(self) -> float:
        if self.limit is None:
            return 0.0
        share = min(max(CLOSING_SHARE * self.limit, CLOSING_MIN_SECONDS), CLOSING_MAX_SECONDS)
        return min(share, self.limit / 3)

    def remaining(self) -> float:
        """Seconds left for training (the end's reserve already taken off)."""
        if self.limit is None:
            return math.inf
        return self.limit - self.reserve - self.used()

    def deadline(self) -> float:
        """The ``time.monotonic()`` value at which training must stop."""
        return time.monotonic() + self.remaining()

    def fit_deadline(self) -> float:
        """When an interruptible fit starting now must stop."""
        if self.limit is None:
            return math.inf
        return time.monotonic() + max(self.remaining(), 0.0) * FIT_SHARE

    def record(self, family: str, seconds: float) -> None:
        self.costs.setdefault(family, []).append(seconds)

    def predicted(self, family: str) -> float | None:
        """Predicted seconds of a fit of ``family``, from its earlier fits (None: no fit yet)."""
        seen = self.costs.get(family)
        if not seen:
            return None
        return COST_MARGIN * max(seen)

    def fits(self, family: str, interruptible: bool) -> bool:
        """Whether a fit of ``family`` may start now without running past the limit."""
        left = self.remaining()
        if left <= 0:
            return False
        if interruptible or math.isinf(left):
            return True
        cost = self.predicted(family)
        return cost is None or cost <= left

    def summary(self, trials_run: int, stopped_by: str | None) -> dict:
        """What the manifest records about the budget."""
        used = round(self.used(), 3)
        overrun = None if self.limit is None else round(max(0.0, used - self.limit), 3)
        return {
            "time_limit_seconds": self.limit,
            "trials": self.trials,
            "used_seconds": used,
            "overrun_seconds": overrun,
            "trials_run": trials_run,
            "stopped_by": stopped_by,
        }


class PartDeadlines:
    """Deadlines for the parts of one interruptible fit that must end at ``end``: the folds of
    cross-validation, then the refit on all rows. Each part gets an even share of the time
    left when it starts, and never less than an even share of the whole: one deadline for all
    parts let slow folds use it up, and the refit that becomes the saved model stopped after
    its first round (car, 300 s: the saved CatBoost model had one round, test log loss 1.34)."""

    def __init__(self, end: float, parts: int, clock=time.monotonic):
        self.end, self.parts, self.clock = end, max(parts, 1), clock
        self.started = 0
        self.floor = max(end - clock(), 0.0) / self.parts

    def next(self) -> float:
        """The deadline of the part starting now."""
        now = self.clock()
        left = max(self.parts - self.started, 1)
        self.started += 1
        if math.isinf(self.end):
            return math.inf
        return now + max((self.end - now) / left, self.floor)


def cross_validates(spec, dataset, modality: str) -> bool:
    """Whether a budgeted run on ``dataset`` switches to cross-validation (see CV_ROWS)."""
    return (
        spec.budget is not None
        and not spec.data.split.model_fields_set  # the spec chose no split of its own
        and "validation" not in dataset.fingerprints
        and not dataset.refit
        and modality == "table"
        and len(dataset.X) < CV_ROWS
        and (dataset.task == "regression" or np.bincount(dataset.y).min() >= CV_FOLDS)
    )


def closed(summary: dict, seconds: float) -> dict:
    """The manifest's budget record once the steps after the search (``seconds``) are done:
    ``used_seconds`` and ``overrun_seconds`` then cover the whole run."""
    search = summary.get("search_seconds", summary["used_seconds"])
    used = round(search + seconds, 3)
    limit = summary["time_limit_seconds"]
    return {
        **summary,
        "search_seconds": search,
        "closing_seconds": round(seconds, 3),
        "used_seconds": used,
        "overrun_seconds": None if limit is None else round(max(0.0, used - limit), 3),
    }


def fit_threads():
    """A context in which a fit uses one native thread when the machine is oversubscribed.

    With more runnable threads than cores, OpenMP's threads wait on each other at every
    barrier: on 2 cores at a load of 17, scikit-learn's HistGradientBoosting took 261 s to fit
    segment on its default 2 threads and 12 s on one. A budget needs predictable fits, so when
    the 1-minute load average is at least ``BUSY_LOAD_PER_CORE`` per core, native thread pools
    (OpenMP, BLAS) are limited to one thread for the fit.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if os.getloadavg()[0] < BUSY_LOAD_PER_CORE * (cores or 1):
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)
