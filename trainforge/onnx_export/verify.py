"""Checking an exported graph against the Python model before anything is written.

The check rows: a seeded sample of the training rows, then copies of them with a missing value
in every column in turn and with a category the model never saw in every categorical column.
onnxruntime's probabilities (or values) must match the model's within the tolerance, and its
labels must agree wherever the model's top probability is not a near tie.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainforge.data.features import feature_roles

SAMPLE_ROWS = 1_000
TOLERANCE = 1e-5  # probabilities; regression values: relative to the target's spread
# Families whose float32 graph sums many terms: kernel SVMs add one per support vector
# (california_housing, 2,000 rows: up to 5.5e-5 of the target's spread).
TOLERANCES = {"svm": 1e-4}
UNSEEN = "(a category never seen in training)"


@dataclass
class Verification:
    rows: int
    max_difference: float
    labels_agree: float  # share of rows with the same label
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.max_difference <= self.tolerance and self.labels_agree == 1.0

    def record(self) -> dict:
        return {
            "rows": self.rows,
            "max_difference": float(self.max_difference),
            "labels_agree": self.labels_agree,
            "tolerance": self.tolerance,
        }


def check_rows(features: pd.DataFrame, schema, seed: int = 0) -> pd.DataFrame:
    """Training rows plus, for each column, rows with it missing and (categories) unseen."""
    roles = feature_roles(schema)
    rng = np.random.RandomState(seed)
    base = features.iloc[rng.choice(len(features), min(SAMPLE_ROWS, len(features)), False)]
    parts = [base]
    few = base.iloc[: min(20, len(base))]
    for column in roles["numeric"] + roles["categorical"]:
        missing = few.copy()
        missing[column] = np.nan  # as feature_frame leaves a missing value, any column
        parts.append(missing)
    for column in roles["categorical"]:
        unseen = few.copy()
        unseen[column] = UNSEEN
        parts.append(unseen)
    return pd.concat(parts, ignore_index=True)


def feeds(features: pd.DataFrame, schema) -> dict[str, np.ndarray]:
    """onnxruntime's inputs for a feature frame: ``(rows, 1)`` float32 or strings (``""`` for
    missing)."""
    roles = feature_roles(schema)
    out = {}
    for name in roles["numeric"]:
        out[name] = features[name].to_numpy(dtype=np.float32).reshape(-1, 1)
    for name in roles["categorical"]:
        values = features[name].astype(object).where(features[name].notna(), "")
        out[name] = values.astype(str).to_numpy(dtype=object).reshape(-1, 1)
    return out


def run_graph(graph_bytes: bytes, inputs: dict) -> dict[str, np.ndarray]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(graph_bytes, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, inputs)))


def tolerance(families) -> float:
    return max(TOLERANCES.get(family, TOLERANCE) for family in families)


def verify(
    model, graph_bytes: bytes, features: pd.DataFrame, inputs: dict, limit=TOLERANCE
) -> Verification:
    """Compare the graph on ``inputs`` with ``model`` on ``features`` (the same check rows),
    within ``limit``."""
    labels, proba = model.raw_predict(features)
    got = run_graph(graph_bytes, inputs)
    if model.task == "regression":
        values = got["value"].reshape(-1).astype(np.float64)
        spread = float(np.std(labels)) or 1.0
        difference = float(np.max(np.abs(values - labels))) / spread if len(values) else 0.0
        return Verification(len(features), difference, 1.0, limit)
    probabilities = got["probabilities"].astype(np.float64)
    difference = float(np.max(np.abs(probabilities - proba))) if len(proba) else 0.0
    top = np.sort(proba, axis=1)
    clear = (top[:, -1] - top[:, -2]) > 10 * limit  # a near tie may go either way
    graph_labels = got["label"].reshape(-1).astype(str)
    names = np.asarray([str(c) for c in model.classes], dtype=object)[labels]
    agree = float(np.mean(graph_labels[clear] == names[clear])) if clear.any() else 1.0
    return Verification(len(features), difference, agree, limit)
