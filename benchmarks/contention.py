"""Benchmark: how much slower each fit gets when other processes keep the cores busy.

The same fits (trainforge's own preprocessing and estimators, one 80/20 holdout fit each) run
alone, then while BUSY other processes spin on the CPU, in two ways: with the thread count
trainforge chooses per fit (trainforge.threads), and with every fit forced to use all usable
cores, as every library does by default. The aim (issue 13): no fit more than 2.5x slower under
that contention than alone, with trainforge's choice.

Tables: adult (26,048 training rows: above trainforge.threads.THREADED_ROWS, so a fit alone
uses every core) and car (1,382 rows: one thread). Each condition is repeated and the median
taken; conditions alternate so machine noise falls on all of them.

Usage:
    .venv/bin/python benchmarks/contention.py --repeats 3 --write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import replace_section

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tabular"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "## Fits on a busy machine: slowdown under two CPU-bound processes"
FAMILIES = (
    "lightgbm",
    "xgboost",
    "catboost",
    "hist_gradient_boosting",
    "random_forest",
    "extra_trees",
    "logistic_regression",
    "mlp",
)
TABLES = {"adult": ("adult.csv", "income >50K"), "car": ("car.tsv.gz", "target")}
BUSY = 2
SPIN = "import time\nwhile True: pass"


def _dataset(name: str):
    from trainforge.data.dataset import load_dataset
    from trainforge.spec import DataSpec

    file, target = TABLES[name]
    return load_dataset(DataSpec(train=DATA / file, target=target), "auto", 0)


def timed_fit(family: str, dataset, forced: int | None) -> tuple[float, int]:
    """Seconds of one fit, and the threads it used."""
    from trainforge.candidate_run import profile_of
    from trainforge.candidates import Candidate, fit_candidate
    from trainforge.metrics import primary_metric
    from trainforge.models.registry import get_family

    params = {} if forced is None else {"n_jobs": forced}
    if family == "mlp":
        params["max_epochs"] = 5
    candidate = Candidate(family, get_family(family), params)
    profile = profile_of(dataset, 0)
    primary = primary_metric("auto", dataset.task)
    started = time.perf_counter()
    result = fit_candidate(candidate, dataset, profile, primary)
    return time.perf_counter() - started, result.threads


def measure(repeats: int) -> list[dict]:
    from trainforge.threads import usable_cores

    cores = usable_cores()
    rows = []
    for table in TABLES:
        dataset = _dataset(table)
        for family in FAMILIES:
            timed_fit(family, dataset, None)  # warm: imports, first-call compilation
            times: dict[str, list[float]] = {"alone": [], "busy": [], "busy_all_cores": []}
            used: dict[str, int] = {}
            for _ in range(repeats):
                for condition in times:
                    hogs = []
                    if condition != "alone":
                        hogs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(BUSY)]
                        time.sleep(0.3)
                    try:
                        forced = cores if condition == "busy_all_cores" else None
                        seconds, threads = timed_fit(family, dataset, forced)
                    finally:
                        for hog in hogs:
                            hog.kill()
                            hog.wait()
                    times[condition].append(seconds)
                    used[condition] = threads
            row = {"table": table, "family": family, "rows": len(dataset.folds[0].X_train)}
            for condition, values in times.items():
                row[condition] = round(statistics.median(values), 3)
                row[f"{condition}_threads"] = used[condition]
            row["ratio"] = round(row["busy"] / row["alone"], 2)
            row["ratio_all_cores"] = round(row["busy_all_cores"] / row["alone"], 2)
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def table(rows: list[dict], repeats: int) -> str:
    from importlib.metadata import version

    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line),
        platform.processor(),
    )
    worst = max(rows, key=lambda r: r["ratio"])
    lines = [
        SECTION,
        "",
        f"Command: `.venv/bin/python benchmarks/contention.py --repeats {repeats} --write`",
        "",
        f"- Machine: {os.cpu_count()} cores ({cpu}), Linux {platform.release()}; load before "
        f"the run {os.getloadavg()[0]:.1f}",
        f"- trainforge {version('trainforge')}, scikit-learn {version('scikit-learn')}, "
        f"lightgbm {version('lightgbm')}, xgboost-cpu {version('xgboost-cpu')}, "
        f"catboost {version('catboost')}, torch {version('torch')}",
        f"- Each fit: trainforge's preprocessing and estimator on an 80/20 holdout (the MLP "
        f"capped at 5 epochs); median of {repeats} repeats, conditions alternating. `busy`: "
        f"while {BUSY} other processes spin on the CPU. `threads`: the fit's thread count "
        "(trainforge's choice alone / busy; `all cores` forces every usable core, the "
        "libraries' default).",
        "",
        "| table | family | rows | alone s | busy s | ratio | threads | busy, all cores s "
        "| ratio |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['table']} | {r['family']} | {r['rows']:,} | {r['alone']:.2f} | {r['busy']:.2f} "
            f"| {r['ratio']:.2f} | {r['alone_threads']} / {r['busy_threads']} "
            f"| {r['busy_all_cores']:.2f} | {r['ratio_all_cores']:.2f} |"
        )
    met = "met" if worst["ratio"] <= 2.5 else "**not met**"
    lines += [
        "",
        f"Worst ratio with trainforge's thread choice: {worst['ratio']:.2f} "
        f"({worst['family']} on {worst['table']}); aim at most 2.5: {met}.",
        "",
    ]
    return "\n".join(lines)


def write(text: str) -> None:
    replace_section(RESULTS, SECTION, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    rows = measure(args.repeats)
    text = table(rows, args.repeats)
    print(text)
    if args.write:
        write(text)


if __name__ == "__main__":
    main()
