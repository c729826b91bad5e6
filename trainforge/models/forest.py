"""scikit-learn's random forests and extra trees, saved compactly without pickle.

Through skops, a fitted forest is saved as one JSON entry per tree object and two arrays per
tree: a bagged candidate of five fold forests of 200 trees is 2,000 arrays, and loading it cost
about a second of skops' type audit, which made ``trainforge predict`` on a combined model of a
few forests take longer than the forests took to fit. These subclasses save every tree's node
and value arrays as concatenated arrays in one ``.npz`` (read with ``allow_pickle=False``), and
the forest with one tree's settings (its ``tree_`` left out) through skops. Loading rebuilds each
tree from that tree's settings, its own ``random_state`` and its arrays; scikit-learn's ``Tree``
checks the arrays' layout, and trainforge.bundle_checks checks every node before a prediction
walks it. Nothing else changes: fitting and predicting are scikit-learn's.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
from sklearn import ensemble

from trainforge.models import compact

# the classes here, each named after the scikit-learn class it extends
CLASSES = (
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
)


class _Compact:
    def save_files(self, folder: Path) -> list[str]:
        states = [tree.tree_.__getstate__() for tree in self.estimators_]
        _, (n_features, n_classes, n_outputs) = self.estimators_[0].tree_.__reduce__()[:2]
        settings = copy.copy(self.estimators_[0])  # what every tree of the forest shares
        del settings.tree_
        rest = copy.copy(self)
        rest.estimators_ = [settings]
        return compact.write(
            folder,
            rest,
            shape=np.array([n_features, n_outputs], dtype=np.int64),
            n_classes=np.asarray(n_classes, dtype=np.int64),
            nodes=np.concatenate([state["nodes"] for state in states]),
            values=np.concatenate([state["values"] for state in states]),
            node_counts=np.array([state["node_count"] for state in states], dtype=np.int64),
            max_depths=np.array([state["max_depth"] for state in states], dtype=np.int64),
            random_states=np.array([tree.random_state for tree in self.estimators_]),
        )

    @classmethod
    def load_files(cls, folder: Path):
        from sklearn.tree import BaseDecisionTree
        from sklearn.tree._tree import Tree

        estimator, saved = compact.read(folder, cls)
        trees_file = folder / compact.TREES_FILE
        if len(estimator.estimators_) != 1 or not isinstance(
            estimator.estimators_[0], BaseDecisionTree
        ):
            raise TypeError(f"{folder / compact.ESTIMATOR_FILE} holds no tree settings to fill")
        settings = estimator.estimators_[0]
        n_features, n_outputs = (int(v) for v in saved["shape"])
        n_classes = saved["n_classes"].astype(np.intp)
        counts = saved["node_counts"]
        cuts = np.cumsum(counts)[:-1]
        nodes, values = np.split(saved["nodes"], cuts), np.split(saved["values"], cuts)
        depths, seeds = saved["max_depths"], saved["random_states"]
        if not len(counts) == len(depths) == len(seeds) == estimator.n_estimators:
            raise ValueError(
                f"{trees_file} holds {len(counts)} trees, not {estimator.n_estimators}"
            )
        sizes = counts.tolist()
        if min(sizes) < 1 or not [len(n) for n in nodes] == [len(v) for v in values] == sizes:
            raise ValueError(f"{trees_file}: its node counts do not match its arrays")
        classes = np.atleast_1d(getattr(estimator, "n_classes_", np.ones(n_outputs)))
        if (n_features, n_outputs) != (estimator.n_features_in_, estimator.n_outputs_) or not (
            np.array_equal(classes, n_classes)
        ):
            raise ValueError(f"{trees_file}: its trees do not fit the forest's shape")
        trees = []
        for node, value, count, depth, seed in zip(nodes, values, counts, depths, seeds):
            tree = Tree(n_features, n_classes, n_outputs)
            state = {"max_depth": int(depth), "node_count": int(count)}
            tree.__setstate__({**state, "nodes": node, "values": value})
            fitted = copy.copy(settings)
            fitted.random_state = int(seed)
            fitted.tree_ = tree
            trees.append(fitted)
        estimator.estimators_ = trees
        return estimator


class RandomForestClassifier(_Compact, ensemble.RandomForestClassifier):
    """RandomForestClassifier that saves itself compactly (see the module doc)."""


class RandomForestRegressor(_Compact, ensemble.RandomForestRegressor):
    """RandomForestRegressor that saves itself compactly (see the module doc)."""


class ExtraTreesClassifier(_Compact, ensemble.ExtraTreesClassifier):
    """ExtraTreesClassifier that saves itself compactly (see the module doc)."""


class ExtraTreesRegressor(_Compact, ensemble.ExtraTreesRegressor):
    """ExtraTreesRegressor that saves itself compactly (see the module doc)."""
