"""Benchmark: what MLflow tracking adds to a run, through the CLI.

The same ``trainforge train`` command runs with tracking on (the embedded MLflow store in the
runs folder, the default) and with ``--no-tracking``, each run a fresh process timed end to end,
the two sides alternating (ABBA) so imports, caches and machine noise fall on both. Per case,
one untimed warm-up per side first creates the store (as after a project's first run) and warms
the file cache. Cases:

- small: 200 rows of adult, the default ladder and its ensemble (a user's first run);
- medium: 5,000 rows of adult, the default ladder and its ensemble;
- boosting: the 200 rows, ``--models catboost --no-ensemble`` (thousands of boosting rounds,
  each a metric step in MLflow).

Every tracked run must end without a tracking warning (a tracker that stopped would look cheap),
and the best model of the small case, loaded back through MLflow (``runs:/<run>/model``), must
predict exactly like trainforge. The aim (issue 14): tracking costs under 10% of the run in
every case, and under 1 s on the 200-row run.

Usage:
    .venv/bin/python benchmarks/tracking_overhead.py --repeats 5 --write
    .venv/bin/python benchmarks/tracking_overhead.py --repeats 1 --cases small   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from common import machine_line, replace_section, versions

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tabular" / "adult.csv"
TARGET = "income >50K"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
COMMAND = ".venv/bin/python benchmarks/tracking_overhead.py"
HEADING = "## Tracking overhead: MLflow tracking on against --no-tracking, through the CLI"
AIM_SHARE, AIM_SMALL_SECONDS = 0.10, 1.0
PACKAGES = ["mlflow", "scikit-learn", "catboost", "lightgbm", "xgboost-cpu", "torch"]


@dataclass
class Case:
    name: str
    rows: int
    flags: list[str]
    models: str  # in words, for the table
    off: list[float] = field(default_factory=list)
    on: list[float] = field(default_factory=list)


def cases() -> dict[str, Case]:
    return {
        "small": Case("small", 200, [], "default ladder + ensemble"),
        "medium": Case("medium", 5000, [], "default ladder + ensemble"),
        "boosting": Case("boosting", 200, ["--models", "catboost", "--no-ensemble"], "catboost"),
    }


def write_table(rows: int, folder: Path, source: Path) -> Path:
    """A seeded sample of ``rows`` rows of adult as CSV (the same file for both sides)."""
    import pandas as pd

    path = folder / f"adult_{rows}.csv"
    if not path.is_file():
        frame = pd.read_csv(source, na_values="?")
        frame.sample(n=rows, random_state=0).to_csv(path, index=False)
    return path


def train_command(data: Path, case: Case, tracking: bool) -> list[str]:
    command = ["train", str(data), "--target", TARGET, "--seed", "0", "--quiet", *case.flags]
    return command + ([] if tracking else ["--no-tracking"])


def timed_run(data: Path, out: Path, case: Case, tracking: bool, loads: list[float]) -> float:
    """One CLI run in a fresh process, timed end to end; checks it completed as asked."""
    loads.append(os.getloadavg()[0])
    command = [sys.executable, "-m", "trainforge", *train_command(data, case, tracking)]
    before = set(out.iterdir()) if out.is_dir() else set()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=out.parent, env=_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{done.stderr[-3000:]}")
    if tracking and "warning: MLflow tracking" in done.stderr:
        raise SystemExit(f"tracking stopped during the run, so it cannot be timed:\n{done.stderr}")
    (run,) = [p for p in set(out.iterdir()) - before if (p / "manifest.json").is_file()]
    if (run / "tracking.json").is_file() != tracking:
        raise SystemExit(f"{run}: tracking.json should {'' if tracking else 'not '}be there")
    return seconds


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("MLFLOW_TRACKING_URI", None)  # the embedded default store
    return env


def measure(case: Case, data: Path, out: Path, repeats: int, warmup: int, loads) -> None:
    for _ in range(warmup):
        for tracking in (True, False):
            timed_run(data, out, case, tracking, loads)
    for index in range(repeats):
        order = (False, True) if index % 2 == 0 else (True, False)
        for tracking in order:
            seconds = timed_run(data, out, case, tracking, loads)
            (case.on if tracking else case.off).append(seconds)
        off, on = case.off[-1], case.on[-1]
        print(f"{case.name} {index + 1}/{repeats}: off {off:.2f} s, on {on:.2f} s", flush=True)


def cost(case: Case) -> tuple[float, float]:
    """Tracking's cost: the median of the paired differences (on - off of each repeat), in
    seconds and as a share of the median run without tracking."""
    paired = statistics.median(b - a for a, b in zip(case.off, case.on))
    return paired, paired / statistics.median(case.off)


def check_pyfunc(out: Path, data: Path) -> str:
    """The best model read back through MLflow predicts like trainforge, on the table itself."""
    import mlflow.pyfunc
    import pandas as pd

    import trainforge

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    run = sorted(p for p in out.iterdir() if (p / "tracking.json").is_file())[-1]
    info = json.loads((run / "tracking.json").read_text())
    mlflow.set_tracking_uri(info["uri"])
    rows = pd.read_csv(data).drop(columns=TARGET)
    expected = trainforge.load(run).predict_frame(rows)
    got = mlflow.pyfunc.load_model(f"runs:/{info['run']}/model").predict(rows)
    same = bool((got["prediction"].to_numpy() == expected["prediction"].to_numpy()).all())
    columns = [c for c in got.columns if c.startswith("proba_")]
    exact = bool((got[columns].to_numpy() == expected[columns].to_numpy()).all())
    if not (same and exact):
        raise SystemExit("the MLflow logged model does not predict like trainforge")
    return (
        f"- The small case's best model, loaded with `mlflow.pyfunc.load_model(\"runs:/<run>/"
        f'model")`, predicts its {len(rows)} rows exactly like trainforge (labels and '
        "probabilities bit-identical)."
    )


def report(chosen: list[Case], args, loads: list[float], checks: list[str]) -> str:
    lines = [
        HEADING,
        "",
        f"Command: `{COMMAND} {shlex.join(sys.argv[1:])}`",
        "",
        f"- Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. "
        + machine_line().removeprefix("- "),
        f"- 1-minute load average before each run: {min(loads):.1f} to {max(loads):.1f}",
        f"- Python {platform.python_version()}, trainforge (this checkout), {versions(PACKAGES)}",
        f"- Data: seeded samples of adult (`{TARGET}`); each run "
        f"`python -m trainforge train DATA --target '{TARGET}' --seed 0 --quiet [FLAGS]` in a "
        f"fresh process, with the embedded store (tracking on) or `--no-tracking`; {args.warmup} "
        f"untimed run(s) per side first, then {args.repeats} per side in ABBA order. Cost: the "
        "median of each repeat's difference (on - off); share: of the median run without "
        "tracking.",
        "",
        "| case | rows | models (flags) | off s (median) | on s (median) | cost s | share |"
        " off, all runs | on, all runs |",
        "|---|---:|---|---:|---:|---:|---:|---|---|",
    ]
    verdicts = []
    for case in chosen:
        seconds, share = cost(case)
        flags = f" (`{shlex.join(case.flags)}`)" if case.flags else ""
        lines.append(
            f"| {case.name} | {case.rows:,} | {case.models}{flags} | "
            f"{statistics.median(case.off):.2f} | {statistics.median(case.on):.2f} | "
            f"{seconds:+.2f} | {100 * share:+.1f}% | {_times(case.off)} | {_times(case.on)} |"
        )
        met = share < AIM_SHARE and (case.name != "small" or seconds < AIM_SMALL_SECONDS)
        verdicts.append(met)
    lines += [
        "",
        f"Aim: tracking costs under {AIM_SHARE:.0%} of the run in every case and under "
        f"{AIM_SMALL_SECONDS:.0f} s on the 200-row run: **{'met' if all(verdicts) else 'not met'}**"
        + ("" if len(chosen) == 3 else f" (only {', '.join(c.name for c in chosen)} measured)")
        + ".",
        *checks,
        "",
    ]
    return "\n".join(lines)


def _times(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per side and case")
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed runs per side first (at least 1)"
    )
    parser.add_argument("--cases", default="small,medium,boosting", help="comma-separated")
    parser.add_argument("--data", type=Path, default=DATA, help="the adult CSV")
    parser.add_argument("--write", action="store_true", help="replace the RESULTS.md section")
    args = parser.parse_args()
    args.warmup = max(args.warmup, 1)  # the first tracked run creates the store
    known = cases()
    chosen = [known[name] for name in args.cases.split(",")]
    loads: list[float] = []
    checks: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        for case in chosen:
            data = write_table(case.rows, Path(scratch), args.data)
            out = Path(scratch) / case.name / "runs"
            out.parent.mkdir()
            measure(case, data, out, args.repeats, args.warmup, loads)
            if case.name == "small":
                checks.append(check_pyfunc(out, data))
    text = report(chosen, args, loads, checks)
    print(text)
    if args.write:
        _write(text)


def _write(text: str) -> None:
    replace_section(RESULTS, HEADING, text)


if __name__ == "__main__":
    main()
