"""LightGBM's split on categories of few levels: one level against the rest, or a sorted
partition (issue 13).

LightGBM splits a categorical feature either one level against all others, or by sorting the
levels by their gradient statistics and cutting that order (at least ``min_data_per_group``
rows, 100, on each side of each level). It uses the first only for features with at most
``max_cat_to_onehot`` bins, 4 by default, and it counts a bin for missing values too: a
feature of four levels already gets the sorted partition. trainforge sets
``max_cat_to_onehot`` to ``ONE_VS_REST_LEVELS + 1`` (trainforge.models.boosting).

This benchmark trains trainforge's LightGBM candidate (the family's defaults, 5-fold
cross-validation, no ensemble) through ``trainforge.train`` with trainforge's bound and with
LightGBM's own (``ONE_VS_REST_LEVELS`` set to 3 for that run), on every table of the portfolio
meta-benchmark (benchmarks/metabench, the part used to learn the portfolio, never the held-out
tables) where trainforge reads a categorical column of at most 10 levels
(``trainforge.data.schema.infer_schema``), and reports the cross-validated primary metric:
ROC AUC, log loss or RMSE. Tables of more than 20,000 rows are sampled down to 20,000 (seed
0); rows of classes with fewer than 5 rows are left out (5 folds).

    .venv/bin/python benchmarks/lightgbm_categories.py [--write]

The tables are written by the meta-benchmark's own environment (see
benchmarks/metabench/datasets.py for its install line), which this script calls.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import cross_validated_run, machine_line, replace_section, versions

from trainforge.data.schema import infer_schema
from trainforge.metrics import primary_metric
from trainforge.models import boosting

HERE = Path(__file__).resolve().parent
META_PYTHON = HERE / ".venv-meta" / "bin" / "python"
HEADING = "## LightGBM: one level against the rest on categories of few levels (issue 13)"
MAX_ROWS = 20_000
ONE_VS_REST = boosting.ONE_VS_REST_LEVELS
SETTINGS = {"sorted": 3, "one_vs_rest": ONE_VS_REST}  # 3: max_cat_to_onehot 4, LightGBM's own

MATERIALIZE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from benchmarks.metabench import datasets as d
print(json.dumps({n: [str(d.materialize(n)), d.CATALOGUE[n].target, d.CATALOGUE[n].task]
                  for n in d.PORTFOLIO_SETS}))
"""


def tables() -> dict[str, list]:
    """name -> [csv path, target, task] of every portfolio table (written once)."""
    found = subprocess.run(
        [str(META_PYTHON), "-c", MATERIALIZE, str(HERE.parent)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(found.stdout)


def prepared(path: str, target: str, task: str) -> tuple[pd.DataFrame, int]:
    """The table as trainforge will train on it here, and how many of its columns trainforge
    reads as categorical with at most ONE_VS_REST levels."""
    frame = pd.read_csv(path)
    if len(frame) > MAX_ROWS:
        frame = frame.sample(MAX_ROWS, random_state=0)
    if task != "regression":
        counts = frame[target].map(frame[target].value_counts())
        frame = frame[counts >= 5]
    schema, _ = infer_schema(frame, target, {}, task)
    few = [c for c in schema.columns if c.role == "categorical" and c.levels <= ONE_VS_REST]
    return frame.reset_index(drop=True), len(few)


def cross_validated(frame: pd.DataFrame, target: str, task: str, levels: int) -> float:
    """The LightGBM candidate's 5-fold primary metric with ONE_VS_REST_LEVELS at ``levels``."""
    boosting.ONE_VS_REST_LEVELS = levels
    try:
        with tempfile.TemporaryDirectory() as out:
            result = cross_validated_run(frame, target, task, "lightgbm", out)
    finally:
        boosting.ONE_VS_REST_LEVELS = ONE_VS_REST
    metric = primary_metric("auto", task)
    value = float(result.leaderboard.loc[0, metric.name])
    return value if metric.greater_is_better else -value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    rows = []
    for name, (path, target, task) in tables().items():
        frame, few = prepared(path, target, task)
        if not few:
            continue
        started = time.monotonic()
        scores = {s: cross_validated(frame, target, task, n) for s, n in SETTINGS.items()}
        rows.append((name, task, len(frame), few, scores, time.monotonic() - started))
        print(_row(*rows[-1]), flush=True)
    diffs = [r[4]["one_vs_rest"] - r[4]["sorted"] for r in rows]
    better, worse = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    text = "\n".join(
        [
            HEADING,
            "",
            "Command: `.venv/bin/python benchmarks/lightgbm_categories.py --write`. 5-fold "
            "cross-validated score of trainforge's LightGBM candidate on the portfolio "
            "meta-benchmark's tables where trainforge reads a categorical column of at most "
            "10 levels: ROC AUC (binary), log loss (multiclass), RMSE (regression). `sorted`: "
            "LightGBM's own bound (max_cat_to_onehot 4); `one vs rest`: max_cat_to_onehot "
            f"{ONE_VS_REST + 1}. `few`: such columns. `change`: relative, positive is better.",
            "",
            machine_line(),
            f"- Versions: {versions(['lightgbm', 'scikit-learn', 'numpy', 'pandas'])}",
            "",
            "| table | task | rows | few | sorted | one vs rest | change | s |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
            *(_row(*row) for row in rows),
            "",
            f"- One level against the rest better on {better} of {len(rows)} tables, worse on "
            f"{worse}, the same on {len(rows) - better - worse}; median change "
            f"{np.median([d / abs(r[4]['sorted']) for d, r in zip(diffs, rows)]):+.2%}.",
            "",
        ]
    )
    if args.write:
        replace_section(HERE / "RESULTS.md", HEADING, text)


def _row(name: str, task: str, rows: int, few: int, scores: dict, seconds: float) -> str:
    def shown(value: float) -> str:
        return f"{abs(value):.5g}"

    change = (scores["one_vs_rest"] - scores["sorted"]) / abs(scores["sorted"])
    return (
        f"| {name} | {task} | {rows} | {few} | {shown(scores['sorted'])} | "
        f"{shown(scores['one_vs_rest'])} | {change:+.2%} | {seconds:.0f} |"
    )


if __name__ == "__main__":
    main()
