"""The final pick: which result the run hands back, chosen on one footing.

Each single candidate's score is its own validation (out-of-fold) score. The best of many
candidates and search trials is a choice, and that choice flatters its score: after a few dozen
trials the best trial's score is high partly by luck. The ensemble's score is cross-fitted
(weights chosen on one half of the validation rows score the other half), which carries no
such luck. Comparing the two as they stand picks a lucky trial over a better ensemble.

So the pick compares procedures, each cross-fitted on the same two halves of the validation
rows: "take the best single result" (chosen on one half, scored on the other) against the
ensemble and the stacked model (weights or meta-learner fitted on one half, scored on the
other). The manifest keeps the figures (``selection``).

When an ensemble or a stacked model was built, the run hands back the better of those two; the
best single result only when neither was built. Cross-fitting is harder on a combined model
than on the single pick: its weights (or meta-learner) are fitted on half the rows and score
the other half, while the model handed back is fitted on all of them, so the single result
can win the halves and still lose on new rows. On the test quarters of seven benchmark tables
(benchmarks/RESULTS.md, "The final pick") the better combined model was never behind the best
single one, including the one table where the halves had preferred the single (lending_club:
test ROC AUC 0.7695 for the single, 0.7744 for the ensemble, 0.7765 for the stacked model).
"""

from __future__ import annotations

import math

import numpy as np

from trainforge.ensemble import (
    COMBINED,
    member_output,
    scorer,
    signed,
    split_halves,
    usable_members,
)
from trainforge.leaderboard import ranked
from trainforge.metrics import Metric
from trainforge.models.registry import is_baseline


def pick(results: list, primary: Metric, task: str, seed: int) -> tuple[object, dict | None]:
    """The result to hand back, and the figures it was picked on (None when there was no
    choice between procedures: no combined candidate, or no single one to compare it with).
    """
    order = [r for r in ranked(results, primary) if r.status == "ok"]
    if not order:
        return (ranked(results, primary) or [None])[0], None
    combined = [
        r
        for r in order
        if r.family in COMBINED and not math.isnan(r.metrics.get(primary.name, math.nan))
    ]
    singles = [r for r in order if r.family not in COMBINED]
    if not combined:
        return order[0], None
    chosen = max(combined, key=lambda r: signed(r.metrics[primary.name], primary))
    crossfit = best_single_crossfit(singles, primary, task, seed) if singles else None
    if crossfit is None:
        return chosen, None
    best_single = singles[0]
    figures = {r.name: round(r.metrics[primary.name], 6) for r in combined}
    record = {
        "metric": primary.name,
        "footing": "cross-fitted on two halves of the validation rows",
        "best_single": {"candidate": best_single.name, "cross_fitted": round(crossfit, 6)},
        **figures,
        "picked": chosen.name,
    }
    return chosen, record


def best_single_crossfit(singles: list, primary: Metric, task: str, seed: int) -> float | None:
    """The score of "take the best single result": for each half of the validation rows, the
    result scoring best on the other half predicts it. None when fewer than two results have
    validation predictions (there is then no choice to flatter anything)."""
    usable = usable_members(singles, primary, task)
    baseline = [r for r in singles if is_baseline(r.family) and r.valid is not None]
    usable += baseline  # the baseline can be the best single result too
    if len(usable) < 2:
        return None
    y = usable[0].valid.y
    outputs = {r.name: member_output(r, task) for r in usable}
    if any(o is None or len(o) != len(y) for o in outputs.values()):
        return None
    halves = split_halves(y, task, seed)
    crossfit = np.zeros_like(next(iter(outputs.values())), dtype=float)
    for chosen in (halves, ~halves):
        score = scorer(y[~chosen], primary, task)
        best = max(outputs, key=lambda n: signed(score(outputs[n][~chosen]), primary))
        crossfit[chosen] = outputs[best][chosen]
    value = scorer(y, primary, task)(crossfit)
    return None if math.isnan(value) else float(value)
