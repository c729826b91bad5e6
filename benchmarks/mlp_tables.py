"""The table MLP's settings, judged by what they add to a boosting model (issue 13).

An MLP earns its fit time in a run when the ensemble gives it weight; on its own it rarely
beats boosting on tables. So each variant is scored here twice on one 80/20 holdout of a
table: alone, and averaged with LightGBM's defaults (the best weight of 0.1..0.5 on the MLP,
chosen on the same holdout for every variant alike). Tables come from the meta-benchmark's
portfolio part only (benchmarks/metabench/datasets.py), never from its held-out part or from
../shared/data, which the AutoML comparison scores.

    benchmarks/.venv-meta/bin/python -m benchmarks.metabench.datasets   # once: the CSVs
    .venv/bin/python -m benchmarks.mlp_tables [--tables a,b] [--variants a,b]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

import trainforge
from benchmarks.metabench.datasets import CATALOGUE, PORTFOLIO_SETS

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
PRIMARY = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def _score(task: str, y, pred, classes) -> float:
    if task == "binary":
        return float(roc_auc_score(y == classes[1], pred[:, 1]))
    if task == "multiclass":
        return float(log_loss(y, pred, labels=classes))
    return float(np.sqrt(np.mean((np.asarray(y, float) - pred) ** 2)))


def _predictions(folder: Path, task: str):
    frame = pd.read_parquet(folder / "predictions.parquet").sort_values("row")
    if task == "regression":
        return frame["y_true"].to_numpy(), frame["y_pred"].to_numpy(float), None
    proba = [c for c in frame.columns if c.startswith("proba_")]
    classes = np.array([c[len("proba_") :] for c in proba])
    return frame["y_true"].astype(str).to_numpy(), frame[proba].to_numpy(float), classes


def run_table(table: str, variants: list[str]) -> list[dict]:
    entry = CATALOGUE[table]
    assert table in PORTFOLIO_SETS, f"{table}: not in the meta-benchmark's portfolio part"
    target, task = entry.target, entry.task
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
        y, base, classes = _predictions(cands / "lightgbm", task)
        base_score = _score(task, y, base, classes)
        rows = []
        for i, variant in enumerate(variants):
            folder = cands / ("mlp" if i == 0 else f"mlp_{i + 1}")
            _, pred, _ = _predictions(folder, task)
            metrics = json.loads((folder / "metrics.json").read_text())
            blends = {
                w: _score(task, y, (1 - w) * base + w * pred, classes)
                for w in (0.1, 0.2, 0.3, 0.4, 0.5)
            }
            better = max if task == "binary" else min
            rows.append(
                {
                    "table": table,
                    "task": task,
                    "metric": PRIMARY[task],
                    "variant": variant,
                    "lightgbm": base_score,
                    "alone": _score(task, y, pred, classes),
                    "blend": better(blends.values()),
                    "blend_30": blends[0.3],
                    "fit_seconds": metrics["fit_seconds"],
                }
            )
    return rows


def gain(row: dict) -> float:
    """The blend's improvement on LightGBM alone, relative, positive is better."""
    sign = 1 if row["task"] == "binary" else -1
    return sign * (row["blend"] - row["lightgbm"]) / abs(row["lightgbm"])


def report(rows: list[dict]) -> str:
    frame = pd.DataFrame(rows)
    frame["gain_%"] = [100 * gain(r) for r in rows]
    lines = [frame.to_string(index=False, float_format=lambda v: f"{v:.4g}"), ""]
    summary = frame.groupby("variant").agg(
        mean_gain=("gain_%", "mean"),
        median_gain=("gain_%", "median"),
        fit_s=("fit_seconds", "mean"),
    )
    lines.append(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
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
