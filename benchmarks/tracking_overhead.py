"""Benchmark: what MLflow tracking and the HTML report add to a real run.

Trains the same candidates on adult (baseline, logistic regression, an MLP for a fixed 5 epochs)
with tracking off and with the embedded MLflow store on, alternating (ABBA), each run a fresh
child process timed end to end. The store is created once before timing, as it is after a
project's first run. Then it times ``trainforge report`` on a finished run and reports the page's
size and image count, and checks that the MLflow pyfunc model predicts exactly like trainforge.

Usage:
    .venv/bin/python benchmarks/tracking_overhead.py --repeats 3 --write
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from common import machine_line, versions

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tabular" / "adult.csv"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
COMMAND = ".venv/bin/python benchmarks/tracking_overhead.py"
HEADING = "## tracking_overhead.py: MLflow tracking and the report on adult"
MODELS = [
    "baseline",
    "logistic_regression",
    {"name": "mlp", "max_epochs": 5, "patience": 1000},
]


def child(data: Path, out: Path, tracking: bool) -> None:
    import trainforge

    trainforge.train(
        data=data, target="income >50K", models=MODELS, output=out, tracking=tracking, seed=0
    )


def timed_run(data: Path, out: Path, tracking: bool) -> float:
    command = [sys.executable, __file__, "--child", str(data), str(out), str(int(tracking))]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=_env(out))
    return time.perf_counter() - started


def _env(out: Path) -> dict:
    import os

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("MLFLOW_TRACKING_URI", None)  # the embedded default store
    return env


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "runs"
        timed_run(args.data, out, True)  # creates the store; warms the file cache
        times: dict[bool, list[float]] = {False: [], True: []}
        for index in range(args.repeats):
            order = (False, True) if index % 2 == 0 else (True, False)
            for tracking in order:
                times[tracking].append(timed_run(args.data, out, tracking))
        lines = _measure_report(out) + _check_pyfunc(out, args.data)
    off, on = statistics.median(times[False]), statistics.median(times[True])
    report = [
        HEADING,
        "",
        f"Command: `{COMMAND} {shlex.join(sys.argv[1:])}`",
        f"({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        machine_line(),
        f"- Versions: {versions(['mlflow', 'matplotlib', 'scikit-learn', 'torch'])}",
        f"- Candidates: baseline, logistic_regression, mlp (5 epochs, no early stop); "
        f"{args.repeats} runs per side, fresh processes, ABBA order; medians",
        "",
        "| run of the three candidates on adult (s) | tracking off | MLflow embedded store |",
        "|---|---:|---:|",
        f"| end to end (median) | {off:.1f} | {on:.1f} |",
        f"| all runs | {', '.join(f'{t:.1f}' for t in times[False])} | "
        f"{', '.join(f'{t:.1f}' for t in times[True])} |",
        "",
        f"- Tracking adds {on - off:.1f} s per run ({100 * (on - off) / off:.0f}%).",
        *lines,
        "",
    ]
    text = "\n".join(report)
    print(text)
    if args.write:
        _write(text)


def _measure_report(out: Path) -> list[str]:
    from trainforge.report import write_report

    run = sorted(p for p in out.iterdir() if (p / "manifest.json").is_file())[-1]
    started = time.perf_counter()
    page = write_report(run, run / "again.html")
    seconds = time.perf_counter() - started
    html = page.read_text()
    return [
        f"- `trainforge report` on a finished run (in process, imports warm after the first "
        f"call's matplotlib import): {seconds:.2f} s; page {len(html) / 1024:.0f} KiB with "
        f"{html.count('<img')} embedded images."
    ]


def _check_pyfunc(out: Path, data: Path) -> list[str]:
    import mlflow.pyfunc
    import pandas as pd

    import trainforge

    run = sorted(p for p in out.iterdir() if (p / "tracking.json").is_file())[-1]
    info = json.loads((run / "tracking.json").read_text())
    from mlflow.tracking import MlflowClient

    parent = MlflowClient(info["uri"]).get_run(info["run"])
    rows = pd.read_csv(data, na_values="?").head(2000)
    expected = trainforge.load(run).predict_frame(rows)
    got = mlflow.pyfunc.load_model(parent.info.artifact_uri + "/model").predict(rows)
    same = bool((got["prediction"].to_numpy() == expected["prediction"].to_numpy()).all())
    columns = [c for c in got.columns if c.startswith("proba_")]
    exact = bool((got[columns].to_numpy() == expected[columns].to_numpy()).all())
    return [
        f"- MLflow pyfunc model of the best candidate on 2,000 adult rows: labels identical: "
        f"{same}; probabilities bit-identical: {exact}."
    ]


def _write(text: str) -> None:
    current = RESULTS.read_text()
    if HEADING in current:
        before, after = current.split(HEADING, 1)
        rest = after.split("\n## ", 1)
        current = before + text + ("\n## " + rest[1] if len(rest) > 1 else "")
    else:
        current = current.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(current)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.path.insert(0, str(ROOT))
        child(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4] == "1")
    else:
        main()
