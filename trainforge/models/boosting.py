"""XGBoost, LightGBM and CatBoost as scikit-learn estimators that early-stop and save natively.

Each estimator holds out a seeded, stratified share of its training rows (``validation_fraction``)
and stops adding trees once the validation loss has not improved for ``early_stopping_rounds``;
the trees up to the best round are kept (``n_rounds_``) and the per-round losses are in
``history_``. The run's own validation split is never seen in fit, so it stays an honest score
and the ensemble can be chosen on it.

Category codes (from trainforge's native preprocessing, NaN for missing or unseen) are passed to
each library's own categorical handling when ``categorical_features`` marks them. A fitted model
saves itself in its library's format (``save_files``) and loads without pickle (``load_files``).

``fit`` takes two listeners besides ``sample_weight``: ``callbacks`` (a list of
``hook(round, val_loss) -> stop?`` functions, called after every round) lets a search prune a
fit or stop it at a deadline, the best round so far kept; ``on_round(round, logs)``, called
after every round with ``{"round", "val_loss", "max_rounds", "patience"}``, lets a display show
the rounds as they pass. They are not part of the model (not parameters, not saved); a fit
with ``on_round`` grows the same trees as one without.
"""

from __future__ import annotations

import json
import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

_COMMON = {
    "n_estimators": [Interval(Integral, 1, None, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither"), None],
    "early_stopping_rounds": [Interval(Integral, 1, None, closed="left")],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "categorical_features": [list, None],
    "random_state": ["random_state"],
    "n_jobs": [Interval(Integral, -1, None, closed="left"), None],
}


class _Boosted(BaseEstimator):
    """Shared fitting, prediction and saving; subclasses talk to their library."""

    _parameter_constraints = _COMMON
    _task = "classification"  # or "regression"

    FIT_RUNTIME = frozenset({"callbacks", "on_round"})

    def fit(self, X, y, sample_weight=None, *, callbacks=None, on_round=None):
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_all_finite="allow-nan")
        if len(X) < 2:
            raise ValueError(f"boosting needs at least 2 rows to train, got {len(X)} sample")
        if self._task == "classification":
            check_classification_targets(y)
            self.classes_, y = np.unique(y, return_inverse=True)
            if len(self.classes_) < 2:
                raise ValueError("the target has 1 class; a classifier needs at least 2")
        else:
            y = np.asarray(y, dtype=np.float64)
        weight = None
        if sample_weight is not None:
            weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
            if not weight.any():
                raise ValueError("every sample weight is zero: nothing to learn from")
        train, valid = _split(y, self._task, self.validation_fraction, self._seed())
        self.n_jobs_ = _threads(self.n_jobs)
        self.booster_, self.history_ = self._train(
            (X[train], y[train], None if weight is None else weight[train]),
            (X[valid], y[valid], None if weight is None else weight[valid]),
            self._round_watch(callbacks, on_round),
        )
        self.n_rounds_ = len(self.history_)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values go down a learned branch
        return tags

    def _seed(self) -> int:
        rs = self.random_state
        if rs is None or isinstance(rs, Integral):
            return int(rs or 0)
        return int(rs.randint(2**31 - 1))

    def _round_watch(self, callbacks, on_round):
        """``watch(round, val_loss) -> stop?`` for the library's per-round hook: tells
        ``on_round`` of the round and calls every hook in ``callbacks``. None when nobody
        listens, so the library runs without a hook."""
        from trainforge.training.runtime import listed

        callbacks = listed(callbacks)
        if not callbacks and on_round is None:
            return None
        if on_round is not None and not callable(on_round):
            raise TypeError(f"on_round must be callable, got {on_round!r}")

        def watch(round_: int, val_loss: float) -> bool:
            if on_round is not None:
                logs = {"round": round_, "val_loss": float(val_loss)}
                logs.update(max_rounds=self.n_estimators, patience=self.early_stopping_rounds)
                on_round(round_, logs)
            stops = [hook(round_, val_loss) for hook in callbacks]
            return any(stops)

        return watch

    def _n_outputs(self) -> int:
        return len(self.classes_) if self._task == "classification" else 1

    def _categorical(self, n_columns: int) -> list[int]:
        mask = self.categorical_features or []
        return [i for i, flag in enumerate(mask[:n_columns]) if flag]

    def _raw(self, X) -> np.ndarray:
        check_is_fitted(self, "booster_")
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        return self._predict(X)

    # -- saving without pickle -------------------------------------------------------------

    def save_files(self, folder: Path) -> list[str]:
        check_is_fitted(self, "booster_")
        folder.mkdir(parents=True, exist_ok=True)
        self._save_booster(folder / self._MODEL_FILE)
        fitted = {
            "n_features_in_": self.n_features_in_,
            "n_rounds_": self.n_rounds_,
            "n_jobs_": self.n_jobs_,
            "history_": self.history_,
        }
        if self._task == "classification":
            fitted["classes_"] = self.classes_.tolist()
        from trainforge.models.saved import json_ready

        params = {k: json_ready(v) for k, v in self.get_params().items()}
        params["random_state"] = self._seed()
        (folder / "estimator.json").write_text(
            json.dumps({"params": params, "fitted": fitted}, indent=1)
        )
        return ["estimator.json", self._MODEL_FILE]

    @classmethod
    def load_files(cls, folder: Path):
        from trainforge.models.saved import as_array, read_saved

        fitted = ("n_features_in_", "n_rounds_", "n_jobs_", "history_", "classes_")
        saved = read_saved(folder, cls, fitted)
        estimator = cls(**saved["params"])
        estimator._validate_params()  # types and ranges, as a fit would check them
        for key, value in saved["fitted"].items():
            setattr(estimator, key, as_array(key, value))
        estimator.booster_ = estimator._load_booster(folder / cls._MODEL_FILE)
        return estimator


class _Classifier(ClassifierMixin):
    _task = "classification"

    def predict_proba(self, X) -> np.ndarray:
        raw = self._raw(X)
        if raw.ndim == 1:  # binary: the probability of class 1
            raw = np.column_stack([1.0 - raw, raw])
        return raw

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)  # checks that the model is fitted
        return self.classes_[proba.argmax(axis=1)]


class _Regressor(RegressorMixin):
    _task = "regression"

    def predict(self, X) -> np.ndarray:
        return np.asarray(self._raw(X), dtype=np.float64).reshape(-1)


# -- XGBoost -------------------------------------------------------------------------------


class _XGBoost(_Boosted):
    _MODEL_FILE = "model.ubj"
    _parameter_constraints = {
        **_COMMON,
        "max_depth": [Interval(Integral, 1, None, closed="left")],
        "subsample": [Interval(Real, 0, 1, closed="right")],
        "colsample_bytree": [Interval(Real, 0, 1, closed="right")],
        "min_child_weight": [Interval(Real, 0, None, closed="left")],
        "reg_lambda": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_estimators=2000,
        learning_rate=0.05,
        max_depth=6,
        subsample=0.8,
        colsample_bytree=0.8,
        min_child_weight=1.0,
        reg_lambda=1.0,
        early_stopping_rounds=50,
        validation_fraction=0.1,
        categorical_features=None,
        random_state=None,
        n_jobs=None,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.categorical_features = categorical_features
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _objective(self) -> dict:
        if self._task == "regression":
            return {"objective": "reg:squarederror", "eval_metric": "rmse"}
        if len(self.classes_) == 2:
            return {"objective": "binary:logistic", "eval_metric": "logloss"}
        k = len(self.classes_)
        return {"objective": "multi:softprob", "num_class": k, "eval_metric": "mlogloss"}

    def _matrix(self, X, y=None, weight=None):
        import xgboost as xgb

        cats = set(self._categorical(X.shape[1]))
        types = ["c" if i in cats else "q" for i in range(X.shape[1])]
        return xgb.DMatrix(
            X,
            label=y,
            weight=weight,
            feature_types=types,
            enable_categorical=bool(cats),
            nthread=self.n_jobs_,
        )

    def _train(self, train, valid, watch):
        import xgboost as xgb

        params = {
            **self._objective(),
            "eta": self.learning_rate or 0.3,
            "max_depth": self.max_depth,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "lambda": self.reg_lambda,
            "tree_method": "hist",
            "seed": self._seed(),
            "nthread": self.n_jobs_,
        }
        dtrain, dvalid = self._matrix(*train), self._matrix(*valid)
        evals: dict = {}
        booster = xgb.train(
            params,
            dtrain,
            num_boost_round=self.n_estimators,
            evals=[(dtrain, "train"), (dvalid, "valid")],
            evals_result=evals,
            verbose_eval=False,
            # early stopping first: XGBoost skips the callbacks after one that says stop
            callbacks=[
                xgb.callback.EarlyStopping(rounds=self.early_stopping_rounds),
                *([_xgboost_hook(watch)] if watch else []),
            ],
        )
        best = booster.best_iteration + 1
        return booster[:best], _history(evals["train"], evals["valid"], best)

    def _predict(self, X) -> np.ndarray:
        return self.booster_.predict(self._matrix(X))

    def _save_booster(self, path: Path) -> None:
        self.booster_.save_model(str(path))

    def _load_booster(self, path: Path):
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(path))
        booster.set_param({"nthread": self.n_jobs_})
        return booster


class XGBoostClassifier(_Classifier, _XGBoost):
    """XGBoost (hist trees) with early stopping on an internal split; see the module doc."""


class XGBoostRegressor(_Regressor, _XGBoost):
    """XGBoost (hist trees) with early stopping on an internal split; see the module doc."""


# -- LightGBM ------------------------------------------------------------------------------


# A multiclass LightGBM leaf moves a class's score by at most this many learning rates. A class
# with a handful of rows has gradients near zero and hessians nearer zero once it is predicted
# unlikely, and an uncapped leaf (-gradient / hessian) then jumps by tens of log-odds: on shuttle
# (7 classes, two of them 7 and 10 of 43,500 rows) 5-fold log loss was 0.104 with the defaults
# and 0.0011 with the cap; on segment, car, chile_vote and covid_test_result the cap moved it by
# at most 1.4% either way (benchmarks/RESULTS.md, "LightGBM on multiclass tables: a cap on leaf
# steps").
MULTICLASS_MAX_STEP = 10.0
# A categorical feature of at most this many levels is split one level against the rest;
# LightGBM otherwise sorts the levels by their gradients and cuts that order, keeping levels of
# fewer than 100 rows out (min_data_per_group). LightGBM's own bound (max_cat_to_onehot, 4)
# counts a bin for missing values too, so it took the sorted cut from four levels on. On the
# portfolio tables with such columns, the candidate's 5-fold scores were better on 19 of 33 and
# worse on 6 (benchmarks/RESULTS.md, "LightGBM: one level against the rest"); on car, LightGBM
# fitted directly went from 0.081 to 0.055 log loss.
ONE_VS_REST_LEVELS = 10


class _LightGBM(_Boosted):
    _MODEL_FILE = "model.txt"
    _parameter_constraints = {
        **_COMMON,
        "num_leaves": [Interval(Integral, 2, None, closed="left")],
        "min_child_samples": [Interval(Integral, 1, None, closed="left")],
        "subsample": [Interval(Real, 0, 1, closed="right")],
        "colsample_bytree": [Interval(Real, 0, 1, closed="right")],
        "reg_lambda": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_estimators=2000,
        learning_rate=0.05,
        num_leaves=31,
        min_child_samples=20,
        subsample=0.8,
        colsample_bytree=0.9,
        reg_lambda=0.0,
        early_stopping_rounds=50,
        validation_fraction=0.1,
        categorical_features=None,
        random_state=None,
        n_jobs=None,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.categorical_features = categorical_features
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _objective(self) -> dict:
        if self._task == "regression":
            return {"objective": "regression", "metric": "rmse"}
        if len(self.classes_) == 2:
            return {"objective": "binary", "metric": "binary_logloss"}
        k = len(self.classes_)
        objective = {"objective": "multiclass", "num_class": k, "metric": "multi_logloss"}
        return {**objective, "max_delta_step": MULTICLASS_MAX_STEP}

    def _train(self, train, valid, watch):
        import lightgbm as lgb

        params = {
            **self._objective(),
            "learning_rate": self.learning_rate or 0.1,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1 if self.subsample < 1 else 0,
            "feature_fraction": self.colsample_bytree,
            "lambda_l2": self.reg_lambda,
            "max_cat_to_onehot": ONE_VS_REST_LEVELS + 1,
            "seed": self._seed(),
            "num_threads": self.n_jobs_,
            "deterministic": True,  # with force_row_wise: the same trees on every run
            "force_row_wise": True,
            "verbose": -1,
        }
        cats = self._categorical(train[0].shape[1]) or "auto"
        dtrain = lgb.Dataset(train[0], train[1], weight=train[2], categorical_feature=cats)
        dvalid = lgb.Dataset(valid[0], valid[1], weight=valid[2], reference=dtrain)
        evals: dict = {}
        booster = lgb.train(
            params,
            dtrain,
            num_boost_round=self.n_estimators,
            valid_sets=[dtrain, dvalid],
            valid_names=["train", "valid"],
            callbacks=[
                lgb.early_stopping(self.early_stopping_rounds, verbose=False),
                lgb.record_evaluation(evals),
                *([_lightgbm_hook(watch)] if watch else []),
            ],
        )
        best = booster.best_iteration or booster.current_iteration()
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
        return booster, _history(evals["train"], evals["valid"], best)

    def _predict(self, X) -> np.ndarray:
        return self.booster_.predict(X, num_threads=self.n_jobs_)

    def _save_booster(self, path: Path) -> None:
        self.booster_.save_model(str(path))

    def _load_booster(self, path: Path):
        import lightgbm as lgb

        return lgb.Booster(model_file=str(path))


class LightGBMClassifier(_Classifier, _LightGBM):
    """LightGBM in deterministic mode with early stopping on an internal split."""


class LightGBMRegressor(_Regressor, _LightGBM):
    """LightGBM in deterministic mode with early stopping on an internal split."""


# -- CatBoost ------------------------------------------------------------------------------


class _CatBoost(_Boosted):
    _MODEL_FILE = "model.cbm"
    _parameter_constraints = {
        **_COMMON,
        "depth": [Interval(Integral, 1, 16, closed="both")],
        "l2_leaf_reg": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_estimators=1000,
        learning_rate=None,
        depth=6,
        l2_leaf_reg=3.0,
        early_stopping_rounds=50,
        validation_fraction=0.1,
        categorical_features=None,
        random_state=None,
        n_jobs=None,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.depth = depth
        self.l2_leaf_reg = l2_leaf_reg
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.categorical_features = categorical_features
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _loss(self) -> str:
        if self._task == "regression":
            return "RMSE"
        return "Logloss" if len(self.classes_) == 2 else "MultiClass"

    def _pool(self, X, y=None, weight=None):
        """CatBoost wants category codes as integers: NaN (missing, unseen) becomes -1."""
        import pandas as pd
        from catboost import Pool

        cats = self._categorical(X.shape[1])
        frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
        for i in cats:
            frame[f"f{i}"] = np.nan_to_num(X[:, i], nan=-1).astype(np.int64)
        return Pool(frame, label=y, weight=weight, cat_features=cats or None)

    def _train(self, train, valid, watch):
        from catboost import CatBoost

        model = CatBoost(
            {
                "loss_function": self._loss(),
                "iterations": self.n_estimators,
                "learning_rate": self.learning_rate,
                "depth": self.depth,
                "l2_leaf_reg": self.l2_leaf_reg,
                "random_seed": self._seed(),
                "thread_count": self.n_jobs_,
                "od_type": "Iter",
                "od_wait": self.early_stopping_rounds,
                "use_best_model": True,
                "verbose": False,
                "allow_writing_files": False,
            }
        )
        hooks = [_CatBoostHook(watch, self._loss())] if watch else None
        model.fit(self._pool(*train), eval_set=self._pool(*valid), callbacks=hooks)
        evals = model.get_evals_result()
        metric = self._loss()
        best = model.get_best_iteration() + 1
        return model, _history(evals["learn"][metric], evals["validation"][metric], best)

    def _predict(self, X) -> np.ndarray:
        kind = "RawFormulaVal" if self._task == "regression" else "Probability"
        out = self.booster_.predict(self._pool(X), prediction_type=kind, thread_count=self.n_jobs_)
        return np.asarray(out, dtype=np.float64)

    def _save_booster(self, path: Path) -> None:
        self.booster_.save_model(str(path), format="cbm")

    def _load_booster(self, path: Path):
        from catboost import CatBoost

        return CatBoost().load_model(str(path), format="cbm")


class CatBoostClassifier(_Classifier, _CatBoost):
    """CatBoost (ordered boosting, symmetric trees) with early stopping on an internal split."""


class CatBoostRegressor(_Regressor, _CatBoost):
    """CatBoost (ordered boosting, symmetric trees) with early stopping on an internal split."""


# -- per-round hooks, in each library's callback protocol ---------------------------------


def _xgboost_hook(stop_after):
    import xgboost as xgb

    class Hook(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log) -> bool:
            (losses,) = evals_log["valid"].values()
            return stop_after(epoch + 1, float(losses[-1]))

    return Hook()


def _lightgbm_hook(stop_after):
    """Stops LightGBM the way its own early stopping does, keeping the best round so far."""
    import lightgbm as lgb

    best = {"round": 0, "loss": float("inf"), "results": []}

    def hook(env) -> None:
        (loss,) = [r[2] for r in env.evaluation_result_list if r[0] == "valid"]
        round_ = env.iteration + 1
        if loss < best["loss"]:
            best.update(round=round_, loss=loss, results=env.evaluation_result_list)
        if stop_after(round_, float(loss)):
            raise lgb.callback.EarlyStopException(best["round"] - 1, best["results"])

    hook.order = 40  # after the evaluation is recorded
    return hook


class _CatBoostHook:
    def __init__(self, stop_after, metric: str):
        self.stop_after, self.metric = stop_after, metric

    def after_iteration(self, info) -> bool:  # False stops CatBoost
        loss = info.metrics["validation"][self.metric][-1]
        return not self.stop_after(info.iteration, float(loss))


# -- helpers -------------------------------------------------------------------------------


def _split(y: np.ndarray, task: str, fraction: float, seed: int):
    """Seeded train/validation row indices for early stopping (stratified for classes)."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    stratify = y if task == "classification" and np.bincount(y).min() >= 2 else None
    n_valid = max(1, int(round(len(y) * fraction)))
    if stratify is not None:
        n_valid = max(n_valid, int(y.max()) + 1)
    train, valid = train_test_split(rows, test_size=n_valid, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(valid)


def _history(train: dict | list, valid: dict | list, best: int) -> list[dict]:
    """Per-round losses up to the kept round: ``[{"round": 1, "loss": .., "val_loss": ..}]``."""
    if isinstance(train, dict):
        (train,), (valid,) = train.values(), valid.values()
    return [
        {"round": i + 1, "loss": float(a), "val_loss": float(b)}
        for i, (a, b) in enumerate(zip(train[:best], valid[:best]))
    ]


def _threads(n_jobs: int | None) -> int:
    """The thread count to use and record: one for None (as in scikit-learn), all for -1."""
    if n_jobs is None:
        return 1
    return os.cpu_count() or 1 if n_jobs == -1 else int(n_jobs)
