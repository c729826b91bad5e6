"""Your own scikit-learn-compatible estimators as candidates (trainforge.models.external): named
by import path in a spec or given as objects, they train with the preprocessing a linear model
gets, rank in the leaderboard, and a third-party package's types load only when trusted."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import NearestCentroid

import trainforge
from conftest import DATA, run_cli
from trainforge.errors import BundleError, SpecError

pytest.importorskip("imblearn", reason="imbalanced-learn is a dependency")
CREDIT = DATA / "tabular" / "credit_g.tsv.gz"
FOREST = "imblearn.ensemble.BalancedRandomForestClassifier"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    models = [
        "logistic_regression",
        {"estimator": FOREST, "n_estimators": 30},  # a third-party package's estimator
        {"estimator": "sklearn.svm.NuSVC", "name": "nu_svm", "nu": 0.4},
        NearestCentroid(),  # an object, in Python
    ]
    return trainforge.train(
        data=str(CREDIT), target="target", models=models, ensemble=False, tracking=False,
        quiet=True, output=tmp_path_factory.mktemp("own"),
    )  # fmt: skip


def test_estimators_by_path_and_object_train_and_rank(run):
    board = run.leaderboard.set_index("candidate")
    names = {"logistic_regression", "balancedrandomforestclassifier", "nu_svm", "nearestcentroid"}
    assert set(board.index) == names
    assert (board["status"] == "ok").all()
    assert (board["accuracy"] > 0.7).all()  # each learned the table, on the same rows
    assert board["roc_auc"].drop("nu_svm").gt(0.75).all()  # NuSVC: no probabilities here
    spec = (run.path / "spec.yaml").read_text()
    assert "estimator: sklearn.neighbors._nearest_centroid.NearestCentroid" in spec


def test_a_third_party_estimator_loads_only_when_trusted(run, tmp_path):
    folder = run.path / "candidates" / "balancedrandomforestclassifier" / "model"
    with pytest.raises(BundleError) as refused:
        trainforge.load(folder)
    message = str(refused.value)
    assert "imblearn.ensemble._forest.BalancedRandomForestClassifier" in message
    assert "trust=['imblearn']" in message and "\n" not in message
    rows = pd.read_csv(CREDIT, sep="\t").drop(columns="target").head(200)
    trusted = trainforge.load(folder, trust=["imblearn"]).predict_proba(rows)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    done = run_cli("predict", folder, tmp_path / "rows.csv", cwd=tmp_path)
    assert done.code == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "--trust imblearn" in done.stderr
    done = run_cli("predict", folder, tmp_path / "rows.csv", "--trust", "imblearn", cwd=tmp_path)
    assert done.code == 0, done.stderr
    fresh = pd.read_csv(io.StringIO(done.stdout))
    columns = [c for c in fresh.columns if c.startswith("proba_")]
    assert np.allclose(fresh[columns].to_numpy(), trusted.to_numpy(), atol=1e-12)


def test_scikit_learn_estimators_need_no_trust(run):
    model = trainforge.load(run.path / "candidates" / "nu_svm" / "model")
    assert len(model.predict(pd.read_csv(CREDIT, sep="\t").head(5))) == 5


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"estimator": "nosuch.module.Model"}, "cannot import nosuch.module.Model"),
        ({"estimator": "os.path.join"}, "is not a scikit-learn estimator class"),
        ({"estimator": "sklearn.cluster.KMeans"}, "neither a classifier nor a regressor"),
        ({"estimator": "sklearn.svm.NuSVC", "nuu": 0.3}, "unknown parameter for nusvc"),
        ({"estimator": "not a path"}, "expected an import path"),
    ],
)
def test_bad_estimator_entries_are_one_line_errors(entry, message, tmp_path):
    with pytest.raises(SpecError, match=message) as refused:
        trainforge.train(data=str(CREDIT), target="target", models=[entry], output=tmp_path)
    assert "\n" not in str(refused.value)
    assert not any(tmp_path.iterdir())  # no run folder was started


def test_an_object_with_an_object_parameter_is_refused(tmp_path):
    from sklearn.ensemble import BaggingClassifier
    from sklearn.tree import DecisionTreeClassifier

    with pytest.raises(SpecError, match="cannot be written to the run's spec.yaml"):
        trainforge.train(
            data=str(CREDIT), target="target", output=tmp_path,
            models=[BaggingClassifier(estimator=DecisionTreeClassifier())],
        )  # fmt: skip
