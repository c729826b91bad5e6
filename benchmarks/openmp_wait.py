"""Benchmark: how OpenMP threads wait for work, and what it does to a fit on 1 and 2 threads.

OpenMP threads that wait at a barrier either spin on their core or sleep until woken. The
libraries' default (GNU libgomp: spin for up to about 300,000 turns, then sleep) starves other
processes and, beside them, the fit's own threads; sleeping at once (``OMP_WAIT_POLICY=PASSIVE``)
pays a wake-up at every barrier. The ``trainforge`` command sets both variables its own way
(trainforge.cli.openmp_waits). This script fits the same models under each policy, alone and
while BUSY other processes spin on the CPU, on 1 and on 2 threads.

Each policy runs in its own child process (the variables are read once, when an OpenMP library
loads); a child is stopped after TIMEOUT seconds and its unfinished fits are shown as such.
Fits: trainforge's preprocessing and estimator (``n_jobs`` forced) on an 80/20 holdout of
diamonds (../shared/data, 43,152 training rows), the minimum over the repeats.

Usage:
    .venv/bin/python benchmarks/openmp_wait.py --repeats 2 --write
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import machine_line, replace_section, versions
from contention import timed_fit

from trainforge.cli import openmp_waits

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tabular" / "diamonds.csv"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "## OpenMP waits: spinning, sleeping, and a fit on 1 and 2 threads"
FAMILIES = ("lightgbm", "xgboost", "hist_gradient_boosting")
THREADS = (1, 2)
BUSY = 2
SPIN = "while True: pass"
TIMEOUT = 120.0
VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def _command_waits() -> dict:
    """The variables the ``trainforge`` command sets in an environment that has neither."""
    env: dict = {}
    openmp_waits(env)
    return env


POLICIES = {
    "library default": {},
    "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "trainforge": _command_waits(),
}


def _environment(policy: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    return {**env, **POLICIES[policy]}


def child(family: str, repeats: int) -> None:
    """Fit ``family`` on each thread count; one JSON line per thread count as it ends."""
    from trainforge.data.dataset import load_dataset
    from trainforge.spec import DataSpec

    dataset = load_dataset(DataSpec(train=DATA, target="price"), "regression", 0)
    for threads in THREADS:
        seconds = min(timed_fit(family, dataset, threads)[0] for _ in range(repeats))
        print(json.dumps({"threads": threads, "seconds": round(seconds, 3)}), flush=True)


def measure(repeats: int) -> list[dict]:
    rows = []
    for family in FAMILIES:
        for load in ("alone", "busy"):
            for policy in POLICIES:
                fits = _run_child(family, policy, load == "busy", repeats)
                for threads in THREADS:
                    row = {"load": load, "policy": policy, "family": family, "threads": threads}
                    row["seconds"] = fits.get(threads)
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    return rows


def _run_child(family: str, policy: str, busy: bool, repeats: int) -> dict:
    """Seconds by thread count of the fits one child finished within TIMEOUT."""
    hogs = []
    if busy:
        hogs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(BUSY)]
        time.sleep(0.3)
    command = [sys.executable, __file__, "--child", family, "--repeats", str(repeats)]
    try:
        out = subprocess.run(
            command, env=_environment(policy), capture_output=True, text=True, timeout=TIMEOUT
        ).stdout
    except subprocess.TimeoutExpired as stopped:
        out = stopped.stdout.decode() if isinstance(stopped.stdout, bytes) else stopped.stdout
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    fits = [json.loads(line) for line in (out or "").splitlines() if line.startswith("{")]
    return {f["threads"]: f["seconds"] for f in fits}


def table(rows: list[dict], repeats: int, load_before: float) -> str:
    seconds = {(r["load"], r["policy"], r["family"], r["threads"]): r["seconds"] for r in rows}
    heads = [f"{load}, {policy}" for load in ("alone", "busy") for policy in POLICIES]
    lines = [
        SECTION,
        "",
        f"Command: `.venv/bin/python benchmarks/openmp_wait.py --repeats {repeats} --write`",
        "",
        machine_line(),
        f"- Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, 1-minute load "
        f"average before the run {load_before:.1f}; "
        + versions(["trainforge", "scikit-learn", "lightgbm", "xgboost-cpu"]),
        f"- Seconds of one fit (trainforge's preprocessing and estimator, `n_jobs` forced, "
        f"80/20 holdout of diamonds), the minimum of {repeats}. `busy`: while {BUSY} other "
        "processes spin on the CPU. `library default`: neither variable set (libgomp spins "
        "up to 300,000 turns); `PASSIVE`: `OMP_WAIT_POLICY=PASSIVE` (the `trainforge` command "
        "before); `trainforge`: what the command sets now (`PASSIVE` with "
        f"`GOMP_SPINCOUNT`, trainforge.cli.openmp_waits). `>{TIMEOUT:.0f}`: not done when its "
        "child process was stopped.",
        "",
        "| family | threads | " + " | ".join(heads) + " |",
        "|---|---:|" + "---:|" * len(heads),
    ]
    for family in FAMILIES:
        for threads in THREADS:
            cells = []
            for load in ("alone", "busy"):
                for policy in POLICIES:
                    value = seconds[(load, policy, family, threads)]
                    cells.append(f">{TIMEOUT:.0f}" if value is None else f"{value:.2f}")
            lines.append(f"| {family} | {threads} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--child", metavar="FAMILY", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repeats)
        return
    load = os.getloadavg()[0]
    text = table(measure(args.repeats), args.repeats, load)
    print(text)
    if args.write:
        replace_section(RESULTS, SECTION, text)


if __name__ == "__main__":
    main()
