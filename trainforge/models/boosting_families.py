"""The gradient boosting libraries in the registry: XGBoost, LightGBM and CatBoost.

All three see category codes natively, early-stop on an internal 10% split of the training
rows, and record their thread count (``n_jobs``) in the candidate's settings, because results
can depend on it.
"""

from __future__ import annotations

from trainforge.models.classical import NATIVE
from trainforge.models.registry import BudgetRules, Family, Profile, register
from trainforge.search.hooks import BOOSTING_NOTE, boosting_hooks
from trainforge.search.portfolio import learned_cost
from trainforge.search.space import Float, Int, Space

_ROWS_AND_COLUMNS = (Float("subsample", 0.5, 1.0), Float("colsample_bytree", 0.4, 1.0))
SPACES = {
    "lightgbm": Space(
        params=(
            Float("learning_rate", 0.01, 0.3, log=True),
            Int("num_leaves", 8, 256, log=True),
            Int("min_child_samples", 2, 100, log=True),
            *_ROWS_AND_COLUMNS,
            Float("reg_lambda", 1e-6, 10.0, log=True),
        ),
        fixed={"n_estimators": 3000},
        hooks=boosting_hooks,
        note=BOOSTING_NOTE,
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
        hooks=boosting_hooks,
        note=BOOSTING_NOTE,
    ),
    "catboost": Space(
        params=(
            Float("learning_rate", 0.02, 0.3, log=True),
            Int("depth", 4, 10),
            Float("l2_leaf_reg", 1.0, 30.0, log=True),
        ),
        fixed={"n_estimators": 2000},
        hooks=boosting_hooks,
        note=BOOSTING_NOTE,
    ),
}

LARGE_ROWS = 100_000  # past this, a larger learning rate: fewer rounds for the same fit


def _common(profile: Profile) -> dict:
    settings = {}
    if profile.categorical_mask and any(profile.categorical_mask):
        settings["categorical_features"] = list(profile.categorical_mask)
    return settings


def _xgboost(profile: Profile) -> dict:
    rate = 0.1 if profile.n_rows > LARGE_ROWS else 0.05
    return {**_common(profile), "learning_rate": rate}


def _lightgbm(profile: Profile) -> dict:
    rate = 0.1 if profile.n_rows > LARGE_ROWS else 0.05
    leaf = 5 if profile.n_rows < 1_000 else 20
    return {**_common(profile), "learning_rate": rate, "min_child_samples": leaf}


_STOPPING = "early stopping after 50 rounds without improvement on an internal 10% split"
_CLASSES = "trainforge.models.boosting."

for name, label, initial, doc in [
    (
        "xgboost",
        "XGBoost",
        _xgboost,
        "up to 2,000 rounds, learning_rate=0.05 (0.1 past 100,000 rows), max_depth=6, "
        f"subsample=0.8, colsample_bytree=0.8, {_STOPPING}",
    ),
    (
        "lightgbm",
        "LightGBM",
        _lightgbm,
        "up to 2,000 rounds, learning_rate=0.05 (0.1 past 100,000 rows), num_leaves=31, "
        "min_child_samples=20 (5 below 1,000 rows), subsample=0.8, colsample_bytree=0.9, "
        "on 3+ classes a leaf steps at most 10 learning rates (max_delta_step), categories of "
        "at most 10 levels split one level against the rest (max_cat_to_onehot), "
        f"deterministic mode, {_STOPPING}",
    ),
    (
        "catboost",
        "CatBoost",
        _common,
        "up to 1,000 rounds, CatBoost's automatic learning rate, depth=6, l2_leaf_reg=3, "
        f"{_STOPPING}",
    ),
]:
    register(
        Family(
            name=name,
            summary=f"{label} gradient boosting with native categorical support.",
            classes={
                "classification": f"{_CLASSES}{label}Classifier",
                "regression": f"{_CLASSES}{label}Regressor",
            },
            prep=NATIVE,
            initial=initial,
            initial_doc=f"{doc}; categoricals handled natively; threads as for every fit "
            "(one below 20,000 rows, else the free cores)",
            ladder={"lightgbm": 82, "xgboost": 84, "catboost": 86}[name],
            requires=(name,),
            saves_itself=True,
            threaded=True,
            space=SPACES[name],
            budget=BudgetRules(
                rank={"lightgbm": 10, "xgboost": 50, "catboost": 70}[name], cost=learned_cost(name)
            ),
        )
    )
