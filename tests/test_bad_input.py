"""Bad input through the real CLI: exit code 2, one actionable ``error:`` line, nothing completed.

Every case writes a tiny table (or spec) into ``tmp_path``, runs ``trainforge`` there in a fresh
process and checks the whole contract for input errors:

1. the exit code is exactly 2;
2. stderr is exactly one non-empty line, starting with ``error: ``, without a traceback;
3. the line names the problem (the column, the file, the bad value, a suggestion...);
4. no run under the runs folder is marked ``completed`` (for ``predict``: the ``-o`` file is
   not created).

Training commands pass ``--quiet`` so that the progress line (``run <id> (<path>)``) does not
share stderr with the error; notices would still be printed, and none is expected here.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import CliResult, make_small_table, manifests, run_cli

# -- helpers ------------------------------------------------------------------------------------


def assert_input_error(result: CliResult, *needles: str) -> str:
    """Check exit code 2 and a single ``error:`` line containing every needle; return the line."""
    shown = f"exit {result.code}\n--- stderr ---\n{result.stderr}\n--- stdout ---\n{result.stdout}"
    assert result.code == 2, shown
    assert "Traceback" not in result.stderr, shown
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"expected exactly one stderr line\n{shown}"
    line = lines[0]
    assert line.startswith("error: ") and line[len("error: ") :].strip(), shown
    for needle in needles:
        assert needle in line, f"{needle!r} not in the error line\n{shown}"
    return line


def assert_nothing_completed(tmp_path: Path) -> None:
    """No run under ``tmp_path/runs`` says completed; a run that was started says failed."""
    statuses = [m["status"] for m in manifests(tmp_path / "runs")]
    assert "completed" not in statuses, statuses
    assert all(status == "failed" for status in statuses), statuses


def train(tmp_path: Path, *args: str) -> CliResult:
    return run_cli("train", *args, "--quiet", cwd=tmp_path)


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def tiny_table(n: int = 40, seed: int = 0) -> pd.DataFrame:
    """A small learnable binary table: numeric x1, x2, categorical c, target y (yes/no)."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": np.round(rng.normal(size=n), 3),
            "c": rng.choice(["red", "green", "blue"], size=n),
            "y": np.where(x1 > 0, "yes", "no"),
        }
    )


def write_spec(tmp_path: Path, text: str) -> Path:
    """``spec.yaml`` with ``text``, beside a tiny training table ``train.csv``."""
    write_csv(tmp_path / "train.csv", tiny_table())
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


# -- empty, missing or unreadable files ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [("empty.csv", b"", "empty"), ("header_only.csv", b"x1,x2,y\n", "no data rows")],
    ids=["zero-bytes", "header-only"],
)
def test_empty_table(tmp_path: Path, name: str, content: bytes, needle: str):
    (tmp_path / name).write_bytes(content)
    result = train(tmp_path, name, "--target", "y", "--models", "baseline")
    assert_input_error(result, name, needle)
    assert_nothing_completed(tmp_path)


def test_missing_file(tmp_path: Path):
    result = train(tmp_path, "no_such_table.csv", "--target", "y", "--models", "baseline")
    assert_input_error(result, "no_such_table.csv", "no such file")
    assert_nothing_completed(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("garbage.csv", bytes(range(256)) * 8, "cannot read"),
        ("fake.parquet", b"x1,x2,y\n1,2,yes\n3,4,no\n", "as Parquet"),
        # a gzip header followed by junk: zlib raises its own error type while inflating
        ("garbage.csv.gz", b"\x1f\x8b\x08\x00 not really gzip " * 4, "cannot read"),
    ],
    ids=["binary-csv", "text-as-parquet", "broken-gzip"],
)
def test_unreadable_file(tmp_path: Path, name: str, content: bytes, needle: str):
    (tmp_path / name).write_bytes(content)
    result = train(tmp_path, name, "--target", "y", "--models", "baseline")
    assert_input_error(result, name, needle)
    assert_nothing_completed(tmp_path)


def test_one_column_text_file(tmp_path: Path):
    """A .txt header without any separator is one column, not a crash in the sniffer."""
    (tmp_path / "labels.txt").write_text("y\n" + "yes\nno\n" * 10)
    result = train(tmp_path, "labels.txt", "--target", "y", "--models", "baseline")
    assert_input_error(result, "no usable feature columns")
    assert_nothing_completed(tmp_path)


# -- the target ---------------------------------------------------------------------------------


def test_missing_target_column(tmp_path: Path):
    write_csv(tmp_path / "train.csv", tiny_table())
    result = train(tmp_path, "train.csv", "--target", "nope", "--models", "baseline")
    assert_input_error(result, "'nope'", "not in the data", "'x1'")
    assert_nothing_completed(tmp_path)


def test_target_all_missing(tmp_path: Path):
    write_csv(tmp_path / "train.csv", tiny_table().assign(y=np.nan))
    result = train(tmp_path, "train.csv", "--target", "y", "--models", "baseline")
    assert_input_error(result, "'y'", "no values")
    assert_nothing_completed(tmp_path)


def test_target_single_class(tmp_path: Path):
    write_csv(tmp_path / "train.csv", tiny_table().assign(y="yes"))
    result = train(tmp_path, "train.csv", "--target", "y", "--models", "baseline")
    assert_input_error(result, "'y'", "single value", "'yes'")
    assert_nothing_completed(tmp_path)


def test_validation_class_unseen_in_training(tmp_path: Path):
    write_csv(tmp_path / "train.csv", tiny_table(seed=0))
    valid = tiny_table(n=12, seed=1)
    valid.loc[3, "y"] = "maybe"
    write_csv(tmp_path / "valid.csv", valid)
    result = train(
        tmp_path, "train.csv", "--target", "y", "--validation", "valid.csv", "--models", "baseline"
    )
    assert_input_error(result, "'maybe'", "class the training data does not have")
    assert_nothing_completed(tmp_path)


# -- models, specs and flags --------------------------------------------------------------------


def test_unknown_model_suggests_the_close_name(tmp_path: Path):
    write_csv(tmp_path / "train.csv", tiny_table())
    result = train(tmp_path, "train.csv", "--target", "y", "--models", "randomforest")
    assert_input_error(result, "'randomforest'", "did you mean 'random_forest'")
    assert_nothing_completed(tmp_path)


@pytest.mark.parametrize(
    ("models", "needles"),
    [
        (
            "[{name: decision_tree, max_dept: 3}]",
            ("models[0].max_dept", "unknown parameter", "did you mean 'max_depth'"),
        ),
        ('[{name: decision_tree, max_depth: "ten"}]', ("models[0].max_depth", "ten")),
        (
            "[baseline, logistic_regression, {name: random_forest, n_estimators: -5}]",
            ("models[2].n_estimators", "-5"),
        ),
    ],
    ids=["unknown-parameter", "wrong-type", "third-model-bad-value"],
)
def test_bad_model_parameter_in_spec(tmp_path: Path, models: str, needles: tuple[str, ...]):
    spec = write_spec(tmp_path, f"data: {{train: train.csv, target: y}}\nmodels: {models}\n")
    result = train(tmp_path, spec.name)
    assert_input_error(result, *needles)
    assert_nothing_completed(tmp_path)


def test_spec_not_valid_yaml(tmp_path: Path):
    spec = write_spec(tmp_path, "data:\n  train: train.csv\n  target: [y\nmodels: [baseline]\n")
    result = train(tmp_path, spec.name)
    assert_input_error(result, "spec.yaml", "not valid YAML", "line ", "column ")
    assert_nothing_completed(tmp_path)


def test_spec_unknown_top_level_key(tmp_path: Path):
    spec = write_spec(
        tmp_path, "data: {train: train.csv, target: y}\nmodels: [baseline]\nmodles: [ridge]\n"
    )
    result = train(tmp_path, spec.name)
    assert_input_error(result, "modles", "unknown setting")
    assert_nothing_completed(tmp_path)


def test_spec_unknown_task(tmp_path: Path):
    spec = write_spec(
        tmp_path, "data: {train: train.csv, target: y}\ntask: clasification\nmodels: [baseline]\n"
    )
    result = train(tmp_path, spec.name)
    assert_input_error(result, "task", "clasification")
    assert_nothing_completed(tmp_path)


def test_cli_unknown_task(tmp_path: Path):
    write_csv(tmp_path / "train.csv", tiny_table())
    result = train(
        tmp_path, "train.csv", "--target", "y", "--task", "clasification", "--models", "baseline"
    )
    assert_input_error(result, "--task", "clasification")
    assert_nothing_completed(tmp_path)


def test_unknown_role(tmp_path: Path):
    write_csv(tmp_path / "train.csv", tiny_table())
    result = train(
        tmp_path, "train.csv", "--target", "y", "--role", "c=categorial", "--models", "baseline"
    )
    assert_input_error(result, "columns.c", "categorial")
    assert_nothing_completed(tmp_path)


# -- cell values --------------------------------------------------------------------------------


def test_text_in_numeric_column(tmp_path: Path):
    table = tiny_table(n=50).astype({"x2": object})
    table.loc[17, "x2"] = "abc"  # 1 of 50: too few to make the column categorical
    write_csv(tmp_path / "train.csv", table)
    result = train(tmp_path, "train.csv", "--target", "y", "--models", "baseline")
    assert_input_error(result, "'x2'", "'abc'", "row 18", "not numbers")
    assert_nothing_completed(tmp_path)


@pytest.mark.parametrize(
    "codes",
    [False, True],
    ids=["float-column", "integer-codes"],  # integer codes become a categorical column
)
def test_infinite_values(tmp_path: Path, codes: bool):
    table = tiny_table(n=40)
    if codes:
        table["x2"] = np.arange(40) % 4
    table = table.astype({"x2": object})
    table.loc[5, "x2"] = "inf"
    write_csv(tmp_path / "train.csv", table)
    result = train(tmp_path, "train.csv", "--target", "y", "--models", "baseline")
    assert_input_error(result, "'x2'", "infinite", "row 6")
    assert_nothing_completed(tmp_path)


def test_bad_cell_row_counts_rows_without_a_target(tmp_path: Path):
    table = tiny_table(n=40).astype({"x2": object, "y": object})
    table.loc[[1, 2], "y"] = None  # left out with a notice; later row numbers must not shift
    table.loc[9, "x2"] = "inf"  # data row 10 of the file
    write_csv(tmp_path / "train.csv", table)
    result = train(tmp_path, "train.csv", "--target", "y", "--models", "baseline")
    assert_input_error(result, "'x2'", "infinite", "row 10")
    assert_nothing_completed(tmp_path)


# -- duplicate column names ---------------------------------------------------------------------


def _duplicated(sep: str) -> bytes:
    rows = [sep.join(["x1", "x2", "x1", "y"])]
    rows += [sep.join([str(i), str(i * 2), str(-i), "yes" if i % 2 else "no"]) for i in range(20)]
    return ("\n".join(rows) + "\n").encode()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("dupes.csv", _duplicated(",")),
        ("dupes.tsv", _duplicated("\t")),
        ("dupes.csv.gz", gzip.compress(_duplicated(","))),
    ],
    ids=["csv", "tsv", "csv.gz"],
)
def test_duplicate_column_names(tmp_path: Path, name: str, content: bytes):
    (tmp_path / name).write_bytes(content)
    result = train(tmp_path, name, "--target", "y", "--models", "baseline")
    assert_input_error(result, name, "duplicate", "'x1'")
    assert_nothing_completed(tmp_path)


def test_duplicate_column_names_in_parquet(tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = [pa.array(np.arange(20.0)), pa.array(np.arange(20.0) * 2), pa.array(["a", "b"] * 10)]
    pq.write_table(pa.Table.from_arrays(columns, names=["x1", "x1", "y"]), tmp_path / "d.parquet")
    result = train(tmp_path, "d.parquet", "--target", "y", "--models", "baseline")
    assert_input_error(result, "d.parquet", "duplicate", "'x1'")
    assert_nothing_completed(tmp_path)


# -- prediction ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One completed baseline run, shared by the prediction tests; returns its folder."""
    folder = tmp_path_factory.mktemp("trained")
    write_csv(folder / "small.csv", make_small_table())
    result = run_cli(
        "train", "small.csv", "--target", "y", "--models", "baseline", "--quiet", cwd=folder
    )
    assert result.code == 0, result.stderr
    (run,) = manifests(folder / "runs")
    assert run["status"] == "completed"
    return folder / "runs" / run["id"]


def _assert_predict_left_nothing(tmp_path: Path, trained_run: Path) -> None:
    assert not (tmp_path / "out.csv").exists()
    assert not list(tmp_path.glob(".out.csv.*"))  # no temporary file left behind either
    assert not (tmp_path / "runs").exists()
    assert [m["status"] for m in manifests(trained_run.parent)] == ["completed"]


def test_predict_data_missing_a_training_column(tmp_path: Path, trained_run: Path):
    write_csv(tmp_path / "new.csv", make_small_table(10).drop(columns=["x1", "y"]))
    result = run_cli("predict", trained_run, "new.csv", "-o", "out.csv", cwd=tmp_path)
    assert_input_error(result, "'x1'", "lacks")
    _assert_predict_left_nothing(tmp_path, trained_run)


def test_predict_infinite_value(tmp_path: Path, trained_run: Path):
    rows = make_small_table(10).drop(columns=["y"]).astype({"x2": object})
    rows.loc[4, "x2"] = "-inf"
    write_csv(tmp_path / "new.csv", rows)
    # by run id, as after `trainforge runs`
    args = ("predict", trained_run.name, "new.csv", "-o", "out.csv", "--out", trained_run.parent)
    result = run_cli(*args, cwd=tmp_path)
    assert_input_error(result, "'x2'", "infinite", "row 5")
    _assert_predict_left_nothing(tmp_path, trained_run)


# -- --debug ------------------------------------------------------------------------------------


def test_debug_shows_the_traceback(tmp_path: Path):
    write_csv(tmp_path / "train.csv", tiny_table())
    args = ("train", "train.csv", "--target", "nope", "--models", "baseline", "--quiet")
    result = run_cli("--debug", *args, cwd=tmp_path)
    assert result.code != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "DataError" in result.stderr and "'nope'" in result.stderr
    assert_nothing_completed(tmp_path)
    # the same input without --debug: the one-line message only
    assert_input_error(run_cli(*args, cwd=tmp_path), "'nope'")


# -- the Python API shares the data layer -------------------------------------------------------


def test_api_frame_with_text_index_reports_the_row(tmp_path: Path):
    """Row numbers are positions, so a frame indexed by labels gets a DataError, not a TypeError."""
    import trainforge
    from trainforge.errors import DataError

    table = tiny_table(n=40).astype({"x2": object})
    table.loc[9, "x2"] = "abc"
    table.index = [f"r{i}" for i in range(len(table))]
    with pytest.raises(DataError, match=r"'x2'.*'abc' in row 10"):
        trainforge.train(data=table, target="y", models=["baseline"], output=tmp_path / "runs")
    assert_nothing_completed(tmp_path)
