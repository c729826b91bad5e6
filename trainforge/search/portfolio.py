"""The learned zero-shot portfolio and the fit-time predictions, read from portfolio.json.

The portfolio is an ordered list of configurations (a family and its settings) for each kind of
task, chosen offline by greedy forward selection over a meta-benchmark of tables
(benchmarks/portfolio.py, the method of TabRepo, Salinas and Erickson 2023): each next entry is
the configuration that most improves the average normalised rank of the portfolio's best member
across the tables. A budgeted run trains the entries in this order before any sampled trial,
and each family's search starts from what its entries scored.

The same benchmark timed every fit; ``learned_cost`` turns those times into a prediction of one
fit's seconds from the size of the table (a log-linear fit per family), which a run scales by
how fast fits go on its own machine.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Callable

PORTFOLIO_FILE = Path(__file__).with_name("portfolio.json")


@lru_cache(maxsize=1)
def _data() -> dict:
    return json.loads(PORTFOLIO_FILE.read_text(encoding="utf-8"))


def portfolio(task: str) -> list[tuple[str, dict]]:
    """The ordered ``(family, settings)`` entries for ``task`` (binary and multiclass share the
    classification list)."""
    kind = "regression" if task == "regression" else "classification"
    return [(entry["family"], dict(entry["params"])) for entry in _data()["portfolios"][kind]]


def learned_cost(family: str) -> Callable[[object], float] | None:
    """``cost(profile)``: predicted seconds of one fit of ``family`` on one thread, from the
    benchmark's fit times (None for a family it did not time)."""
    if family not in _data()["costs"]:
        return None

    def cost(profile) -> float:
        fit = _data()["costs"][family]
        outputs = max(int(getattr(profile, "n_classes", 0) or 0), 1)
        if outputs == 2:
            outputs = 1  # a binary model has one output, like a regression
        value = (
            fit["intercept"]
            + fit["log_rows"] * math.log(max(profile.n_rows, 1))
            + fit["log_columns"] * math.log(max(profile.n_columns, 1))
            + fit["log_outputs"] * math.log(outputs)
        )
        return math.exp(value)

    return cost


def default_order(ladder: list, profile, limit: float | None):
    """The default candidates under a budget, as ``(candidate, study, base)`` triples, and the
    names of the ladder's families left out.

    The baseline first, then the learned portfolio's entries for the families kept (with the
    families that take a slot in it on this table, ``BudgetRules.slot``), then the kept
    families the portfolio does not hold, by ``Family.budget.rank``. A family's entries
    share one study, named after the family; ``base`` is what its trials build on.
    """
    from trainforge.candidates import Candidate, name_candidates

    kept, left_out = [], []
    for candidate in ladder:
        if candidate.family.budget.joins(limit, profile.n_rows):
            kept.append(candidate)
        else:
            left_out.append(candidate.name)
    families = {c.family.name: c.family for c in kept}
    entries = [(families[f], p) for f, p in portfolio(profile.task) if f in families]
    held = {family.name for family, _ in entries}
    rest = sorted(
        (c.family for c in kept if c.family.name not in held), key=lambda f: f.budget.rank
    )
    first = [f for f in rest if f.budget.rank == 0]  # the baseline: instant, always usable
    slots = [(f.budget.slot(profile.n_rows), f) for f in rest if f not in first]
    slotted = [(slot, f) for slot, f in slots if slot is not None]
    for slot, family in sorted(slotted, key=lambda pair: -pair[0]):  # later slots first
        entries.insert(slot, (family, {}))
    after = [f for slot, f in slots if slot is None]
    chosen = [(f, {}) for f in first] + entries + [(f, {}) for f in after]
    order = []
    for candidate in name_candidates(chosen):
        family = candidate.family
        study = family.name if family.space is not None else None
        order.append((candidate, study, Candidate(family.name, family, {})))
    return order, left_out
