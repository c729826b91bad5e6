"""The built-in search spaces of the scikit-learn and MLP families, and the budget order.

A family may declare its own space in the registry (``Family.space``); these are used for the
built-in families that do not. Families without a space (the baseline, linear regression, and
the models that tune themselves by internal cross-validation: ridge, lasso, elastic_net) train
once with their initial settings. Portfolio entries are starting points that differ from the
initial settings in the directions that usually pay on tables (slower learning with more
leaves for boosting, more features per split for forests); the search then improves on them.
"""

from __future__ import annotations

import time

from trainforge.models.registry import Family
from trainforge.search.space import Choice, Float, Int, Space

# Under a budget the default candidates train in this order, so that a strong model exists
# early: the baseline (instant, always usable), then the families that usually win on tables.
# Families not named here follow in ladder order.
BUDGET_ORDER = (
    "baseline",
    "lightgbm",
    "hist_gradient_boosting",
    "logistic_regression",
    "ridge",
    "random_forest",
    "xgboost",
    "extra_trees",
    "catboost",
    "mlp",
)
# Default candidates left out under a budget: they rarely win on tables, and their time is
# better spent tuning the ones that do. Naming them in the spec's models trains them anyway.
BUDGET_LEAVES_OUT = ("knn", "svm", "linear_svm", "naive_bayes", "decision_tree")
# Neural families (those needing torch) join the default candidates from time limits of this
# many seconds: loading torch and the first epochs take a good part of a shorter budget.
NEURAL_MIN_SECONDS = 300
# Slower boosting libraries join from these limits; below them LightGBM takes their place.
FAMILY_MIN_SECONDS = {"xgboost": 180, "catboost": 300}


def _loop_hooks(report, at: float) -> list:
    """Pruning and deadline callbacks for estimators built on trainforge's training loop."""
    from trainforge.training.callbacks.deadline import Deadline
    from trainforge.training.callbacks.pruning import Pruning

    return ([Pruning(report)] if report is not None else []) + [Deadline(at)]


# A boosting fit reports its validation loss to the search every this many rounds (each report
# is a write to the study's SQLite file); the deadline is checked after every round.
REPORT_ROUNDS = 10


class RoundHook:
    """``hook(round, val_loss) -> stop?`` for the boosting estimators' ``callbacks``: prunes
    through ``report`` every REPORT_ROUNDS rounds and stops at the monotonic time ``at``."""

    def __init__(self, report, at: float):
        self.report, self.at = report, at

    def __call__(self, round_: int, val_loss: float) -> bool:
        if time.monotonic() >= self.at:
            return True
        return (
            self.report is not None
            and round_ % REPORT_ROUNDS == 0
            and bool(self.report(round_, val_loss))
        )


def _boosting_hooks(report, at: float) -> list:
    return [RoundHook(report, at)]


_BOOSTING_NOTE = "pruned by its validation loss every 10 rounds; stopped at the deadline"
_ROWS_AND_COLUMNS = (
    Float("subsample", 0.5, 1.0),
    Float("colsample_bytree", 0.4, 1.0),
)

_FOREST = (
    Choice("max_features", ["sqrt", "log2", 0.2, 0.35, 0.5, 0.75, 1.0]),
    Int("min_samples_leaf", 1, 32, log=True),
    Choice("criterion", ["gini", "entropy"], tasks="classification"),
)

SPACES: dict[str, Space] = {
    "hist_gradient_boosting": Space(
        params=(
            Float("learning_rate", 0.01, 0.3, log=True),
            Int("max_leaf_nodes", 8, 256, log=True),
            Int("min_samples_leaf", 2, 200, log=True),
            Float("l2_regularization", 1e-6, 10.0, log=True),
            Float("max_features", 0.3, 1.0),
        ),
        fixed={"max_iter": 1000},
        portfolio=(
            {
                "learning_rate": 0.05,
                "max_leaf_nodes": 63,
                "min_samples_leaf": 10,
                "l2_regularization": 0.1,
                "max_features": 0.8,
            },
            {
                "learning_rate": 0.03,
                "max_leaf_nodes": 127,
                "min_samples_leaf": 30,
                "l2_regularization": 1.0,
                "max_features": 0.5,
            },
            {
                "learning_rate": 0.1,
                "max_leaf_nodes": 15,
                "min_samples_leaf": 50,
                "l2_regularization": 1e-3,
                "max_features": 1.0,
            },
        ),
        note="early stopping as in the initial settings ends most fits well before 1,000 rounds",
    ),
    "lightgbm": Space(
        params=(
            Float("learning_rate", 0.01, 0.3, log=True),
            Int("num_leaves", 8, 256, log=True),
            Int("min_child_samples", 2, 100, log=True),
            *_ROWS_AND_COLUMNS,
            Float("reg_lambda", 1e-6, 10.0, log=True),
        ),
        fixed={"n_estimators": 3000},
        portfolio=(
            {
                "learning_rate": 0.03,
                "num_leaves": 63,
                "min_child_samples": 20,
                "subsample": 0.8,
                "colsample_bytree": 0.6,
                "reg_lambda": 1e-3,
            },
            {
                "learning_rate": 0.1,
                "num_leaves": 15,
                "min_child_samples": 40,
                "subsample": 0.9,
                "colsample_bytree": 0.9,
                "reg_lambda": 1.0,
            },
        ),
        hooks=_boosting_hooks,
        note=_BOOSTING_NOTE,
    ),
    "xgboost": Space(
        params=(
            Float("learning_rate", 0.01, 0.3, log=True),
            Int("max_depth", 3, 10),
            Float("min_child_weight", 0.01, 20.0, log=True),
            *_ROWS_AND_COLUMNS,
            Float("reg_lambda", 1e-3, 10.0, log=True),
        ),
        fixed={"n_estimators": 3000},
        portfolio=(
            {
                "learning_rate": 0.03,
                "max_depth": 8,
                "min_child_weight": 1.0,
                "subsample": 0.8,
                "colsample_bytree": 0.6,
                "reg_lambda": 1.0,
            },
        ),
        hooks=_boosting_hooks,
        note=_BOOSTING_NOTE,
    ),
    "catboost": Space(
        params=(
            Float("learning_rate", 0.02, 0.3, log=True),
            Int("depth", 4, 10),
            Float("l2_leaf_reg", 1.0, 30.0, log=True),
        ),
        fixed={"n_estimators": 2000},
        portfolio=({"learning_rate": 0.05, "depth": 8, "l2_leaf_reg": 3.0},),
        hooks=_boosting_hooks,
        note=_BOOSTING_NOTE,
    ),
    "random_forest": Space(
        params=_FOREST,
        portfolio=(
            {"max_features": 0.5, "min_samples_leaf": 2, "criterion": "entropy"},
            {"max_features": "sqrt", "min_samples_leaf": 1, "criterion": "gini"},
        ),
        note="n_estimators stays at its initial value",
    ),
    "extra_trees": Space(
        params=_FOREST,
        portfolio=(
            {"max_features": 0.75, "min_samples_leaf": 1, "criterion": "gini"},
            {"max_features": 0.5, "min_samples_leaf": 3, "criterion": "entropy"},
        ),
        note="as random_forest",
    ),
    "logistic_regression": Space(
        params=(Float("C", 1e-3, 100.0, log=True),),
        portfolio=({"C": 0.1}, {"C": 10.0}),
    ),
    "decision_tree": Space(
        params=(Int("max_depth", 2, 24), Int("min_samples_leaf", 1, 100, log=True)),
        portfolio=({"max_depth": 8, "min_samples_leaf": 20},),
    ),
    "knn": Space(
        params=(Int("n_neighbors", 3, 100, log=True), Choice("weights", ["uniform", "distance"])),
        portfolio=({"n_neighbors": 30, "weights": "distance"},),
    ),
    "svm": Space(
        params=(Float("C", 0.1, 100.0, log=True),),
        portfolio=({"C": 10.0},),
    ),
    "linear_svm": Space(
        params=(Float("C", 1e-3, 10.0, log=True),),
        portfolio=({"C": 0.1},),
    ),
    "naive_bayes": Space(params=(Float("var_smoothing", 1e-12, 1e-2, log=True),)),
    "mlp": Space(
        params=(
            Float("learning_rate", 1e-4, 1e-2, log=True),
            Choice(
                "hidden_sizes",
                {
                    "128": (128,),
                    "256-128": (256, 128),
                    "512-256": (512, 256),
                    "256-256-256": (256, 256, 256),
                },
            ),
            Float("dropout", 0.0, 0.5),
            Float("weight_decay", 1e-6, 1e-2, log=True),
            Choice("batch_size", [128, 256, 512]),
        ),
        portfolio=(
            {
                "learning_rate": 3e-3,
                "hidden_sizes": "512-256",
                "dropout": 0.2,
                "weight_decay": 1e-5,
                "batch_size": 512,
            },
        ),
        hooks=_loop_hooks,
        note="pruned by its per-epoch validation loss; stopped at the deadline",
    ),
}


def space_for(family: Family) -> Space | None:
    """The family's own space if it declares one, else the built-in one, else None."""
    return family.space if family.space is not None else SPACES.get(family.name)
