"""Column roles and tasks inferred from the data, and the features built from them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainforge.data.features import feature_frame
from trainforge.data.read import read_table
from trainforge.data.schema import infer_schema, infer_task


def _roles(schema) -> dict[str, str]:
    return {c.name: c.role for c in schema.columns}


def test_roles_are_inferred_from_values(tmp_path):
    n = 100
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(1000, 1000 + n),
            "age": rng.integers(18, 90, size=n),
            "income": rng.normal(50_000, 10_000, size=n),
            "city": rng.choice(["Oslo", "Bergen", "Tromsø"], size=n),
            "rooms": rng.integers(1, 5, size=n),
            "member": rng.choice(["yes", "no"], size=n),
            "joined": pd.date_range("2020-01-01", periods=n, freq="D").astype(str),
            "constant": 1,
            "y": rng.normal(size=n),
        }
    )
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    schema, notices = infer_schema(read_table(path), "y", {}, "auto")
    assert _roles(schema) == {
        "age": "numeric",
        "income": "numeric",
        "city": "categorical",
        "rooms": "categorical",  # few integer values
        "member": "boolean",
        "joined": "datetime",
    }
    assert schema.dropped == ("customer_id", "constant")
    assert any("'customer_id' dropped: it looks like a row identifier" in n for n in notices)
    assert schema.task == "regression"

    features = feature_frame(read_table(path), schema)
    assert list(features.columns[-4:]) == [
        "joined.year",
        "joined.month",
        "joined.day",
        "joined.day_of_week",
    ]
    assert features["joined.year"].iloc[0] == 2020 and features["member"].isin([0, 1]).all()


def test_roles_set_in_the_spec_win():
    frame = pd.DataFrame({"zip": [10, 20, 30, 40] * 10, "v": range(40), "y": [0, 1] * 20})
    schema, _ = infer_schema(frame, "y", {"zip": "categorical", "v": "ignore"}, "auto")
    assert _roles(schema) == {"zip": "categorical"} and schema.dropped == ("v",)


@pytest.mark.parametrize(
    ("values", "requested", "task"),
    [
        (["a", "b"] * 10, "auto", "binary"),
        ([0, 1, 2] * 10, "auto", "multiclass"),
        ([0.5, 1.25, 3.0] * 10, "auto", "regression"),
        (list(range(30)), "auto", "regression"),  # more distinct integers than classes allow
        ([0, 1, 2] * 10, "regression", "regression"),
        ([True, False] * 10, "auto", "binary"),
    ],
)
def test_task_is_inferred_from_the_target(values, requested, task):
    assert infer_task(pd.Series(values, name="y"), requested) == task


def test_classes_keep_their_labels_and_order():
    frame = pd.DataFrame({"x": np.random.default_rng(0).normal(size=30), "y": ["b", "a", "c"] * 10})
    schema, _ = infer_schema(frame, "y", {}, "auto")
    assert schema.classes == ("a", "b", "c") and schema.task == "multiclass"


def test_prediction_rows_with_unseen_categories_and_extra_columns_are_accepted():
    train = pd.DataFrame({"c": ["a", "b"] * 20, "x": np.arange(40.0) / 3, "y": [0, 1] * 20})
    schema, _ = infer_schema(train, "y", {}, "auto")
    rows = pd.DataFrame({"c": ["zzz"], "x": ["3.5"], "extra": [1]})
    features = feature_frame(rows, schema)
    assert list(features.columns) == ["c", "x"] and features["x"].iloc[0] == 3.5
