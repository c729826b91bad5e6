"""The leaderboard: the model the run hands back first, then the others by the primary
validation metric."""

from __future__ import annotations

import math

import pandas as pd

from trainforge.metrics import STANDARD, Metric

COST_COLUMNS = ["fit_seconds", "predict_ms_per_1k", "size_kb"]


def ranked(results: list, primary: Metric) -> list:
    """Successful candidates by primary metric (ties keep ladder order), then failed ones."""

    def key(item):
        position, result = item
        score = result.metrics.get(primary.name, math.nan)
        if result.status != "ok" or math.isnan(score):
            return (1, 0.0, position)
        return (0, -score if primary.greater_is_better else score, position)

    return [result for _, result in sorted(enumerate(results), key=key)]


def leaderboard_frame(
    results: list, primary: Metric, task: str, first: str | None = None
) -> pd.DataFrame:
    """One row per candidate: ``first`` (the model the run picked, see trainforge.selection)
    on top, then the others by primary metric; the task's standard metrics (primary first),
    then any others the candidates were scored on (such as PR AUC and MCC under class
    imbalance)."""
    metrics = [primary.name] + [m for m in STANDARD[task] if m != primary.name]
    for result in results:
        metrics += [m for m in result.metrics if m not in metrics]
    rows = []
    order = ranked(results, primary)
    order = [r for r in order if r.name == first] + [r for r in order if r.name != first]
    for rank, result in enumerate(order, start=1):
        row = {"rank": rank, "candidate": result.name, "family": result.family}
        row.update({m: result.metrics.get(m, math.nan) for m in metrics})
        if result.primary_std is not None:
            row[f"{primary.name}_std"] = result.primary_std
        row.update(
            fit_seconds=round(result.fit_seconds, 3),
            predict_ms_per_1k=round(result.predict_ms_per_1k, 3),
            size_kb=round(result.size_kb, 1),
            status=result.status,
        )
        rows.append(row)
    return pd.DataFrame(rows)
