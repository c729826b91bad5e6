"""LightGBM's split on categories of few levels: one level against the rest, or a sorted
partition (issue 13).

LightGBM splits a categorical feature either one level against all others, or by sorting the
levels by their gradient statistics and cutting that order (at least ``min_data_per_group``
rows, 100, on each side of each level). It uses the first only for features with at most
``max_cat_to_onehot`` bins, 4 by default, and it counts a bin for missing values too: a
feature of four levels already gets the sorted partition. trainforge sets
``max_cat_to_onehot`` to ``ONE_VS_REST_LEVELS + 1`` (trainforge.models.boosting).

This benchmark fits LightGBM directly (the family's default settings: learning rate 0.05, 31
leaves, 20 rows per leaf, early stopping after 50 rounds on a fifth of each training fold, one
thread) on every table of the portfolio meta-benchmark (benchmarks/metabench, the part used to
learn the portfolio, never the held-out tables) that has a categorical feature of at most 10
levels, as trainforge reads it (text columns, and integer columns of at most 10 values), and
scores 5-fold cross-validated predictions both ways. Tables of more than 20,000 rows are
sampled down to 20,000 (seed 0).

    .venv/bin/python benchmarks/lightgbm_categories.py [--write]

The tables are written by the meta-benchmark's own environment (see
benchmarks/metabench/datasets.py for its install line), which this script calls.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import machine_line, replace_section, versions

from trainforge.data.schema import LOW_CARDINALITY_INTEGERS
from trainforge.models.boosting import MULTICLASS_MAX_STEP, ONE_VS_REST_LEVELS

HERE = Path(__file__).resolve().parent
META_PYTHON = HERE / ".venv-meta" / "bin" / "python"
HEADING = "## LightGBM: one level against the rest on categories of few levels (issue 13)"
MAX_ROWS = 20_000
SETTINGS = {
    "sorted": {},  # LightGBM's default, max_cat_to_onehot 4
    "one_vs_rest": {"max_cat_to_onehot": ONE_VS_REST_LEVELS + 1},
}

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


def prepared(path: str, target: str, task: str):
    """Features with trainforge's categorical columns as pandas categories, codes of the
    target, and how many categorical features have at most 10 levels."""
    frame = pd.read_csv(path)
    if len(frame) > MAX_ROWS:
        frame = frame.sample(MAX_ROWS, random_state=0)
    y = frame.pop(target)
    few = 0
    for column in frame.columns:
        values = frame[column].dropna()
        numeric = pd.api.types.is_numeric_dtype(values)
        coded = numeric and bool((values % 1 == 0).all())
        if not numeric or (coded and 2 < values.nunique() <= LOW_CARDINALITY_INTEGERS):
            frame[column] = frame[column].astype("category")
            few += values.nunique() <= ONE_VS_REST_LEVELS
    if task == "regression":
        return frame.reset_index(drop=True), y.to_numpy(float), few
    codes = pd.factorize(y)[0]
    kept = pd.Series(codes).map(pd.Series(codes).value_counts()).to_numpy() >= 5
    return frame[kept].reset_index(drop=True), pd.factorize(codes[kept])[0], few


def cross_validated(X: pd.DataFrame, y: np.ndarray, task: str, extra: dict) -> float:
    """5-fold score, signed so that higher is better: ROC AUC, or minus log loss or RMSE."""
    import lightgbm as lgb
    from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score
    from sklearn.model_selection import KFold, StratifiedKFold

    classes = int(y.max()) + 1 if task != "regression" else 1
    objective = {
        "regression": {"objective": "regression"},
        "binary": {"objective": "binary"},
        "multiclass": {
            "objective": "multiclass",
            "num_class": classes,
            "max_delta_step": MULTICLASS_MAX_STEP,
        },
    }[task]
    params = {
        **objective,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_child_samples": 20,
        "verbose": -1,
        "seed": 0,
        "num_threads": 1,
        **extra,
    }
    splitter = (KFold if task == "regression" else StratifiedKFold)(5, shuffle=True, random_state=0)
    oof = np.zeros((len(X), classes if task == "multiclass" else 1))
    for train, test in splitter.split(X, y):
        inner = np.random.default_rng(0).random(len(train)) < 0.8
        fit, stop = train[inner], train[~inner]
        data = lgb.Dataset(X.iloc[fit], y[fit])
        valid = lgb.Dataset(X.iloc[stop], y[stop], reference=data)
        early = lgb.early_stopping(50, verbose=False)
        booster = lgb.train(params, data, 3000, valid_sets=[valid], callbacks=[early])
        predicted = booster.predict(X.iloc[test], num_iteration=booster.best_iteration)
        oof[test] = predicted.reshape(len(test), -1)
    if task == "regression":
        return -float(mean_squared_error(y, oof[:, 0]) ** 0.5)
    if task == "binary":
        return float(roc_auc_score(y, oof[:, 0]))
    return -float(log_loss(y, oof))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    rows = []
    for name, (path, target, task) in tables().items():
        X, y, few = prepared(path, target, task)
        if not few:
            continue
        started = time.monotonic()
        scores = {s: cross_validated(X, y, task, extra) for s, extra in SETTINGS.items()}
        rows.append((name, task, len(X), few, scores, time.monotonic() - started))
        print(_row(*rows[-1]), flush=True)
    diffs = [r[4]["one_vs_rest"] - r[4]["sorted"] for r in rows]
    better, worse = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    text = "\n".join(
        [
            HEADING,
            "",
            "Command: `.venv/bin/python benchmarks/lightgbm_categories.py --write`. 5-fold "
            "cross-validated score of LightGBM on the portfolio meta-benchmark's tables with a "
            "categorical feature of at most 10 levels: ROC AUC (binary), log loss "
            "(multiclass), RMSE (regression). `sorted`: LightGBM's default (max_cat_to_onehot "
            f"4); `one vs rest`: max_cat_to_onehot {ONE_VS_REST_LEVELS + 1}. `few`: such "
            "features. `change`: relative, positive is better.",
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
