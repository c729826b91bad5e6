"""LightGBM on multiclass tables with and without the cap on leaf steps (issue 13).

A multiclass LightGBM leaf moves a class's score by at most ``MULTICLASS_MAX_STEP`` learning
rates (trainforge.models.boosting). This benchmark fits the same LightGBM candidates through
``trainforge.train`` with the cap and without it (LightGBM's own default, no cap), on the
multiclass tables of the AutoML comparison, and scores each twice: 5-fold cross-validated log
loss on the training part, and log loss on the test quarter of the model refitted on all of it.
Settings: the family's defaults, and two of the learned portfolio's LightGBM entries (``:1``, a
high learning rate on many leaves, and ``:4``, tiny leaves).

The split files come from the AutoML benchmark (``benchmarks/out/automl/<table>/``, written by
any run of benchmarks/automl.py on those tables).

    .venv/bin/python benchmarks/lightgbm_cap.py [--tables a,b] [--write]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
from automl import SPLITS, score_predictions
from common import cross_validated_run, machine_line, replace_section, versions

from trainforge.models import boosting

HERE = Path(__file__).resolve().parent
TABLES = ("shuttle", "segment", "car", "chile_vote", "covid_test_result")
CONFIGS = ("lightgbm:1", "lightgbm:4")
HEADING = "## LightGBM on multiclass tables: a cap on leaf steps (issue 13)"


def settings() -> dict[str, dict]:
    """The family's defaults and the portfolio's LightGBM entries named in CONFIGS."""
    from trainforge.search.portfolio import _data

    entries = {
        entry["config"]: dict(entry["params"])
        for entry in _data()["portfolios"]["classification"]
        if entry["family"] == "lightgbm"
    }
    return {"default": {}, **{c: entries[c] for c in CONFIGS if c in entries}}


def score(table: str, params: dict, cap: float) -> dict:
    """Cross-validated and test log loss of one LightGBM candidate with ``cap``."""
    meta = json.loads((SPLITS / table / "meta.json").read_text())
    target = meta["target"]
    test = pd.read_csv(SPLITS / table / "test.csv")
    boosting.MULTICLASS_MAX_STEP = cap
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as out:
        model = {"name": "lightgbm", **params}
        train = str(SPLITS / table / "train.csv")
        result = cross_validated_run(train, target, "multiclass", model, out)
        proba = result.best.predict_proba(test.drop(columns=[target]))  # proba_<class> columns
        return {
            "cv": float(result.leaderboard.loc[0, "log_loss"]),
            "test": score_predictions("multiclass", test[target], proba),
            "seconds": round(time.monotonic() - started, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    capped = boosting.MULTICLASS_MAX_STEP
    rows, chosen = [], settings()
    for table in args.tables.split(","):
        for name, params in chosen.items():
            found = {cap: score(table, params, cap) for cap in (0.0, capped)}
            row = (table, name, found[0.0], found[capped])
            rows.append(row)
            print(_row(*row), flush=True)
    text = "\n".join(
        [
            HEADING,
            "",
            "Command: `.venv/bin/python benchmarks/lightgbm_cap.py --write` (split files from "
            "benchmarks/automl.py). Log loss, lower is better: `cv` 5-fold cross-validated on "
            "the training part, `test` the refitted model on the test quarter. `none`: no cap "
            f"(LightGBM's default); `cap`: max_delta_step {capped:g}.",
            "",
            machine_line(),
            f"- Versions: {versions(['lightgbm', 'scikit-learn', 'numpy', 'pandas'])}",
            "",
            "| table | settings | cv none | cv cap | test none | test cap | s none | s cap |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
            *(_row(*row) for row in rows),
            "",
        ]
    )
    if args.write:
        replace_section(HERE / "RESULTS.md", HEADING, text)


def _row(table: str, name: str, none: dict, cap: dict) -> str:
    return (
        f"| {table} | {name} | {none['cv']:.5f} | {cap['cv']:.5f} | {none['test']:.5f} | "
        f"{cap['test']:.5f} | {none['seconds']:.1f} | {cap['seconds']:.1f} |"
    )


if __name__ == "__main__":
    main()
