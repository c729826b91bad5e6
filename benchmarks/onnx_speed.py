"""ONNX Runtime against trainforge's Python path: batch throughput and single-row latency of
each exported family, on adult (string categories, missing values).

    python benchmarks/onnx_speed.py          # prints the table
    python benchmarks/onnx_speed.py --write  # and puts it in RESULTS.md

Models: logistic regression, a random forest, LightGBM and XGBoost, each bagged over 5 folds
(what a small table gets under a budget), and their ensemble; trained on 5,000 rows. Batch:
10,000 raw rows, best of 3. Single row: the median of 200 calls with one row, from a data
frame of one row (Python) or one-row arrays (ONNX Runtime, one thread). Python's path includes
reading the rows through the schema (trainforge predict does the same). Nets, with their
default architecture (1 epoch; speed does not depend on the weights): the CNN on 2,000
Fashion-MNIST images (batch: 2,000 test images), the RNN and the Transformer on ItalyPowerDemand
(1,029 series of 24 steps; batch: 1,029 series repeated to 10,290); Python predicts from the
arrays, torch on its default threads, ONNX Runtime on 2 threads for batches and 1 for a row.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd
from common import machine_line, replace_section, versions

import trainforge
from trainforge.data.features import feature_frame
from trainforge.onnx_export import export
from trainforge.onnx_export.verify import feeds

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
ADULT = DATA / "tabular" / "adult.csv"
TARGET = "income >50K"


def timings(function, times: int) -> list[float]:
    """Seconds of ``times`` calls of ``function``."""
    seconds = []
    for _ in range(times):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return seconds


def main(write: bool) -> None:
    frame = pd.read_csv(ADULT)
    train, rows = frame.iloc[:5000], frame.iloc[5000:15000].drop(columns=TARGET)
    lines = [
        "| model | parts | Python batch rows/s | ONNX batch rows/s | Python 1 row ms | "
        "ONNX 1 row ms |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as out:
        result = trainforge.train(
            data=train, target=TARGET,
            models=["logistic_regression", "random_forest", "lightgbm", "xgboost"],
            folds=5, output=out, tracking=False, quiet=True,
        )  # fmt: skip
        for name in ("logistic_regression", "random_forest", "lightgbm", "xgboost", "ensemble"):
            folder = result.path / "candidates" / name / "model"
            manifest = export(folder, Path(out) / f"{name}.onnx", rows=train)
            model = trainforge.load(folder)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            session = onnxruntime.InferenceSession(str(Path(out) / f"{name}.onnx"), options)
            batch = feeds(feature_frame(rows, model.schema), model.schema)
            one_frame = rows.head(1)
            one = feeds(feature_frame(one_frame, model.schema), model.schema)
            python = min(timings(lambda: model.predict_proba(rows), 3))
            graph = min(timings(lambda: session.run(None, batch), 3))
            python_one = float(np.median(timings(lambda: model.predict_proba(one_frame), 200)))
            graph_one = float(np.median(timings(lambda: session.run(None, one), 200)))
            lines.append(
                f"| {name} | {manifest['parts']} | {len(rows) / python:,.0f} | "
                f"{len(rows) / graph:,.0f} | {python_one * 1e3:.2f} | {graph_one * 1e3:.3f} |"
            )
            print(lines[-1], flush=True)
        for line in net_lines(Path(out)):
            lines.append(line)
            print(line, flush=True)
    text = "\n".join(lines)
    if write:
        heading = "## ONNX export: throughput and latency"
        body = (
            f"{heading}\n\nCommand: `.venv/bin/python benchmarks/onnx_speed.py --write`.\n\n"
            f"{machine_line()}\n- Versions: "
            f"{versions(['trainforge', 'onnxruntime', 'skl2onnx', 'scikit-learn'])}\n\n"
            f"{__doc__.split(chr(10) + chr(10))[2].strip()}\n\n{text}\n"
        )
        replace_section(HERE / "RESULTS.md", heading, body)
    print(text)


def net_lines(out: Path) -> list[str]:
    """The CNN, the RNN and the Transformer: Python's predict_proba on arrays against the
    exported graph."""
    from trainforge.data.images import images_frame
    from trainforge.data.sequences import sequence_frame

    with np.load(DATA / "images" / "fashion_mnist.npz") as found:
        images = (found["x_train"][:2000], found["y_train"][:2000], found["x_test"][:2000])
    with np.load(DATA / "sequences" / "italypowerdemand.npz") as found:
        series = (found["x_test"], found["y_test"], np.tile(found["x_test"], (10, 1, 1)))
    cases = [
        ("cnn", images, "images", {"task": "image_classification"}, images_frame),
        ("rnn", series, "series", {"target": "label"}, sequence_frame),
        ("transformer", series, "series", {"target": "label"}, sequence_frame),
    ]
    lines = []
    for family, (X, y, rows), name, settings, frame in cases:
        result = trainforge.train(
            data=X, y=y, models=[{"name": family, "max_epochs": 1}], ensemble=False,
            output=out, tracking=False, quiet=True, **settings,
        )  # fmt: skip
        folder = result.path / "candidates" / family / "model"
        manifest = export(folder, out / f"{family}.onnx", frame(X))
        model = trainforge.load(folder)
        array = rows[..., None] if name == "images" and rows.ndim == 3 else rows
        array = array.astype(np.float32)
        sessions = []
        for threads in (2, 1):
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            sessions.append(onnxruntime.InferenceSession(str(out / f"{family}.onnx"), options))
        python = min(timings(lambda: model.predict_proba(rows), 3))
        graph = min(timings(lambda: sessions[0].run(None, {name: array}), 3))
        one, one_array = rows[:1], array[:1]
        python_one = float(np.median(timings(lambda: model.predict_proba(one), 100)))
        graph_one = float(np.median(timings(lambda: sessions[1].run(None, {name: one_array}), 100)))
        lines.append(
            f"| {family} | {manifest['parts']} | {len(rows) / python:,.0f} | "
            f"{len(rows) / graph:,.0f} | {python_one * 1e3:.2f} | {graph_one * 1e3:.3f} |"
        )
    return lines


if __name__ == "__main__":
    main("--write" in sys.argv)
