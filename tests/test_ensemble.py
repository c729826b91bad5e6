"""Greedy ensemble selection: it helps where members complement each other, it does not flatter
its own score, and its saved bundle holds its members."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import trainforge
from trainforge.bundle import load_bundle
from trainforge.candidates import CandidateResult, Predictions
from trainforge.ensemble import build_ensemble, select
from trainforge.metrics import METRICS


def _result(name: str, y: np.ndarray, p1: np.ndarray, roc_auc: float) -> CandidateResult:
    proba = np.column_stack([1 - p1, p1])
    result = CandidateResult(name, name, {}, metrics={"roc_auc": roc_auc, "accuracy": 0.0})
    result.valid = Predictions(y, proba.argmax(1), proba)
    result.model = SimpleNamespace(schema=None)  # only the ensemble's schema is read from it
    return result


def test_selection_mixes_complementary_members():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    signal_a, signal_b = rng.normal(size=2000), rng.normal(size=2000)
    # each member sees a different half of the signal: their average ranks better than either
    logit = y * 2.0 - 1.0
    a = 1 / (1 + np.exp(-(logit + 1.5 * signal_a)))
    b = 1 / (1 + np.exp(-(logit + 1.5 * signal_b)))
    noise = rng.uniform(size=2000)
    outputs = {
        name: np.column_stack([1 - p, p]) for name, p in {"a": a, "b": b, "noise": noise}.items()
    }
    weights = select(outputs, y, METRICS["roc_auc"], "binary")
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights.get("a", 0) > 0.25 and weights.get("b", 0) > 0.25
    assert weights.get("noise", 0) <= 0.1
    mixed = sum(w * outputs[n] for n, w in weights.items())
    assert _fast_scores_match_sklearn(y, outputs["a"])
    auc = METRICS["roc_auc"].compute
    assert auc(y, None, mixed) > max(auc(y, None, outputs["a"]), auc(y, None, outputs["b"])) + 0.02


def test_the_ensembles_own_score_is_cross_fitted_not_chosen_on_the_rows_it_scores():
    """Twelve members of pure noise: weights chosen on all rows find a lucky mix (AUC well above
    0.5 on those rows), while the cross-fitted score the leaderboard shows stays near 0.5."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    members = [
        _result(f"m{i}", y, rng.uniform(size=300), roc_auc=0.5 + i * 1e-3) for i in range(12)
    ]
    built = build_ensemble(members, METRICS["roc_auc"], "binary", 0, lambda r: r.model)
    weights = built.settings["weights"]
    in_sample = sum(
        w * next(m for m in members if m.name == n).valid.proba for n, w in weights.items()
    )
    flattering = METRICS["roc_auc"].compute(y, None, in_sample)
    print(f"in-sample {flattering:.4f}, cross-fitted {built.metrics['roc_auc']:.4f}")
    assert flattering > 0.57
    assert built.metrics["roc_auc"] < 0.54
    assert built.metrics["roc_auc"] < flattering - 0.04


def test_an_ensemble_candidate_in_a_run_saves_its_members_and_predicts_like_before(
    tmp_path, small_table
):
    result = trainforge.train(
        data=small_table,
        target="y",
        models=["logistic_regression", "naive_bayes", "lightgbm"],
        output=tmp_path,
        seed=2,
    )
    board = result.leaderboard
    assert "ensemble" in set(board["candidate"])
    row = board.set_index("candidate").loc["ensemble"]
    assert row["status"] == "ok" and 0.5 < row["roc_auc"] <= 1.0
    folder = result.path / "candidates/ensemble"
    info = json.loads((folder / "model/bundle.json").read_text())
    assert info["format"] == "trainforge.ensemble/1"
    assert sum(info["weights"].values()) == pytest.approx(1.0)
    for name in info["weights"]:
        assert (folder / "model/members" / name / "bundle.json").is_file()
    recorded = json.loads((folder / "metrics.json").read_text())
    assert recorded["settings"]["weights"] == info["weights"]
    assert pd.read_parquet(folder / "predictions.parquet").shape[0] == 60  # 20% of 300 rows

    model = load_bundle(folder / "model")
    rows = small_table.drop(columns="y")
    proba = model.predict_proba(rows)
    members = {n: load_bundle(folder / "model/members" / n) for n in info["weights"]}
    expected = sum(
        w * members[n].predict_proba(rows).to_numpy() for n, w in info["weights"].items()
    )
    np.testing.assert_allclose(proba.to_numpy(), expected, rtol=1e-12)
    assert set(model.predict(rows)) <= {"yes", "no"}
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["threads"]["lightgbm"] == 1


def test_a_resumed_run_rebuilds_the_same_ensemble_from_the_saved_predictions(tmp_path, small_csv):
    from trainforge.run import resume

    first = trainforge.train(
        data=small_csv, target="y", models=["logistic_regression", "lightgbm"], output=tmp_path
    )
    folder = first.path / "candidates/ensemble"
    weights = json.loads((folder / "metrics.json").read_text())["settings"]["weights"]
    import shutil

    shutil.rmtree(folder)  # as if the run had been killed before the ensemble
    manifest = json.loads((first.path / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    (first.path / "manifest.json").write_text(json.dumps(manifest))
    again = resume(first.path)
    assert json.loads((folder / "metrics.json").read_text())["settings"]["weights"] == weights
    pd.testing.assert_frame_equal(again.leaderboard, first.leaderboard)


def test_switching_the_ensemble_off(tmp_path, small_table):
    result = trainforge.train(
        data=small_table,
        target="y",
        models=["logistic_regression", "naive_bayes"],
        output=tmp_path,
        ensemble=False,
    )
    assert "ensemble" not in set(result.leaderboard["candidate"])


def _fast_scores_match_sklearn(y, output) -> bool:
    from trainforge.ensemble import scorer

    for name in ("roc_auc", "log_loss"):
        fast = scorer(y, METRICS[name], "binary")(output)
        assert fast == pytest.approx(METRICS[name].compute(y, None, output), rel=1e-9), name
    return True


def test_cross_validation_adds_a_stacked_candidate_that_saves_and_reloads(tmp_path, small_table):
    result = trainforge.train(
        data=small_table,
        target="y",
        models=["logistic_regression", "naive_bayes", "lightgbm"],
        output=tmp_path,
        folds=3,
    )
    board = result.leaderboard.set_index("candidate")
    assert {"ensemble", "stacking"} <= set(board.index)
    assert 0.5 < board.loc["stacking", "roc_auc"] <= 1.0
    folder = result.path / "candidates/stacking/model"
    info = json.loads((folder / "bundle.json").read_text())
    assert info["family"] == "stacking" and len(info["meta_sha256"]) == 64
    model = load_bundle(folder)
    rows = small_table.drop(columns="y")
    members = {n: load_bundle(folder / "members" / n) for n in info["weights"]}
    logp = [
        np.log(np.clip(m.predict_proba(rows).to_numpy()[:, 1:], 1e-6, 1)) for m in members.values()
    ]
    expected = model.meta.predict_proba(np.hstack(logp))
    np.testing.assert_allclose(model.predict_proba(rows).to_numpy(), expected, rtol=1e-12)
    # a changed meta-learner file is refused
    (folder / "meta.skops").write_bytes((folder / "meta.skops").read_bytes() + b"x")
    from trainforge.errors import BundleError

    with pytest.raises(BundleError, match="meta.skops is missing or changed"):
        load_bundle(folder)


def test_the_stacked_models_meta_learner_fits_on_one_thread_on_a_small_table(monkeypatch):
    """BLAS threads are held for the meta-learner as for a candidate: a logistic regression on
    11,643 rows took 3.6 s on 2 threads and 0.7 s on one."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_info

    import trainforge.ensemble as ensemble

    seen = []

    class Recording(LogisticRegression):
        def fit(self, X, y):
            seen.append(max((p["num_threads"] for p in threadpool_info()), default=1))
            return super().fit(X, y)

    monkeypatch.setattr(ensemble, "_meta_learner", lambda task: Recording(max_iter=2000))
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    members = [_result(f"m{i}", y, rng.uniform(size=400), roc_auc=0.5) for i in range(3)]
    built = ensemble.build_stack(members, METRICS["roc_auc"], "binary", 0, lambda r: r.model)
    assert built is not None and len(seen) == 3  # two halves, then all rows
    assert seen == [1, 1, 1]
