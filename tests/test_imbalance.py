"""Class imbalance: detected and reported, classes weighted, honest metrics, a tuned threshold
that is saved with the model, and resampling that never touches validation rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import trainforge
from trainforge.bundle import load_bundle
from trainforge.errors import SpecError
from trainforge.imbalance import balanced_weights, crossfit_threshold, tune_threshold
from trainforge.metrics import METRICS


def _rare_positives(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    """About 8% positives that depend on x1 and the colour."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    logit = 1.8 * x1 + np.where(colour == "red", 1.0, 0.0) - 3.4
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {"x1": x1, "x2": rng.normal(size=n), "colour": colour, "y": np.where(y, "rare", "common")}
    )


def test_balanced_weights_give_every_class_the_same_total():
    y = np.array([0] * 90 + [1] * 10)
    weights = balanced_weights(y)
    assert weights[y == 0].sum() == pytest.approx(weights[y == 1].sum()) == pytest.approx(50)


@pytest.mark.parametrize("metric", ["f1", "balanced_accuracy", "mcc"])
def test_threshold_scores_match_sklearn(metric):
    from trainforge.imbalance import _threshold_scores

    rng = np.random.default_rng(3)
    y = (rng.random(500) < 0.15).astype(int)
    p1 = np.clip(0.3 * y + rng.uniform(size=500) * 0.8, 0, 1)
    cuts = np.array([0.1, 0.35, 0.5, 0.72])
    fast = _threshold_scores(y == 1, p1, cuts, metric)
    slow = [METRICS[metric].compute(y, (p1 >= c).astype(int), None) for c in cuts]
    np.testing.assert_allclose(fast, slow, rtol=1e-12)


def test_a_cross_fitted_threshold_scores_lower_than_one_tuned_on_the_same_rows():
    """Scores without any signal: a threshold tuned on the scored rows finds a lucky cut-off
    (balanced accuracy above 0.5); cross-fitting shows the truth (about 0.5)."""
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.1).astype(int)
    p1 = rng.uniform(size=400)
    score = METRICS["balanced_accuracy"].compute
    tuned = tune_threshold(y, p1, "balanced_accuracy")
    in_sample = score(y, (p1 >= tuned).astype(int), None)
    crossfit, kept = crossfit_threshold(y, p1, "balanced_accuracy", seed=0)
    assert kept == tuned
    assert in_sample > 0.52  # measured 0.526
    assert score(y, crossfit, None) < in_sample - 0.02  # measured 0.503


def test_imbalanced_binary_run_weights_classes_tunes_and_saves_a_threshold(tmp_path):
    frame = _rare_positives()
    result = trainforge.train(
        data=frame,
        target="y",
        models=["logistic_regression", "lightgbm", {"name": "mlp", "max_epochs": 5}],
        output=tmp_path,
        metric="f1",  # a label metric: weighted (a ranking metric is not)
        ensemble=False,
    )
    manifest = json.loads((result.path / "manifest.json").read_text())
    plan = manifest["imbalance"]
    assert plan["imbalanced"] is True and plan["class_weight"] is True
    assert plan["threshold_metric"] == "f1"
    shares = (frame["y"].value_counts(normalize=True)).to_dict()
    assert plan["shares"]["rare"] == pytest.approx(shares["rare"], abs=1e-9)
    assert any(n.startswith("class imbalance: common") for n in manifest["notices"])
    board = result.leaderboard
    assert {"pr_auc", "mcc", "balanced_accuracy"} <= set(board.columns)
    assert board["pr_auc"].between(0, 1).all()

    folder = result.path / "candidates/logistic_regression"
    recorded = json.loads((folder / "metrics.json").read_text())
    assert recorded["settings"]["class_weight"] == "balanced"
    mlp = json.loads((result.path / "candidates/mlp/metrics.json").read_text())
    assert "class_weight" not in mlp["settings"]  # the MLP takes no sample weights
    threshold = recorded["threshold"]
    assert 0 < threshold < 1
    model = load_bundle(folder / "model")
    assert model.threshold == threshold
    rows = frame.drop(columns="y")
    proba = model.predict_proba(rows)["proba_rare"].to_numpy()
    expected = np.where(proba >= threshold, "rare", "common")
    np.testing.assert_array_equal(model.predict(rows), expected)


@pytest.mark.parametrize("metric", ["log_loss", "roc_auc", "pr_auc"])
def test_probability_and_ranking_metrics_keep_class_weights_off_unless_asked(tmp_path, metric):
    frame = _rare_positives()
    result = trainforge.train(
        data=frame,
        target="y",
        models=["logistic_regression"],
        output=tmp_path,
        metric=metric,
        ensemble=False,
    )
    plan = json.loads((result.path / "manifest.json").read_text())["imbalance"]
    assert plan["imbalanced"] is True and plan["class_weight"] is False
    recorded = json.loads((result.path / "candidates/logistic_regression/metrics.json").read_text())
    assert "class_weight" not in recorded["settings"]
    forced = trainforge.train(
        data=frame,
        target="y",
        models=["logistic_regression"],
        output=tmp_path,
        metric=metric,
        ensemble=False,
        imbalance={"class_weight": "balanced"},
    )
    plan = json.loads((forced.path / "manifest.json").read_text())["imbalance"]
    assert plan["class_weight"] is True


@pytest.mark.parametrize("method", ["under", "smote"])
def test_resampling_changes_training_rows_only(method, tmp_path):
    frame = _rare_positives()
    result = trainforge.train(
        data=frame,
        target="y",
        models=["logistic_regression"],
        output=tmp_path,
        ensemble=False,
        imbalance={"resample": method, "class_weight": "none"},
    )
    folder = result.path / "candidates/logistic_regression"
    predictions = pd.read_parquet(folder / "predictions.parquet")
    assert len(predictions) == 200  # every validation row, none added or removed
    share = (predictions["y_true"] == "rare").mean()
    assert share == pytest.approx((frame["y"] == "rare").mean(), abs=0.02)
    model = load_bundle(folder / "model")
    assert [name for name, _ in model.pipeline.steps] == ["features", "model"]
    settings = json.loads((folder / "metrics.json").read_text())["settings"]
    assert settings["resample"] == method


def test_balanced_data_changes_nothing(tmp_path, small_table):
    result = trainforge.train(
        data=small_table,
        target="y",
        models=["logistic_regression"],
        output=tmp_path,
        ensemble=False,
    )
    plan = json.loads((result.path / "manifest.json").read_text())["imbalance"]
    assert plan["imbalanced"] is False and plan["class_weight"] is False
    assert plan["threshold_metric"] is None
    assert "pr_auc" not in result.leaderboard.columns


def test_a_bad_imbalance_setting_names_the_field():
    with pytest.raises(SpecError, match=r"imbalance.resample: .*'smote'.*got 'smite'"):
        trainforge.train(data="x.csv", target="y", imbalance={"resample": "smite"})


def test_cli_flags_set_the_imbalance_section_and_keep_the_rest_of_the_yaml(tmp_path):
    from trainforge.spec import build_spec

    (tmp_path / "spec.yaml").write_text(
        "data: {train: t.csv, target: y}\nimbalance: {resample: smote, threshold: none}\n"
    )
    spec = build_spec(tmp_path / "spec.yaml", imbalance={"class_weight": "none"}, ensemble=False)
    assert spec.imbalance.resample == "smote" and spec.imbalance.threshold == "none"
    assert spec.imbalance.class_weight == "none" and spec.ensemble is False
