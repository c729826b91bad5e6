"""Benchmark: on new rows, is the best single candidate or a combined model the better pick?

For each table of benchmarks/automl.py's splits (run that script once first: it writes
``benchmarks/out/automl/<dataset>/{train,test}.csv``), ``trainforge train train.csv
--time-limit 60s --seed 0`` keeps its run folder under ``benchmarks/out/final_pick/``; then the
run's ``ensemble``, its ``stacking`` and its best single candidate (the manifest's
``selection``) each predict test.csv, scored as automl.py scores every tool. The table says
which of them the cross-fitted halves preferred and how each did on the test rows.

Usage:
    .venv/bin/python benchmarks/final_pick.py --datasets lending_club,credit_g,car
    .venv/bin/python benchmarks/final_pick.py --datasets ... --write   # and RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from automl import SPLITS, TRAINFORGE, git_state, score_predictions  # noqa: E402
from common import machine_line, replace_section, versions  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "final_pick"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADING = "## The final pick: best single candidate or a combined model (issue 13)"
LIMIT = "60s"


def train(name: str) -> Path:
    """A 60 s run on the table's training split; its folder."""
    meta = json.loads((SPLITS / name / "meta.json").read_text())
    folder = OUT / name
    found = sorted(folder.glob("*/manifest.json"))
    if found:
        return found[-1].parent
    command = [str(TRAINFORGE), "train", str(SPLITS / name / "train.csv"), "--target"]
    command += [meta["target"], "--task", meta["task"], "--time-limit", LIMIT, "--seed", "0"]
    command += ["--out", str(folder), "--no-tracking", "--quiet"]
    subprocess.run(command, check=True, capture_output=True)
    return sorted(folder.glob("*/manifest.json"))[-1].parent


def test_score(run: Path, candidate: str, meta: dict) -> float | None:
    """The candidate's score on test.csv (None when it has no saved model)."""
    import trainforge

    folder = run / "candidates" / candidate / "model"
    if not (folder / "bundle.json").is_file():
        return None
    test = pd.read_csv(SPLITS / run.parent.name / "test.csv")
    y, X = test[meta["target"]], test.drop(columns=[meta["target"]])
    model = trainforge.load(folder)
    if meta["task"] == "regression":
        frame = pd.DataFrame({"prediction": np.asarray(model.predict(X), dtype=float)})
    else:
        frame = model.predict_proba(X)
        frame.columns = [c if str(c).startswith("proba_") else f"proba_{c}" for c in frame]
    return score_predictions(meta["task"], y, frame)


def measure(name: str) -> dict:
    run = train(name)
    meta = json.loads((SPLITS / name / "meta.json").read_text())
    selection = json.loads((run / "manifest.json").read_text()).get("selection") or {}
    single = (selection.get("best_single") or {}).get("candidate")
    halves = {k: selection.get(k) for k in ("ensemble", "stacking")}
    halves["single"] = (selection.get("best_single") or {}).get("cross_fitted")
    tests = {k: test_score(run, c, meta) for k, c in (("ensemble", "ensemble"),
                                                     ("stacking", "stacking"),
                                                     ("single", single)) if c}  # fmt: skip
    code = json.loads((run / "manifest.json").read_text())["code"]
    return {
        "dataset": name,
        "task": meta["task"],
        "metric": selection.get("metric"),
        "single": single,
        "picked": selection.get("picked"),
        "halves": halves,
        "test": tests,
        "commit": code["commit"][:7] + ("+dirty" if code["dirty"] else ""),
    }


def _number(value) -> str:
    return "" if value is None else (f"{value:.4f}" if abs(value) < 100 else f"{value:,.1f}")


def leaders(row: dict) -> tuple[str, str]:
    """Which of single / ensemble / stacking scored best on the halves, and on the test rows."""
    sign = -1 if row["metric"] in ("log_loss", "rmse") else 1

    def best(scores: dict) -> str:
        known = {k: v for k, v in scores.items() if v is not None}
        return max(known, key=lambda k: sign * known[k]) if known else ""

    return best(row["halves"]), best(row["test"])


def table(rows: list[dict]) -> str:
    lines = [
        "| dataset | metric | best single | halves: single | ensemble | stacking "
        "| test: single | ensemble | stacking | halves prefer | better on test |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        h, t = row["halves"], row["test"]
        prefer, best = leaders(row)
        lines.append(
            f"| {row['dataset']} | {row['metric']} | {row['single']} | {_number(h['single'])} "
            f"| {_number(h['ensemble'])} | {_number(h['stacking'])} | {_number(t.get('single'))} "
            f"| {_number(t.get('ensemble'))} | {_number(t.get('stacking'))} | {prefer} | {best} |"
        )
    return "\n".join(lines)


def summary(rows: list[dict]) -> str:
    """How often the halves preferred the single candidate, and how often it was better on
    the test rows than both combined models."""
    preferred = sum(leaders(row)[0] == "single" for row in rows)
    beaten = sum(leaders(row)[1] == "single" for row in rows)
    return (
        f"- The halves preferred the best single candidate on {preferred} of {len(rows)} "
        f"tables; on the test rows it beat both combined models on {beaten} of {len(rows)}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", required=True, help="comma-separated names")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = [measure(name) for name in args.datasets.split(",")]
    text = "\n".join([
        HEADING, "",
        f"Command: `.venv/bin/python benchmarks/final_pick.py --datasets {args.datasets} "
        f"--write` ({started}, scored with trainforge {git_state()}; the runs were trained "
        f"at {', '.join(sorted({r['commit'] for r in rows}))}: a run folder already under "
        "benchmarks/out/final_pick is reused).", "",
        machine_line(),
        "- " + versions(["scikit-learn", "lightgbm", "xgboost-cpu", "catboost", "pandas"]),
        "- Each table: one `trainforge train --time-limit 60s --seed 0` on automl.py's 75% "
        "split; \"halves\": the cross-fitted scores the run's pick compared (manifest "
        "`selection`); \"test\": the same models on the 25% test split. ROC AUC higher is "
        "better; log loss and RMSE lower.", "",
        table(rows), "", summary(rows), "",
    ])  # fmt: skip
    print(text)
    if args.write:
        replace_section(RESULTS, HEADING, text)


if __name__ == "__main__":
    main()
