"""Benchmark: trainforge's default ladder (boosting and ensemble included) against FLAML's AutoML
given the same time, on the tabular datasets in ../shared/data.

For each dataset: a stratified (for classes) 80/20 split with seed 0. The 20% test part is kept
from both tools. trainforge trains its default ladder on the 80% (it holds out its own 20% for
validation) and its wall time, from start to finished run folder, becomes FLAML's
``time_budget`` on the same 80%. Both are scored on the test part with the datasets' published
metric (ROC AUC for binary, log loss for multiclass; RMSE for regression). The table also has
the test score of trainforge's best single candidate (by validation score), to show what the
ensemble adds, and the AutoML Benchmark's published numbers (10-fold CV of other splits: compare
in expectation).

FLAML runs in its own environment (not a trainforge dependency):
    python3 -m venv benchmarks/.venv-flaml
    benchmarks/.venv-flaml/bin/pip install "flaml[automl]" pandas pyarrow xgboost-cpu

Usage:
    .venv/bin/python benchmarks/quality.py --datasets credit_g,car --write
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from common import machine_line, versions

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tabular"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
FLAML_PYTHON = ROOT / "benchmarks" / ".venv-flaml" / "bin" / "python"
SECTION = "## Quality: default ladder and ensemble vs FLAML at equal time"
SEED = 0

# name -> (file, target, task); published AutoML Benchmark numbers from ../shared/data/README.md
DATASETS = {
    "credit_g": ("credit_g.tsv.gz", "target", "binary"),
    "car": ("car.tsv.gz", "target", "multiclass"),
    "segment": ("segment.tsv.gz", "target", "multiclass"),
    "lending_club": ("lending_club.csv", "Class", "binary"),
    "adult": ("adult.csv", "income >50K", "binary"),
    "bank_marketing": ("bank_marketing.csv", "deposit", "binary"),
    "shuttle": ("shuttle.tsv.gz", "target", "multiclass"),
    "california_housing": ("california_housing.tsv.gz", "target", "regression"),
    "diamonds": ("diamonds.csv", "price", "regression"),
}
PUBLISHED = {  # H2O AutoML, auto-sklearn, TPOT, random forest (AMLB 2019, 4 h)
    "adult": "0.9296 / 0.9277 / 0.9291 / 0.9094",
    "bank_marketing": "0.9371 / 0.9357 / 0.9343 / 0.9306",
    "credit_g": "0.7898 / 0.7825 / 0.7715 / 0.7944",
    "car": "0.00057 / 0.0239 / 0.00031 / 0.1436",
    "segment": "0.0474 / 0.0629 / 0.0546 / 0.0847",
    "shuttle": "0.00051 / 0.00039 / 0.00033 / 0.00078",
}
PACKAGES = ["trainforge", "scikit-learn", "lightgbm", "xgboost-cpu", "catboost"]
METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def split(name: str) -> tuple[pd.DataFrame, pd.DataFrame, str, str]:
    from sklearn.model_selection import train_test_split

    file, target, task = DATASETS[name]
    sep = "\t" if ".tsv" in file else ","
    frame = pd.read_csv(DATA / file, sep=sep, na_values=["?"], skipinitialspace=True)
    stratify = frame[target] if task != "regression" else None
    train, test = train_test_split(frame, test_size=0.2, random_state=SEED, stratify=stratify)
    return train.reset_index(drop=True), test.reset_index(drop=True), target, task


def score(task: str, y_true, proba_or_pred, classes=None) -> float:
    from sklearn.metrics import log_loss, roc_auc_score

    if task == "regression":
        return float(np.sqrt(np.mean((np.asarray(y_true, float) - proba_or_pred) ** 2)))
    codes = pd.Categorical(y_true, categories=classes).codes
    if task == "binary":
        return float(roc_auc_score(codes, proba_or_pred[:, 1]))
    return float(log_loss(codes, proba_or_pred, labels=np.arange(len(classes))))


def run_trainforge(name: str, folder: Path) -> dict:
    import trainforge
    from trainforge.bundle import load_bundle

    train, test, target, task = split(name)
    started = time.perf_counter()
    result = trainforge.train(data=train, target=target, output=folder, seed=SEED)
    seconds = time.perf_counter() - started
    rows = test.drop(columns=target)
    board = result.leaderboard
    single = board[board["candidate"] != "ensemble"].iloc[0]["candidate"]
    out = {"seconds": seconds, "best": result.best_name, "single_name": single}
    for key, candidate in (("trainforge", result.best_name), ("single", single)):
        model = load_bundle(result.path / "candidates" / candidate / "model")
        if task == "regression":
            out[key] = score(task, test[target], model.predict(rows))
        else:
            proba = model.predict_proba(rows).to_numpy()
            out[key] = score(task, test[target].astype(str), proba, [str(c) for c in model.classes])
    return out


def run_flaml(name: str, seconds: float, folder: Path) -> dict:
    """FLAML in its own venv, through this script's ``--flaml-child`` mode."""
    train, test, target, task = split(name)
    train.to_parquet(folder / "train.parquet")
    test.to_parquet(folder / "test.parquet")
    command = [
        str(FLAML_PYTHON),
        __file__,
        "--flaml-child",
        str(folder),
        target,
        task,
        str(max(10, round(seconds))),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"FLAML failed on {name}: {done.stderr[-2000:]}")
    found = json.loads((folder / "flaml.json").read_text())
    classes = found.get("classes")
    prediction = np.asarray(found["prediction"])
    labels = test[target].astype(str) if task != "regression" else test[target]
    return {"flaml": score(task, labels, prediction, classes), "flaml_best": found["best"]}


def flaml_child(folder: Path, target: str, task: str, budget: int) -> None:
    """Runs inside FLAML's venv: fit AutoML on train.parquet, predict test.parquet."""
    from flaml import AutoML

    train = pd.read_parquet(folder / "train.parquet")
    test = pd.read_parquet(folder / "test.parquet")
    X, y = train.drop(columns=target), train[target]
    if task != "regression":
        y = y.astype(str)
    for frame in (X, test):
        for column in frame.columns:
            if frame[column].dtype == object:
                frame[column] = frame[column].astype("category")
    automl = AutoML()
    flaml_task = "regression" if task == "regression" else "classification"
    metric = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}[task]
    automl.fit(
        X, y, task=flaml_task, metric=metric, time_budget=budget, seed=SEED, verbose=0, n_jobs=-1
    )
    rows = test.drop(columns=target)[X.columns]
    for column in rows.columns:
        if X[column].dtype.name == "category":
            rows[column] = pd.Categorical(rows[column], categories=X[column].cat.categories)
    out = {"best": automl.best_estimator}
    if task == "regression":
        out["prediction"] = automl.predict(rows).tolist()
    else:
        out["prediction"] = automl.predict_proba(rows).tolist()
        out["classes"] = [str(c) for c in automl.classes_]
    (folder / "flaml.json").write_text(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--write", action="store_true", help="append the table to RESULTS.md")
    parser.add_argument("--flaml-child", nargs=4, metavar=("FOLDER", "TARGET", "TASK", "SECONDS"))
    args = parser.parse_args()
    if args.flaml_child:
        folder, target, task, seconds = args.flaml_child
        flaml_child(Path(folder), target, task, int(seconds))
        return
    rows = []
    for name in args.datasets.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            mine = run_trainforge(name, Path(tmp))
            theirs = run_flaml(name, mine["seconds"], Path(tmp))
        task = DATASETS[name][2]
        row = {"dataset": name, "metric": METRIC[task], **mine, **theirs}
        rows.append(row)
        print(json.dumps(row), flush=True)
    table = _table(rows)
    print(table)
    if args.write:
        _write(table, args)


def _table(rows: list[dict]) -> str:
    lines = [
        "| dataset | metric | trainforge (best) | best single | FLAML, same time | seconds | "
        "trainforge best / single | FLAML best | published H2O / auto-sklearn / TPOT / RF |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['metric']} | {r['trainforge']:.4f} | {r['single']:.4f} | "
            f"{r['flaml']:.4f} | {r['seconds']:.0f} | {r['best']} / {r['single_name']} | "
            f"{r['flaml_best']} | {PUBLISHED.get(r['dataset'], '-')} |"
        )
    return "\n".join(lines)


def _write(table: str, args) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = f".venv/bin/python benchmarks/quality.py --datasets {args.datasets} --write"
    text = (
        f"\n{SECTION}\n\n- Command: `{command}`\n{machine_line()}\n"
        f"- Versions: {versions(PACKAGES)}"
        f"; FLAML from benchmarks/.venv-flaml\n- Date: {stamp}\n\n"
        "Test-part scores (20% kept from both tools); higher ROC AUC, lower log loss and RMSE "
        "are better.\n\n" + table + "\n"
    )
    with open(RESULTS, "a") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
