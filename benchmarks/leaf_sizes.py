"""How leaf size changes forest and tree scores: the measurements behind the initial settings.

    .venv/bin/python benchmarks/leaf_sizes.py

Prints, per dataset, the validation score (ROC AUC for binary tasks, minus log loss for
multiclass; higher is better) on trainforge's seeded 20% holdout with its tree preprocessing,
for random forests and extra trees (200 trees) and a single decision tree, by min_samples_leaf.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.tree import DecisionTreeClassifier

from trainforge.data.dataset import load_dataset
from trainforge.data.preprocess import build_preprocessor
from trainforge.models.classical import TREES
from trainforge.spec import build_spec

ROOT = Path(__file__).resolve().parents[1]
TABULAR = ROOT.parent / "shared" / "data" / "tabular"
DATASETS = [
    (ROOT / "examples/data/adult_sample.csv.gz", "income >50K"),
    (TABULAR / "credit_g.tsv.gz", "target"),
    (TABULAR / "lending_club.csv", "Class"),
    (TABULAR / "car.tsv.gz", "target"),
    (TABULAR / "segment.tsv.gz", "target"),
]
MODELS = [
    ("forest", RandomForestClassifier, [1, 3, 5, 10]),
    ("extra trees", ExtraTreesClassifier, [1, 3, 5, 10]),
    ("tree", DecisionTreeClassifier, [1, 5, 10, 20, 50]),
]


def score(model, X_valid, y_valid) -> float:
    proba = model.predict_proba(X_valid)
    if proba.shape[1] == 2:
        return roc_auc_score(y_valid, proba[:, 1])
    return -log_loss(y_valid, proba, labels=range(proba.shape[1]))


def measure(path: Path, target: str) -> str:
    dataset = load_dataset(build_spec(train=path, target=target).data, "auto", seed=0)
    fold = dataset.folds[0]
    features, _ = build_preprocessor(dataset.schema, TREES)
    X_train = features.fit_transform(fold.X_train, fold.y_train)
    X_valid = features.transform(fold.X_valid)
    cells = []
    for label, cls, leaves in MODELS:
        extra = {"n_estimators": 200, "n_jobs": -1} if cls is not DecisionTreeClassifier else {}
        for leaf in leaves:
            model = cls(min_samples_leaf=leaf, random_state=0, **extra).fit(X_train, fold.y_train)
            cells.append(f"{label} {leaf}: {score(model, X_valid, fold.y_valid):.3f}")
    return f"{path.name} ({len(fold.y_train):,} rows): " + ", ".join(cells)


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    for path, target in DATASETS:
        print(measure(path, target))
