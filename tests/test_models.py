"""Every registered family, for every task it supports: fit, score, save, reload, same output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from trainforge.bundle import load_bundle, save_bundle
from trainforge.candidates import Candidate, fit_candidate, plan
from trainforge.data.dataset import load_dataset
from trainforge.metrics import primary_metric
from trainforge.models.registry import Profile, families, get_family, ladder
from trainforge.spec import build_spec


def _table(task: str) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 240
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.uniform(size=n),
            "colour": rng.choice(["red", "green", "blue"], size=n),
            # 40 levels: target-encoded for linear families, codes for trees
            "shop": [f"s{i}" for i in rng.integers(0, 40, size=n)],
        }
    )
    signal = 2 * frame["x1"] + (frame["colour"] == "red")
    if task == "regression":
        frame["y"] = signal + rng.normal(scale=0.1, size=n)
    elif task == "binary":
        frame["y"] = np.where(signal > 0.3, "pos", "neg")
    else:
        frame["y"] = pd.cut(signal, [-np.inf, -0.5, 0.8, np.inf], labels=["lo", "mid", "hi"])
        frame["y"] = frame["y"].astype(str)
    return frame


CASES = [
    (family.name, task)
    for family in families()
    for task in ("binary", "multiclass", "regression")
    if family.supports(task)
    and "table" in family.inputs  # text/sequences: test_sequence*.py
    and not family.required  # torch_module's builder: tests/test_torch_module.py
]


@pytest.mark.parametrize(("name", "task"), CASES, ids=[f"{n}-{t}" for n, t in CASES])
def test_family_fits_saves_and_reloads_identically(name, task, tmp_path):
    frame = _table(task)
    spec = build_spec(target="y", models=[name], task=task)
    dataset = load_dataset(spec.data, task, seed=0, train=frame)
    fold = dataset.folds[0]
    profile = Profile(task, len(fold.X_train), len(dataset.schema.columns), 3, seed=0)
    primary = primary_metric("auto", task)
    result = fit_candidate(Candidate(name, get_family(name), {}), dataset, profile, primary)

    baseline = 0.5 if task == "binary" else None
    score = result.metrics[primary.name]
    assert np.isfinite(score)
    if baseline is not None and name != "baseline":
        assert score > 0.7, f"{name} did not learn: roc_auc={score:.3f}"

    rows = frame.drop(columns="y").iloc[:50]
    before = result.model.predict(rows)
    save_bundle(result.model, tmp_path / "model")
    loaded = load_bundle(tmp_path / "model")  # exactly TRUSTED_TYPES, nothing more
    np.testing.assert_array_equal(loaded.predict(rows), before)
    odd = rows.iloc[:3].assign(colour=["purple", None, "red"], shop="never-seen", x1=np.nan)
    odd_predictions = loaded.predict(odd)
    assert len(odd_predictions) == 3
    if task == "regression":
        assert np.isfinite(odd_predictions).all()
    else:
        assert set(before) <= set(frame["y"])
        assert np.isfinite(loaded.predict_proba(odd).to_numpy()).all()
        pd.testing.assert_frame_equal(loaded.predict_proba(rows), result.model.predict_proba(rows))
        assert list(loaded.predict_proba(rows).columns) == [
            f"proba_{c}" for c in sorted(frame["y"].unique())
        ]


@pytest.mark.parametrize("name", [f.name for f in families()])
def test_family_builds_a_clonable_sklearn_estimator(name):
    family = get_family(name)
    tasks = ("regression", "binary", "clustering", "reduction", "generation")
    task = next(t for t in tasks if family.supports(t, True))  # True: image-only families too
    estimator = family.build(Profile(task, 1000, 5, 2, seed=7), {})
    params = estimator.get_params()
    assert clone(estimator).get_params().keys() == params.keys()
    if "random_state" in params:
        assert params["random_state"] == 7


def test_ladder_starts_with_the_baseline_and_grows_in_complexity():
    assert [f.name for f in ladder("binary")] == [
        "baseline",
        "logistic_regression",
        "naive_bayes",
        "knn",
        "svm",
        "decision_tree",
        "random_forest",
        "extra_trees",
        "hist_gradient_boosting",
        "lightgbm",
        "xgboost",
        "catboost",
        "mlp",
    ]
    assert [f.name for f in ladder("regression")] == [
        "baseline",
        "ridge",
        "knn",
        "svm",
        "decision_tree",
        "random_forest",
        "extra_trees",
        "hist_gradient_boosting",
        "lightgbm",
        "xgboost",
        "catboost",
        "mlp",
    ]


def test_large_data_swaps_kernel_svm_for_linear_with_a_notice():
    candidates, notices = plan([], Profile("binary", 50_000, 10, 2))
    names = [c.name for c in candidates]
    assert "linear_svm" in names and "svm" not in names
    assert any("linear_svm instead" in n for n in notices)

    small, quiet = plan([], Profile("binary", 5_000, 10, 2))
    assert "svm" in [c.name for c in small] and quiet == []


def test_named_models_are_trained_as_named_and_duplicates_get_suffixes():
    spec = build_spec(target="y", models=["svm", {"name": "svm", "C": 10.0}])
    candidates, notices = plan(spec.models, Profile("binary", 50_000, 10, 2))
    assert [c.name for c in candidates] == ["svm", "svm_2"]
    assert candidates[1].params == {"C": 10.0}
    assert notices == []


def test_initial_settings_adapt_to_data_size():
    forest = get_family("random_forest")
    assert forest.initial(Profile("binary", 1_000, 5))["min_samples_leaf"] == 1
    assert forest.initial(Profile("binary", 30_000, 5))["min_samples_leaf"] == 5
    assert forest.initial(Profile("binary", 80_000, 5))["n_estimators"] == 100


def test_without_torch_the_ladder_leaves_mlp_out_and_naming_it_says_what_to_install(monkeypatch):
    import importlib.util

    from trainforge.errors import SpecError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    candidates, notices = plan([], Profile("binary", 1_000, 5, 2))
    assert "mlp" not in [c.name for c in candidates]
    assert any("mlp: left out because torch is not installed" in n for n in notices)
    with pytest.raises(SpecError, match=r"models\[0\].name: mlp needs torch.*trainforge\[torch\]"):
        build_spec(target="y", models=["mlp"])
