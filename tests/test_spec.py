"""RunSpec: YAML, flat settings (CLI/Python) and the constructor all give the same object, and
invalid specs fail with one line naming the field path, the bad value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import run_cli
from trainforge.errors import SpecError
from trainforge.spec import DataSpec, ModelSpec, Role, RunSpec, SplitSpec, Task, build_spec


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_yaml_flat_settings_and_constructor_build_the_same_spec(tmp_path):
    spec_file = _write(
        tmp_path / "spec.yaml",
        """
data:
  train: data.csv
  target: y
  columns: {zip: categorical}
  split: {strategy: cv, folds: 3}
task: binary
models: [ridge, {name: decision_tree, max_depth: 4}]
metric: accuracy
seed: 7
""",
    )
    from_yaml = build_spec(spec_file)
    from_flat = build_spec(
        train=str(tmp_path / "data.csv"),
        target="y",
        columns={"zip": "categorical"},
        folds=3,
        task="binary",
        models=["ridge", {"name": "decision_tree", "max_depth": 4}],
        metric="accuracy",
        seed=7,
    )
    built = RunSpec(
        data=DataSpec(
            train=tmp_path / "data.csv",
            target="y",
            columns={"zip": Role.CATEGORICAL},
            split=SplitSpec(strategy="cv", folds=3),
        ),
        task=Task.BINARY,
        models=[ModelSpec(name="ridge"), ModelSpec(name="decision_tree", max_depth=4)],
        metric="accuracy",
        seed=7,
    )
    assert from_yaml == from_flat == built
    assert from_yaml.models[1].params == {"max_depth": 4}
    assert RunSpec.from_dict(yaml.safe_load(from_yaml.to_yaml())) == from_yaml


def test_flat_settings_override_a_yaml_spec(tmp_path):
    spec_file = _write(tmp_path / "s.yaml", "data: {train: a.csv, target: y}\nseed: 1\n")
    spec = build_spec(spec_file, seed=5, models=["baseline"])
    assert spec.seed == 5 and [m.name for m in spec.models] == ["baseline"]
    assert spec.data.train == tmp_path / "a.csv"  # relative to the YAML file


def test_cli_and_python_write_the_same_resolved_spec(tmp_path, small_csv):
    import trainforge

    done = run_cli(
        "train",
        small_csv,
        "--target",
        "y",
        "--models",
        "baseline",
        "--seed",
        "3",
        "--out",
        "runs",
        cwd=tmp_path,
    )
    assert done.code == 0, done.stderr
    api = trainforge.train(
        data=str(small_csv), target="y", models=["baseline"], seed=3, output="runs"
    )
    cli_spec = next((tmp_path / "runs").glob("*/spec.yaml")).read_text()
    assert api.path.joinpath("spec.yaml").read_text() == cli_spec


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"models": ["ridge", "lasso", {"name": "decision_tree", "max_depth": "ten"}]},
            "models[2].max_depth: expected an int in the range [1, inf) or None, got 'ten'",
        ),
        (
            {"models": ["randomforest"]},
            "models[0].name: unknown model 'randomforest'; did you mean 'random_forest'",
        ),
        (
            {"models": [{"name": "decision_tree", "max_dept": 3}]},
            "models[0].max_dept: unknown parameter for decision_tree; did you mean 'max_depth'",
        ),
        (
            {"models": [{"name": "svm", "C": -1.0}]},
            "models[0].C: expected a float in the range (0.0, inf], got -1.0",
        ),
        ({"seed": -1}, "seed: input should be greater than or equal to 0, got -1"),
        (
            {"task": "ranking"},
            "task: input should be 'auto', 'binary', 'multiclass', 'regression', 'clustering', "
            "'reduction', 'image_classification', 'text_classification', 'text_regression', "
            "'sequence_classification', 'sequence_regression' or 'generation', got 'ranking'",
        ),
        (
            {"task": "clustering"},
            "data.target: a clustering task has no target; remove it, or name the column "
            "data.labels",
        ),
        ({"metric": "auc"}, "metric: unknown metric 'auc'; did you mean 'pr_auc' or 'roc_auc'?"),
        ({"epochs": 3}, "epochs: unknown setting; remove it or check its spelling"),
        ({"data": {"train": "a.csv"}}, "data.target: required setting is missing"),
        (
            {"data": {"train": "a.csv", "target": "y", "columns": {"c": "words"}}},
            "data.columns.c: input should be 'numeric', 'categorical', 'boolean', 'datetime', 'text', 'sequence' or 'ignore', got 'words'",
        ),
        (
            {"data": {"train": "a.csv", "target": "y", "split": {"validation_fraction": 1.5}}},
            "data.split.validation_fraction: input should be less than 1, got 1.5",
        ),
    ],
)
def test_invalid_specs_name_the_path_the_value_and_what_is_allowed(raw, message):
    spec = {"data": {"train": "a.csv", "target": "y"}, **raw}
    with pytest.raises(SpecError) as caught:
        RunSpec.from_dict(spec)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_not_yaml_names_the_line(tmp_path):
    bad = _write(tmp_path / "bad.yaml", "data:\n  target: y\n  train: [a.csv\n")
    with pytest.raises(SpecError, match=r"bad.yaml is not valid YAML at line \d+, column \d+"):
        build_spec(bad)


def test_a_spec_that_is_not_a_mapping_is_refused(tmp_path):
    with pytest.raises(SpecError, match="expected a mapping of settings, got list"):
        build_spec(_write(tmp_path / "list.yaml", "- a\n- b\n"))


def test_metric_that_does_not_fit_the_task_is_refused_with_the_choices():
    from trainforge.metrics import primary_metric

    with pytest.raises(
        SpecError, match="'rmse' does not apply to a binary task; use one of roc_auc"
    ):
        primary_metric("rmse", "binary")
    assert primary_metric("auto", "multiclass").name == "log_loss"
