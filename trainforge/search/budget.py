"""The run's budget: how much time and how many trials are left, across resumed attempts.

Time is counted from the start of the run's first attempt. A resumed run continues with what
the earlier attempts left: their used seconds are saved in the manifest after every candidate,
so at most one candidate's time is lost to a kill.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

# Time kept back from the search for what follows it: the last models' files, the ensemble,
# the permutation importance, the report, closing the tracking run and ending the process
# (about 4 s measured on a 300-row table with bagged forests: 1.1 s of files still being
# written, 1.5 s of report; the importance takes whatever is left, or is skipped): this share
# of the limit, within these bounds, and never more than a third of the limit. The limit
# counts from the command's start (trainforge.clock), so start-up and reading data are in it.
CLOSING_SHARE = 0.1
CLOSING_MIN_SECONDS = 6.0
CLOSING_MAX_SECONDS = 60.0
# The reserve is never less than this plus the slowest writing of a candidate's files so far:
# the last candidate's files are written after the search. In 60 s runs on covid_test_result
# (11,643 rows) the rest of the closing (two combined models, the report) took 4.5-4.7 s, and
# one 5-fold forest's files 3.6 s (the command took 63.5 s before this rule and the stacked
# model's thread limit, trainforge.ensemble.build_stack; forests now write in a tenth of that,
# trainforge.models.forest).
CLOSING_BASE_SECONDS = 4.0
# Under a budget, tables with fewer training rows than this are bagged: every candidate is k
# fold models scored by their out-of-fold predictions (see trainforge.model.BaggedModel),
# unless the spec sets a split or gives a validation file. A search picks the best of many
# trials, and on a small holdout that pick follows noise (credit_g, 800 rows: 352 trials raised
# the holdout score while the test score stayed below FLAML's); out-of-fold predictions cover
# every row, and the averaged fold models predict better than one model would.
BAG_ROWS = 20_000
# Time limits bag larger tables: the row threshold grows in proportion to the limit past
# BAG_ROWS_SECONDS (40,000 rows at a minute), up to MAX_BAG_ROWS; such tables bag with BAG_FOLDS
# folds (their fits cost most). At 60 s on four portfolio tables of 21,000-34,000 rows, bagging
# beat the holdout on all four (benchmarks/RESULTS.md, issue 13 notes).
BAG_ROWS_SECONDS = 30
MAX_BAG_ROWS = 100_000
# k: BAG_FOLDS, or MORE_FOLDS from time limits of MORE_FOLDS_SECONDS (and with no time limit):
# more folds fit each model on more rows, at the cost of more fits.
BAG_FOLDS = 5
MORE_FOLDS = 8
MORE_FOLDS_SECONDS = 300
# Series are bagged (BAG_FOLDS folds) below this many, with or without a budget: on UCR
# problems of 50 series a 10-series holdout picked series_linear (test accuracy 0.64) over
# rocket (0.82), and every model learned from 80% of the few series there are.
SERIES_BAG_ROWS = 1_000
# Of that time, the permutation importance leaves this much for the report, the tracking run
# and the end of the process after it: its repeats shrink to what fits
# (trainforge.artifacts.write_importance).
REPORT_SECONDS = 3.0
# An interruptible fit (a neural net or a boosting library; under cross-validation all its
# folds, see PartDeadlines) gets at most this share of the remaining time, so one slow family
# cannot eat the whole budget (until LAST_SHARE).
FIT_SHARE = 0.25
# Predicted seconds of a candidate: this many times the slowest earlier candidate of the same
# family (costs grow with the settings a search tries), or before any, this many times the
# family's size-based prediction (Family.budget.cost) scaled by how fast fits go here.
COST_MARGIN = 1.5
# An interruptible fit starts when its predicted time is at most this many times its deadline
# (it stops there, keeping its best round so far) and fits in what is left; a fit that cannot
# be stopped starts only when its predicted time fits in what is left.
INTERRUPTIBLE_SLACK = 2.0
# Once no fit passes that rule, the search goes on one fit at a time, each interruptible fit
# getting this share of what is left: without it, bagged runs stopped with up to a fifth of the
# limit unused (300 s: shuttle stopped searching at 227 s with 19 portfolio entries skipped,
# gss_income at 234 s), because a fit needed twice its predicted time left to start.
LAST_SHARE = 1.0


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
    # seconds taken over seconds predicted by size, for fits so far: how fast this machine is
    pace: list[float] = field(default_factory=list)
    # seconds held back from the search for a step after it (the second stacking layer)
    held: float = 0.0
    # the slowest writing of a candidate's files so far (see CLOSING_BASE_SECONDS)
    saving: float = 0.0
    # the share of the remaining time an interruptible fit gets: FIT_SHARE, then LAST_SHARE
    share: float = FIT_SHARE

    def used(self) -> float:
        return self.used_before + time.monotonic() - self.started

    @property
    def reserve(self) -> float:
        if self.limit is None:
            return 0.0
        share = min(max(CLOSING_SHARE * self.limit, CLOSING_MIN_SECONDS), CLOSING_MAX_SECONDS)
        return min(max(share, CLOSING_BASE_SECONDS + self.saving), self.limit / 3)

    def remaining(self) -> float:
        """Seconds left for training (the end's reserve already taken off)."""
        if self.limit is None:
            return math.inf
        return self.limit - self.reserve - self.held - self.used()

    def deadline(self) -> float:
        """The ``time.monotonic()`` value at which training must stop."""
        return time.monotonic() + self.remaining()

    def hold(self, seconds: float) -> None:
        """Keep ``seconds`` back from the search for a step after it, when that step fits in
        what is left now; one that does not keeps nothing back (at 300 s, bank_marketing,
        diamonds and shuttle stopped searching 34-42 s early, that time held for a second
        stacking layer that then had no time to start)."""
        self.held = seconds if seconds <= self.remaining() else 0.0

    def fit_deadline(self) -> float:
        """When an interruptible fit starting now must stop."""
        if self.limit is None:
            return math.inf
        return time.monotonic() + max(self.remaining(), 0.0) * self.share

    def record(self, family: str, seconds: float, by_size: float | None = None) -> None:
        """Note a candidate's seconds, and against ``by_size`` (its size-based prediction
        before any machine scaling) how fast this machine fits."""
        self.costs.setdefault(family, []).append(seconds)
        if by_size:
            self.pace.append(seconds / by_size)

    def by_size(self, family, profile, folds: int) -> float | None:
        """A size-based prediction of one candidate's seconds (``folds`` fits) before any
        scaling, or None when the family has no cost model."""
        cost = family.budget.cost
        return None if cost is None else cost(profile) * folds

    def predicted(self, family, profile, folds: int) -> float | None:
        """Predicted seconds of a candidate of ``family``: from its earlier candidates, else
        from its size and the pace of earlier fits (None: no way to tell)."""
        seen = self.costs.get(family.name)
        if seen:
            return COST_MARGIN * max(seen)
        size = self.by_size(family, profile, folds)
        if size is None:
            return None
        pace = float(np.median(self.pace)) if self.pace else 1.0
        return COST_MARGIN * size * pace

    def fits(self, family, profile, folds: int, interruptible: bool) -> bool:
        """Whether a candidate of ``family`` may start now without running past the limit."""
        left = self.remaining()
        if left <= 0:
            return False
        if math.isinf(left):
            return True
        cost = self.predicted(family, profile, folds)
        if cost is None:
            return interruptible
        if interruptible:
            return cost <= min(INTERRUPTIBLE_SLACK * self.share, 1.0) * left
        return cost <= left

    def last_fits(self) -> bool:
        """Give every later interruptible fit all the time left (LAST_SHARE); False when that
        was already so, or there is no time limit."""
        if self.limit is None or self.share >= LAST_SHARE:
            return False
        self.share = LAST_SHARE
        return True

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
    a bagged candidate. Each part gets an even share of the time left when it starts, and never
    less than an even share of the whole: one deadline for all parts let slow early folds use
    it up, and the last part stopped after its first round (car, 300 s: a saved CatBoost model
    had one round, test log loss 1.34)."""

    def __init__(self, end: float, parts: int, clock=time.monotonic):
        self.end, self.parts, self.clock = end, max(parts, 1), clock
        self.started = 0
        self.whole = max(end - clock(), 0.0)

    def next(self, workers: int = 1) -> float:
        """The deadline of the part starting now, when ``workers`` parts run at once: each
        gets the time left shared by the rounds of parts still to run."""
        now = self.clock()
        rounds = math.ceil(max(self.parts - self.started, 1) / workers)
        floor = self.whole / math.ceil(self.parts / workers)
        self.started += 1
        if math.isinf(self.end):
            return math.inf
        return now + max((self.end - now) / rounds, floor)


def bag_folds(spec, dataset, modality: str) -> int | None:
    """How many folds a budgeted run on ``dataset`` bags with, or None to keep its split (see
    BAG_ROWS and ``bag_rows``): k from BAG_FOLDS to MORE_FOLDS by the time limit (BAG_FOLDS
    past BAG_ROWS rows), at most the smallest class's row count, and no bagging below 3 folds.
    Small series data (SERIES_BAG_ROWS) is bagged with BAG_FOLDS folds also without a
    budget."""
    series = modality == "sequence" and len(dataset.X) < SERIES_BAG_ROWS
    if (
        (spec.budget is None and not series)
        or spec.data.split.model_fields_set  # the spec chose a split of its own
        or "validation" in dataset.fingerprints
        or dataset.bagged
        or (modality != "table" and not series)
    ):
        return None
    limit = spec.budget.time if spec.budget is not None else None
    if len(dataset.X) >= bag_rows(limit):
        return None
    small = not series and len(dataset.X) < BAG_ROWS
    more = small and (limit is None or limit >= MORE_FOLDS_SECONDS)
    folds = MORE_FOLDS if more else BAG_FOLDS
    if dataset.task != "regression":
        folds = min(folds, int(np.bincount(dataset.y).min()))
    return folds if folds >= 3 else None


def bag_rows(limit: float | None) -> int:
    """The training rows from which a budgeted run with time limit ``limit`` (seconds, or
    None) keeps its holdout instead of bagging (see BAG_ROWS)."""
    if limit is None:
        return BAG_ROWS
    return int(min(MAX_BAG_ROWS, BAG_ROWS * max(1.0, limit / BAG_ROWS_SECONDS)))


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
