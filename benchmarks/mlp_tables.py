"""The table MLP's settings, judged by what they add to a boosting model (issue 13).

An MLP earns its fit time in a run when the ensemble gives it weight; on its own it rarely
beats boosting on tables. So each variant is scored here twice on one 80/20 holdout of a
table: alone, and averaged with LightGBM's defaults (the best weight of 0.1..0.5 on the MLP,
chosen on the same holdout for every variant alike). Tables come from the meta-benchmark's
portfolio part only (benchmarks/metabench/datasets.py), never from its held-out part or from
../shared/data, which the AutoML comparison scores.

    benchmarks/.venv-meta/bin/python -m benchmarks.metabench.datasets   # once: the CSVs
    .venv/bin/python -m benchmarks.mlp_tables [--tables a,b] [--variants a,b]
    .venv/bin/python -m benchmarks.mlp_tables --report [--write]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd

import trainforge
from benchmarks.common import machine_line, replace_section, versions
from benchmarks.metabench.datasets import CATALOGUE, PORTFOLIO_SETS
from trainforge.metrics import DEFAULT_PRIMARY, METRICS

HERE = Path(__file__).resolve().parent
META = HERE / "out" / "meta"
OUT = HERE / "out" / "mlp_tables.jsonl"

# portfolio tables of 2,000+ rows, where an MLP trains long enough to matter and a holdout of
# 400+ rows scores it
TABLES = (
    "spam7",
    "unemp_benefits",
    "marijuana_arrests",
    "hmda_deny",
    "email_spam",
    "resume_callback",
    "wvs_poverty",
    "verbal_aggression",
    "kershaw_pitch",
    "catsup_brand",
    "cps1988_wage",
    "food_budget_share",
    "tx_housing_median",
    "computer_prices",
    "hsb_math",
    "nmes_visits",
    "innsbruck_rain",
    "london_exam",
)

VARIANTS = {
    "default": {},
    "batchnorm": {"norm": "batch"},
    "onecycle": {
        "norm": "batch",
        "schedule": "onecycle",
        "learning_rate": 1e-2,
        "max_epochs": 30,
        "patience": 30,
        "weight_decay": 1e-2,
        "hidden_sizes": [200, 100],
    },
    "cosine": {
        "norm": "batch",
        "schedule": "cosine",
        "learning_rate": 3e-3,
        "max_epochs": 40,
        "patience": 40,
        "weight_decay": 1e-2,
        "hidden_sizes": [256, 128],
    },
}
HEADING = "## The table MLP: what its settings add to LightGBM (issue 13)"


def _score(task: str, y, pred) -> float:
    """The task's primary metric (trainforge's own), ``y`` as class codes for classes; ``pred``
    is what the metric reads: values for RMSE, probabilities for ROC AUC and log loss."""
    return float(METRICS[DEFAULT_PRIMARY[task]].compute(y, pred, pred))


def _predictions(folder: Path, task: str):
    """A candidate's validation rows in row order: targets (class codes for classes) and its
    predictions (class probabilities for classes)."""
    frame = pd.read_parquet(folder / "predictions.parquet").sort_values("row")
    if task == "regression":
        return frame["y_true"].to_numpy(float), frame["y_pred"].to_numpy(float)
    proba = [c for c in frame.columns if c.startswith("proba_")]
    code = {c[len("proba_") :]: i for i, c in enumerate(proba)}
    return frame["y_true"].astype(str).map(code).to_numpy(), frame[proba].to_numpy(float)


def run_table(table: str, variants: list[str]) -> list[dict]:
    if table not in PORTFOLIO_SETS:
        raise SystemExit(f"{table}: not a table of the meta-benchmark's portfolio part")
    target, task = CATALOGUE[table].target, CATALOGUE[table].task
    models = ["lightgbm"] + [{"name": "mlp", **VARIANTS[v]} for v in variants]
    with tempfile.TemporaryDirectory() as out:
        started = time.monotonic()
        result = trainforge.train(
            data=str(META / f"{table}.csv"),
            target=target,
            models=models,
            tracking=False,
            ensemble=False,
            output=out,
            seed=0,
            quiet=True,
        )
        print(f"{table}: {time.monotonic() - started:.0f} s", flush=True)
        cands = Path(result.path) / "candidates"
        y, base = _predictions(cands / "lightgbm", task)
        base_score, commit = _score(task, y, base), _commit()
        rows = []
        for i, variant in enumerate(variants):
            folder = cands / ("mlp" if i == 0 else f"mlp_{i + 1}")
            _, pred = _predictions(folder, task)
            metrics = json.loads((folder / "metrics.json").read_text())
            blends = [_score(task, y, (1 - w) * base + w * pred) for w in (0.1, 0.2, 0.3, 0.4, 0.5)]
            better = max if METRICS[DEFAULT_PRIMARY[task]].greater_is_better else min
            rows.append(
                {
                    "table": table,
                    "task": task,
                    "metric": DEFAULT_PRIMARY[task],
                    "variant": variant,
                    "lightgbm": base_score,
                    "alone": _score(task, y, pred),
                    "blend": better(blends),
                    "fit_seconds": metrics["fit_seconds"],
                    "commit": commit,
                }
            )
    return rows


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def gain(row: dict) -> float:
    """The blend's improvement on LightGBM alone, relative, positive is better."""
    sign = 1 if row["task"] == "binary" else -1
    return sign * (row["blend"] - row["lightgbm"]) / abs(row["lightgbm"])


def report(rows: list[dict]) -> str:
    """The RESULTS.md section: each variant's blend gain per table, then a summary."""
    frame = pd.DataFrame(rows)
    frame["gain"] = [100 * gain(r) for r in rows]
    variants = list(dict.fromkeys(frame["variant"]))
    wide = frame.pivot(index="table", columns="variant", values="gain")
    first = frame.drop_duplicates("table").set_index("table")
    lines = [
        HEADING,
        "",
        "Command: `.venv/bin/python -m benchmarks.mlp_tables`, then `--report --write`. "
        "Each table split once 80/20 (stratified for classes, seed 0) by `trainforge.train` "
        "with tracking off; LightGBM with its defaults and every MLP variant train on the 80%. "
        "Cells: how much better the best average of LightGBM with the MLP (weight 0.1 to 0.5 on "
        "the MLP, chosen on the 20%) scores than LightGBM alone, in % of LightGBM's score "
        "(ROC AUC for binary, log loss for multiclass, RMSE for regression; positive is "
        "better). Variants: "
        + "; ".join(f"`{v}` {VARIANTS[v] or 'the defaults'}" for v in variants)
        + ".",
        "",
        machine_line(),
        f"- Versions: {versions(['scikit-learn', 'lightgbm', 'torch'])}",
        f"- trainforge commit(s): {', '.join(sorted(set(frame['commit'])))}",
        "",
        "| table | task | LightGBM | " + " | ".join(variants) + " |",
        "|---|---|---:|" + "---:|" * len(variants),
    ]
    for table in dict.fromkeys(frame["table"]):
        cells = " | ".join(f"{wide.loc[table, v]:+.2f}" for v in variants)
        row = first.loc[table]
        lines.append(f"| {table} | {row['task']} | {row['lightgbm']:.4g} | {cells} |")
    lines += ["", "| variant | mean % | median % | better than `default` | MLP fit s (mean) |"]
    lines.append("|---|---:|---:|---:|---:|")
    for v in variants:
        part = frame[frame["variant"] == v]
        won = ""
        if v != "default" and "default" in wide:
            won = f"{int((wide[v] > wide['default']).sum())} of {len(wide)}"
        lines.append(
            f"| {v} | {part['gain'].mean():+.2f} | {part['gain'].median():+.2f} | {won} "
            f"| {part['fit_seconds'].mean():.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--report", action="store_true", help="print the table from --out")
    parser.add_argument("--write", action="store_true", help="with --report: into RESULTS.md")
    args = parser.parse_args()
    if args.report:
        rows = [json.loads(line) for line in args.out.read_text().splitlines() if line]
        text = report(rows)
        print(text)
        if args.write:
            replace_section(HERE / "RESULTS.md", HEADING, text)
        return
    variants = args.variants.split(",")
    rows = []
    for table in args.tables.split(","):
        new = run_table(table, variants)
        rows += new
        with args.out.open("a") as f:
            for row in new:
                f.write(json.dumps(row) + "\n")
    print(report(rows))


if __name__ == "__main__":
    main()
