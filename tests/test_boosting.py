"""XGBoost, LightGBM and CatBoost: early stopping, native categories, repeatable fits, native files.

The registry-wide test in test_models.py already fits, saves and reloads every family; these
check what is particular to the boosting libraries.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from trainforge.bundle import load_bundle, save_bundle
from trainforge.candidates import Candidate, fit_candidate
from trainforge.data.dataset import load_dataset
from trainforge.metrics import primary_metric
from trainforge.models import boosting
from trainforge.models.registry import Profile, get_family
from trainforge.spec import build_spec

LIBRARIES = {"xgboost": "model.ubj", "lightgbm": "model.txt", "catboost": "model.cbm"}


def _codes_table(n: int = 600, seed: int = 0):
    """Column 2 holds category codes whose effect is not monotone in the code (so ordinal
    splits need several cuts where a categorical split needs one)."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=n), rng.normal(size=n), rng.integers(0, 8, n)])
    X = X.astype(float)
    X[rng.random(n) < 0.05, 0] = np.nan
    y = ((X[:, 1] + np.isin(X[:, 2], [1, 4, 6]) * 1.5 + rng.normal(0, 0.5, n)) > 0.7).astype(int)
    return X, y


@pytest.mark.parametrize("library", ["XGBoost", "LightGBM", "CatBoost"])
def test_early_stopping_keeps_the_best_round_and_fits_repeat_exactly(library):
    X, y = _codes_table()
    make = getattr(boosting, f"{library}Classifier")
    settings = dict(n_estimators=3000, random_state=3, categorical_features=[False, False, True])
    first = make(**settings).fit(X, y)
    second = make(**settings).fit(X, y)
    assert 1 <= first.n_rounds_ < 3000  # stopped early
    assert len(first.history_) == first.n_rounds_
    assert {"round", "loss", "val_loss"} <= set(first.history_[0])
    best = min(h["val_loss"] for h in first.history_)
    # the kept model ends at (CatBoost: within a rounding of) the best validation loss
    assert first.history_[-1]["val_loss"] == pytest.approx(best, rel=1e-6)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert first.score(X, y) > 0.8


@pytest.mark.parametrize("library", ["XGBoost", "LightGBM", "CatBoost"])
def test_sample_weights_change_the_fit(library):
    X, y = _codes_table()
    make = getattr(boosting, f"{library}Classifier")
    plain = make(random_state=0).fit(X, y).predict_proba(X)[:, 1]
    weights = np.where(y == 1, 5.0, 1.0)
    weighted = make(random_state=0).fit(X, y, sample_weight=weights).predict_proba(X)[:, 1]
    assert weighted.mean() > plain.mean() + 0.05  # positives weigh more: higher probabilities


@pytest.mark.parametrize("name", list(LIBRARIES))
def test_bundle_holds_the_native_model_file_and_predicts_the_same(name, small_table, tmp_path):
    spec = build_spec(target="y", models=[name])
    dataset = load_dataset(spec.data, "auto", seed=0, train=small_table)
    fold = dataset.folds[0]
    profile = Profile("binary", len(fold.X_train), len(dataset.schema.columns), 2, seed=0)
    result = fit_candidate(
        Candidate(name, get_family(name), {}), dataset, profile, primary_metric("auto", "binary")
    )
    assert sum(result.model.pipeline[-1].categorical_features) == 1  # c, the one categorical
    assert result.settings["n_jobs"] == 1  # small data: one thread
    save_bundle(result.model, tmp_path / "model")
    info = json.loads((tmp_path / "model/bundle.json").read_text())
    assert f"estimator/{LIBRARIES[name]}" in info["files"]
    assert info["estimator"].startswith("trainforge.models.boosting.")
    loaded = load_bundle(tmp_path / "model")
    rows = small_table.drop(columns="y")
    np.testing.assert_array_equal(
        loaded.predict_proba(rows).to_numpy(), result.model.predict_proba(rows).to_numpy()
    )
    estimator = loaded.pipeline[-1]
    assert estimator.n_rounds_ == len(estimator.history_) >= 1


def test_a_corrupted_native_model_file_is_refused(small_table, tmp_path):
    from trainforge.errors import BundleError

    spec = build_spec(target="y", models=["lightgbm"])
    dataset = load_dataset(spec.data, "auto", seed=0, train=small_table)
    profile = Profile("binary", 240, 2, 2, seed=0)
    result = fit_candidate(
        Candidate("lightgbm", get_family("lightgbm"), {}),
        dataset,
        profile,
        primary_metric("auto", "binary"),
    )
    save_bundle(result.model, tmp_path / "model")
    native = tmp_path / "model/estimator/model.txt"
    native.write_text(native.read_text().replace("num_leaves", "num_leafs", 1))
    with pytest.raises(BundleError, match="does not match the sha256"):
        load_bundle(tmp_path / "model")


@pytest.mark.parametrize("library", ["XGBoost", "LightGBM", "CatBoost"])
def test_a_round_hook_stops_the_fit_keeping_the_best_round_so_far(library, tmp_path):
    X, y = _codes_table()
    make = getattr(boosting, f"{library}Classifier")
    seen = []

    def hook(round_, val_loss):  # what a search's pruning or deadline sees
        seen.append((round_, val_loss))
        return round_ == 25

    model = make(learning_rate=0.02, random_state=0).fit(X, y, callbacks=[hook])
    full = make(learning_rate=0.02, random_state=0).fit(X, y)
    assert [r for r, _ in seen] == list(range(1, 26)) and full.n_rounds_ > 25
    losses = [loss for _, loss in seen]
    assert model.n_rounds_ == int(np.argmin(losses)) + 1
    assert model.history_ == full.history_[: model.n_rounds_]  # the same rounds, cut short
    np.testing.assert_allclose([h["val_loss"] for h in model.history_], losses[: model.n_rounds_])
    model.save_files(tmp_path)  # the hooks belong to the search, not to the saved model
    assert "callbacks" not in json.loads((tmp_path / "estimator.json").read_text())["params"]
    loaded = type(model).load_files(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def _separable_with_a_rare_class(n: int, seed: int):
    """Four classes set exactly by two features, and a fifth class of 8 rows."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = np.where(X[:, 0] > 0.8, 1, 0) + np.where(X[:, 1] > 1.5, 2, 0)
    rare = rng.choice(n, 8, replace=False)
    y[rare] = 4
    X[rare, 2] = 5 + rng.random(8)
    return X, y


def test_a_rare_class_cannot_blow_up_lightgbms_multiclass_leaves(monkeypatch):
    from sklearn.metrics import log_loss

    X, y = _separable_with_a_rare_class(20_000, 0)
    X_test, y_test = _separable_with_a_rare_class(20_000, 1)
    losses = {}
    for cap in (0.0, boosting.MULTICLASS_MAX_STEP):  # 0: LightGBM's own default, no cap
        monkeypatch.setattr(boosting, "MULTICLASS_MAX_STEP", cap)
        model = boosting.LightGBMClassifier(random_state=0).fit(X, y)
        losses[cap] = log_loss(y_test, model.predict_proba(X_test), labels=model.classes_)
        later = model.booster_.dump_model()["tree_info"][len(model.classes_) :]
        leaves = _leaf_values([tree["tree_structure"] for tree in later])
        if cap:  # every leaf after the first round (which holds the class priors) within the cap
            assert np.abs(leaves).max() <= cap * model.learning_rate + 1e-9
    assert losses[0.0] > 0.05  # uncapped, leaves of the rare class jump and early stopping quits
    assert losses[boosting.MULTICLASS_MAX_STEP] < 0.02
    binary = boosting.LightGBMClassifier(random_state=0).fit(X, (y > 0).astype(int))
    assert "max_delta_step" not in binary._objective()  # two classes: no cap


def _leaf_values(nodes: list) -> list[float]:
    values = []
    while nodes:
        node = nodes.pop()
        if "leaf_value" in node:
            values.append(node["leaf_value"])
        else:
            nodes += [node["left_child"], node["right_child"]]
    return values


def _categorical_splits(model) -> list[str]:
    """The level sets of every categorical split in a LightGBM model's trees ("1||4")."""
    nodes = [t["tree_structure"] for t in model.booster_.dump_model()["tree_info"]]
    found = []
    while nodes:
        node = nodes.pop()
        if "split_feature" in node:
            if node["decision_type"] == "==":
                found.append(str(node["threshold"]))
            nodes += [node["left_child"], node["right_child"]]
    return found


def test_lightgbm_splits_a_feature_of_few_levels_one_level_against_the_rest(monkeypatch):
    """Six levels, two of them positive: LightGBM's own bound (4 bins, a missing-value bin
    included) sorts the levels and cuts them in groups; trainforge's splits one level off."""
    rng = np.random.default_rng(0)
    level = rng.integers(0, 6, 1200)
    X = np.column_stack([level, rng.normal(size=1200)]).astype(float)
    y = (np.isin(level, [1, 4]) ^ (rng.random(1200) < 0.1)).astype(int)
    splits = {}
    for levels in (3, boosting.ONE_VS_REST_LEVELS):  # 3: max_cat_to_onehot 4, LightGBM's own
        monkeypatch.setattr(boosting, "ONE_VS_REST_LEVELS", levels)
        model = boosting.LightGBMClassifier(random_state=0, categorical_features=[True, False])
        splits[levels] = _categorical_splits(model.fit(X, y))
    assert any("||" in s for s in splits[3])  # levels grouped, e.g. "1||4"
    assert splits[boosting.ONE_VS_REST_LEVELS]  # the feature is used, one level at a time
    assert not any("||" in s for s in splits[boosting.ONE_VS_REST_LEVELS])
