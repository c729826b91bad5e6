"""Benchmark: a fit after another thread of the same process ran OpenMP code.

GNU libgomp keeps a thread's OpenMP worker threads for as long as that thread lives, and once
a runtime holds more threads than there are cores it no longer spins at its barriers: every
barrier becomes a sleep and a wake-up. A run that wrote its candidates' files in one
long-lived thread (a LightGBM model writing itself runs a parallel loop) slowed its later fits
this way (trainforge.candidate_run.Saver has the fix). This script fits each family on 2
threads three times, in one child process with the ``trainforge`` command's OpenMP settings
(trainforge.cli.openmp_waits): alone; while another thread that has just fitted a small model
of the same family on 2 threads is still alive; and after that thread has ended.

Fits: trainforge's preprocessing and estimator (``n_jobs=2``) on diamonds (../shared/data,
43,152 training rows after its 80/20 holdout), the minimum over the repeats.

Usage:
    .venv/bin/python benchmarks/openmp_pools.py --repeats 2 --write
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from common import machine_line, replace_section, versions
from openmp_wait import DATA, RESULTS  # the same table, fitted the same way

SECTION = "## OpenMP runtimes and the saving thread"
FAMILIES = ("hist_gradient_boosting", "lightgbm", "xgboost")
CONDITIONS = ("alone", "another thread alive", "after it ended")


def _datasets():
    import tempfile

    import pandas as pd

    from trainforge.data.dataset import load_dataset
    from trainforge.spec import DataSpec

    full = load_dataset(DataSpec(train=DATA, target="price"), "auto", 0)
    with tempfile.TemporaryDirectory() as folder:
        head = Path(folder) / "head.csv"
        pd.read_csv(DATA, nrows=2500).to_csv(head, index=False)
        small = load_dataset(DataSpec(train=head, target="price"), "auto", 0)
    return full, small


def child(repeats: int) -> dict:
    from contention import timed_fit

    full, small = _datasets()
    out = {}
    for family in FAMILIES:
        timed_fit(family, full, 2)  # warm: imports, first-call compilation
        times = {condition: [] for condition in CONDITIONS}
        for _ in range(repeats):
            times["alone"].append(timed_fit(family, full, 2)[0])
            fitted, release = threading.Event(), threading.Event()

            def other(family=family, fitted=fitted, release=release):
                timed_fit(family, small, 2)
                fitted.set()
                release.wait()

            helper = threading.Thread(target=other)
            helper.start()
            fitted.wait()
            times["another thread alive"].append(timed_fit(family, full, 2)[0])
            release.set()
            helper.join()
            times["after it ended"].append(timed_fit(family, full, 2)[0])
        out[family] = {condition: min(values) for condition, values in times.items()}
    return out


def report(results: dict, repeats: int) -> str:
    from trainforge.cli import SPIN_TURNS

    lines = [
        SECTION,
        "",
        f"Command: `.venv/bin/python benchmarks/openmp_pools.py --repeats {repeats} --write`. "
        "Seconds of one fit on 2 threads (`n_jobs=2`) of trainforge's estimator on diamonds "
        "(43,152 training rows), the minimum of the repeats, in one process with the "
        f"`trainforge` command's OpenMP settings (OMP_WAIT_POLICY=PASSIVE, GOMP_SPINCOUNT="
        f"{SPIN_TURNS}): alone; while another thread that has just fitted a small model of "
        "the same family (2,000 training rows, 2 threads) is still alive; after that thread ended.",
        "",
        machine_line(),
        f"- Load (1 min) at the start: {os.getloadavg()[0]:.2f}",
        "- " + versions(["scikit-learn", "lightgbm", "xgboost-cpu", "numpy"]),
        "",
        "| family | alone | another thread alive | after it ended | slower while alive |",
        "|---|---:|---:|---:|---:|",
    ]
    for family, row in results.items():
        ratio = row["another thread alive"] / row["alone"]
        cells = " | ".join(f"{row[c]:.2f}" for c in CONDITIONS)
        lines.append(f"| {family} | {cells} | {ratio:.1f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="write to benchmarks/RESULTS.md")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.repeats)))
        return
    from trainforge.cli import openmp_waits

    env = dict(os.environ)
    openmp_waits(env)  # read once, when an OpenMP library loads: hence the child process
    done = subprocess.run(
        [sys.executable, __file__, "--child", "--repeats", str(args.repeats)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    text = report(json.loads(done.stdout.strip().splitlines()[-1]), args.repeats)
    print(text)
    if args.write:
        replace_section(RESULTS, SECTION, text)


if __name__ == "__main__":
    main()
