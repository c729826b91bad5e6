"""The gradient boosting libraries in the registry: XGBoost, LightGBM and CatBoost.

All three see category codes natively, early-stop on an internal 10% split of the training
rows, and record their thread count (``n_jobs``) in the candidate's settings, because results
can depend on it.
"""

from __future__ import annotations

import os

from trainforge.models.classical import NATIVE
from trainforge.models.registry import Family, Profile, register

LARGE_ROWS = 100_000  # past this, a larger learning rate: fewer rounds for the same fit
# Below this many rows one thread is faster: per-round thread synchronisation costs more than
# it saves (XGBoost on 240 rows: 3.4 s on one thread, 120 s on two on a busy 2-core machine).
THREADED_ROWS = 20_000


def _common(profile: Profile) -> dict:
    threads = 1 if profile.n_rows < THREADED_ROWS else os.cpu_count() or 1
    settings = {"n_jobs": threads}
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
            initial_doc=f"{doc}; categoricals handled natively; one thread below 20,000 rows, "
            "all cores above",
            ladder={"lightgbm": 82, "xgboost": 84, "catboost": 86}[name],
            requires=(name,),
        )
    )
