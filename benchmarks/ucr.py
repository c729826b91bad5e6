"""The default sequence ladder on every UCR/UEA problem aeon 1.6 ships in its wheel, beside the
published results that wheel ships (Middlehurst et al. 2024: HIVE-COTE 2 and InceptionTime on
each problem's official split, resample 0).

    python benchmarks/ucr.py                 # every problem, then the table
    python benchmarks/ucr.py GunPoint        # chosen problems
    python benchmarks/ucr.py --report --write  # the table from the log, into RESULTS.md

The wheel is downloaded once (pip download, no install: aeon pins pandas < 3.1) into
benchmarks/.cache and read as a zip. ArrowHead is left out: it is kept aside for independent
checks. Each problem: ``trainforge.train`` with the default ladder and no settings on the
official TRAIN split (trainforge picks its own validation rows from it), then the best model
and the rocket candidate scored on the official TEST split. Series of unequal length are
NaN-padded to the longest of both splits. Regression problems (the TSER archive's ones in the
wheel) report RMSE. Results are appended to benchmarks/out/ucr.jsonl.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from common import machine_line, replace_section, versions

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
LOG = HERE / "out" / "ucr.jsonl"
WHEEL = "aeon==1.6.0"
DATA = "aeon/datasets/data"
RESULTS = "aeon/testing/example_results_files/classification/accuracy"
PUBLISHED = ("HC2", "InceptionTime")
KEPT_ASIDE = {"ArrowHead"}
CLASSIFICATION = [
    "ACSF1",
    "BasicMotions",
    "GunPoint",
    "ItalyPowerDemand",
    "JapaneseVowels",
    "OSULeaf",
    "PickupGestureWiimoteZ",
]
REGRESSION = ["Covid3Month", "CardanoSentiment"]


def wheel() -> zipfile.ZipFile:
    found = sorted(CACHE.glob("aeon-1.6.0-*.whl"))
    if not found:
        CACHE.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL, "-d", str(CACHE)]
        subprocess.run(command, check=True, capture_output=True)
        found = sorted(CACHE.glob("aeon-1.6.0-*.whl"))
    return zipfile.ZipFile(found[0])


def read_ts(text: str) -> tuple[list[np.ndarray], np.ndarray]:
    """A .ts file's series ``(steps, channels)`` and its labels (or regression targets)."""
    series, labels, in_data = [], [], False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower().startswith("@data"):
            in_data = True
            continue
        if not in_data:
            continue
        *channels, label = line.split(":")
        values = [[float(v) if v not in ("?", "NaN") else np.nan for v in c.split(",")]
                  for c in channels]  # fmt: skip
        steps = max(len(v) for v in values)
        array = np.full((steps, len(values)), np.nan, dtype=np.float32)
        for c, v in enumerate(values):
            array[: len(v), c] = v
        series.append(array)
        labels.append(label.strip())
    return series, np.asarray(labels)


def padded(series: list[np.ndarray], steps: int) -> np.ndarray:
    out = np.full((len(series), steps, series[0].shape[1]), np.nan, dtype=np.float32)
    for row, array in enumerate(series):
        out[row, : len(array)] = array
    return out


def load(archive: zipfile.ZipFile, name: str):
    parts = [
        read_ts(archive.read(f"{DATA}/{name}/{name}_{split}.ts").decode("utf-8", "replace"))
        for split in ("TRAIN", "TEST")
    ]
    steps = max(len(s) for series, _ in parts for s in series)
    (train, y), (test, y_test) = [(padded(s, steps), labels) for s, labels in parts]
    return train, y, test, y_test


def published(archive: zipfile.ZipFile) -> dict[str, dict[str, float]]:
    """{problem: {classifier: accuracy on the official split}} from the wheel's result files."""
    out: dict[str, dict[str, float]] = {}
    for name in PUBLISHED:
        text = archive.read(f"{RESULTS}/{name}_accuracy.csv").decode()
        for line in text.splitlines()[1:]:
            problem, first, *_ = line.split(",")
            out.setdefault(problem, {})[name] = float(first)
    return out


def measure(archive, name: str, regression: bool) -> dict:
    import trainforge

    X, y, X_test, y_test = load(archive, name)
    if regression:
        y, y_test = y.astype(float), y_test.astype(float)
    task = "sequence_regression" if regression else "sequence_classification"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as out:
        result = trainforge.train(
            {"task": task}, data=X, y=y, target="label", output=out, tracking=False,
            quiet=True,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        scores = {"best": result.best}
        rocket = Path(result.path) / "candidates" / "rocket" / "model"
        if rocket.is_dir():
            scores["rocket"] = trainforge.load(rocket)
        record = {
            "problem": name,
            "task": "regression" if regression else "classification",
            "train_series": len(X),
            "test_series": len(X_test),
            "steps": int(X.shape[1]),
            "channels": int(X.shape[2]),
            "best_candidate": result.best_name,
            "seconds": round(seconds, 1),
        }
        for key, model in scores.items():
            predicted = np.asarray(model.predict(X_test))
            if regression:
                value = float(np.sqrt(np.mean((predicted.astype(float) - y_test) ** 2)))
                record[f"{key}_rmse"] = round(value, 4)
            else:
                value = float((predicted.astype(str) == y_test.astype(str)).mean())
                record[f"{key}_accuracy"] = round(value, 4)
    return record


def report(write: bool) -> str:
    records: dict[str, dict] = {}
    if LOG.is_file():
        for line in LOG.read_text().splitlines():
            record = json.loads(line)
            records[record["problem"]] = record
    archive = wheel()
    marks = published(archive)
    lines = [
        "| problem | series train/test | steps x channels | trainforge best (candidate) | "
        "rocket | HC2 | InceptionTime | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    gaps = []
    for name in CLASSIFICATION + REGRESSION:
        r = records.get(name)
        if r is None:
            continue
        shape = f"{r['steps']} x {r['channels']}"
        split = f"{r['train_series']}/{r['test_series']}"
        if r["task"] == "regression":
            best = f"RMSE {r['best_rmse']} ({r['best_candidate']})"
            rocket = f"RMSE {r.get('rocket_rmse', '-')}"
            hc2 = inception = "-"
        else:
            best = f"{r['best_accuracy']:.4f} ({r['best_candidate']})"
            rocket = f"{r['rocket_accuracy']:.4f}" if "rocket_accuracy" in r else "-"
            known = marks.get(name, {})
            hc2 = f"{known['HC2']:.4f}" if "HC2" in known else "not shipped"
            inception = f"{known['InceptionTime']:.4f}" if "InceptionTime" in known else "-"
            if known:
                gaps.append(r["best_accuracy"] - max(known.values()))
        lines.append(
            f"| {name} | {split} | {shape} | {best} | {rocket} | {hc2} | {inception} | "
            f"{r['seconds']} |"
        )
    if gaps:
        within = sum(g >= -0.02 for g in gaps)
        lines.append("")
        lines.append(
            f"Best model within 2 accuracy points of the better published result (HC2 or "
            f"InceptionTime) on {within} of {len(gaps)} problems with published results; mean "
            f"difference {np.mean(gaps) * 100:+.2f} points."
        )
    text = "\n".join(lines)
    if write:
        heading = "## UCR/UEA problems (default sequence ladder)"
        body = (
            f"{heading}\n\nCommand: `.venv/bin/python benchmarks/ucr.py`, then `--report "
            f"--write`.\n\n{machine_line()}\n- Versions: "
            f"{versions(['trainforge', 'numpy', 'scikit-learn', 'torch'])}\n\n"
            f"{__doc__.split(chr(10) + chr(10))[2].strip()}\n\n{text}\n"
        )
        replace_section(HERE / "RESULTS.md", heading, body)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problems", nargs="*")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if not args.report:
        archive = wheel()
        chosen = args.problems or CLASSIFICATION + REGRESSION
        LOG.parent.mkdir(parents=True, exist_ok=True)
        for name in chosen:
            if name in KEPT_ASIDE:
                raise SystemExit(f"{name} is kept aside for independent checks")
            record = measure(archive, name, name in REGRESSION)
            print(json.dumps(record), flush=True)
            with LOG.open("a") as log:
                log.write(json.dumps(record) + "\n")
    print(report(args.write))


if __name__ == "__main__":
    main()
