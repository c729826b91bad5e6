"""ROCKET-family estimators: MultiRocket features (trainforge.models.rocket_features), scaled,
then ridge regression with its penalty chosen by leave-one-out cross-validation, as in the
papers.

Classification takes ridge's one-vs-rest scores; class probabilities are the softmax of those
scores times a factor fitted on their leave-one-out values (ridge gives them for free), so the
probabilities are calibrated on rows each score did not see. Inputs are series the way the
other sequence estimators take them: ``(N, T, C)`` or flattened rows with ``channels``
interleaved, shorter series ending in NaN.

Saved without pickle: ``estimator.json`` (settings, classes, the penalty) and
``arrays.npz`` (kernels, biases, feature scaling, ridge weights; read with pickle disabled),
checked for shape and range when read back.
"""

from __future__ import annotations

from numbers import Integral
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.linear_model import RidgeClassifierCV, RidgeCV
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from trainforge.errors import DataError
from trainforge.models import rocket_features
from trainforge.models.rocket_features import Kernels
from trainforge.models.series_input import SeriesInput

ALPHAS = np.logspace(-3, 3, 10)  # ridge penalties tried, as in the ROCKET papers
ARRAYS_FILE = "arrays.npz"
REPRESENTATIONS = ("series", "diff")


class _RocketBase(SeriesInput, BaseEstimator):
    _parameter_constraints: dict = {
        "n_features": [Interval(Integral, 8 * 84, None, closed="left")],
        "channels": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }
    _FITTED = ("n_features_in_", "n_channels_", "alpha_")

    def __init__(self, n_features: int = 50_000, channels: int = 1, random_state=0):
        self.n_features = n_features
        self.channels = channels
        self.random_state = random_state

    def _learn(self, X, y, y_numeric: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Fit the kernels and the feature scaling; the scaled training features and y."""
        self._validate_params()
        array, lengths, y = self._series(X, y, reset=True, y_numeric=y_numeric)
        seed = self.random_state if isinstance(self.random_state, int) else 0
        self.kernels_ = rocket_features.fit(array, lengths, self.n_features, seed)
        features = rocket_features.transform(array, lengths, self.kernels_)
        self.mean_ = features.mean(axis=0)
        scale = features.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0).astype(np.float32)
        self.n_channels_ = int(array.shape[2])
        return (features - self.mean_) / self.scale_, y

    def _features(self, X) -> np.ndarray:
        """Scaled features of ``X``, float64 (predictions then do not depend on the batch)."""
        check_is_fitted(self, "kernels_")
        array, lengths, _ = self._series(X)
        if array.shape[2] != self.n_channels_:
            raise DataError(
                f"sequences: the model was trained on {self.n_channels_} channel(s), "
                f"got {array.shape[2]}"
            )
        features = rocket_features.transform(array, lengths, self.kernels_)
        return ((features - self.mean_) / self.scale_).astype(np.float64)

    # -- saving ----------------------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        return {}

    def save_files(self, folder: Path) -> list[str]:
        """Write the fitted estimator as ``estimator.json`` + ``arrays.npz``."""
        import json

        check_is_fitted(self, "kernels_")
        folder.mkdir(parents=True, exist_ok=True)
        from trainforge.models.saved import json_ready

        fitted = {k: json_ready(getattr(self, k)) for k in self._FITTED}
        (folder / "estimator.json").write_text(
            json.dumps({"params": self.get_params(), "fitted": fitted}, indent=1)
        )
        arrays = {"mean": self.mean_, "scale": self.scale_, **self._arrays()}
        for name, kernels in zip(REPRESENTATIONS, self.kernels_, strict=True):
            arrays.update(kernels.arrays(name))
        with open(folder / ARRAYS_FILE, "wb") as file:
            np.savez(file, **arrays)
        return ["estimator.json", ARRAYS_FILE]

    @classmethod
    def load_files(cls, folder: Path):
        """Rebuild a fitted estimator written by ``save_files``; shapes are checked against
        each other before anything is computed with them.

        Raises:
            ValueError: a setting, field or array that does not belong or does not fit.
        """
        from trainforge.models.saved import as_array, read_saved

        saved = read_saved(folder, cls, cls._FITTED)
        estimator = cls(**saved["params"])
        estimator._validate_params()
        for key, value in saved["fitted"].items():
            setattr(estimator, key, as_array(key, value))
        arrays = _read_arrays(folder / ARRAYS_FILE)
        channels = getattr(estimator, "n_channels_", None)
        width = getattr(estimator, "n_features_in_", None)
        if not isinstance(channels, int) or not isinstance(width, int) or min(channels, width) < 1:
            raise ValueError("estimator.json's n_channels_ and n_features_in_ must be counts")
        steps = width // channels
        try:
            estimator.kernels_ = [
                Kernels.from_arrays(arrays, name, channels, steps - offset)
                for offset, name in enumerate(REPRESENTATIONS)  # differences: one step less
            ]
        except KeyError as missing:
            raise ValueError(f"{ARRAYS_FILE} lacks {missing}") from None
        width = sum(k.n_features for k in estimator.kernels_)
        estimator.mean_, estimator.scale_ = arrays.get("mean"), arrays.get("scale")
        for name in ("mean", "scale"):
            if getattr(estimator, f"{name}_") is None or arrays[name].shape != (width,):
                raise ValueError(f"{ARRAYS_FILE}: '{name}' must hold one value per feature")
        estimator._restore(arrays, width)
        return estimator


class RocketClassifier(ClassifierMixin, _RocketBase):
    """MultiRocket features and a ridge classifier, with calibrated class probabilities.

    Args:
        n_features: about how many features (MultiRocket's 50,000 by default; fewer fit faster).
        channels: channels interleaved in a flattened row.
        random_state: seeds the kernels' dilations, channels and biases.
    """

    _FITTED = _RocketBase._FITTED + ("classes_", "temperature_")

    def fit(self, X, y):
        features, y = self._learn(X, y)
        check_classification_targets(y)
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("the training series hold 1 class; classification needs two")
        ridge = RidgeClassifierCV(
            alphas=ALPHAS, scoring="neg_mean_squared_error", store_cv_results=True
        ).fit(features, codes)
        self.alpha_ = float(ridge.alpha_)
        self.coef_ = np.atleast_2d(ridge.coef_).astype(np.float32)
        self.intercept_ = np.atleast_1d(ridge.intercept_).astype(np.float32)
        held_out = ridge.cv_results_[:, :, int(np.flatnonzero(ALPHAS == ridge.alpha_)[0])]
        self.temperature_ = _temperature(_scores(held_out), codes)
        return self

    def decision_function(self, X) -> np.ndarray:
        scores = self._features(X) @ self.coef_.T + self.intercept_
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict_proba(self, X) -> np.ndarray:
        scores = self._features(X) @ self.coef_.T + self.intercept_
        return softmax(_scores(scores) / self.temperature_, axis=1)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)  # checks that the model is fitted
        return self.classes_[proba.argmax(axis=1)]

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"coef": self.coef_, "intercept": self.intercept_}

    def _restore(self, arrays: dict, width: int) -> None:
        k = len(self.classes_)
        self.coef_, self.intercept_ = _weights(arrays, 1 if k == 2 else k, width)
        if not (isinstance(self.temperature_, float) and self.temperature_ > 0):
            raise ValueError("estimator.json's temperature_ must be a positive number")


class RocketRegressor(RegressorMixin, _RocketBase):
    """MultiRocket features and ridge regression (penalty by leave-one-out)."""

    def fit(self, X, y):
        features, y = self._learn(X, y, y_numeric=True)
        ridge = RidgeCV(alphas=ALPHAS).fit(features, np.asarray(y, dtype=np.float64))
        self.alpha_ = float(ridge.alpha_)
        self.coef_ = np.atleast_2d(ridge.coef_).astype(np.float32)
        self.intercept_ = np.atleast_1d(ridge.intercept_).astype(np.float32)
        return self

    def predict(self, X) -> np.ndarray:
        return (self._features(X) @ self.coef_.T + self.intercept_)[:, 0].astype(np.float64)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"coef": self.coef_, "intercept": self.intercept_}

    def _restore(self, arrays: dict, width: int) -> None:
        self.coef_, self.intercept_ = _weights(arrays, 1, width)


def _weights(arrays: dict, rows: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The saved ridge weights ``(rows, width)`` and intercepts ``(rows,)``, or ValueError."""
    coef, intercept = arrays.get("coef"), arrays.get("intercept")
    if (
        coef is None
        or intercept is None
        or coef.shape != (rows, width)
        or intercept.shape != (rows,)
    ):
        raise ValueError(f"{ARRAYS_FILE}: ridge weights must be ({rows}, {width}) plus {rows}")
    return coef.astype(np.float32), intercept.astype(np.float32)


def _scores(decision: np.ndarray) -> np.ndarray:
    """One score per class: a binary ridge's single score ``s`` becomes ``(-s, s)``."""
    decision = np.asarray(decision, dtype=np.float64)
    if decision.ndim == 1 or decision.shape[1] == 1:
        decision = decision.reshape(-1, 1)
        return np.hstack([-decision, decision])
    return decision


def _temperature(scores: np.ndarray, codes: np.ndarray) -> float:
    """The temperature whose softmax of ``scores`` has the least cross-entropy with ``codes``
    smoothed as Platt does (the true class at 1 - 1/(n + 2)): held-out scores that separate
    the classes perfectly would otherwise drive it to 0 and every probability to 0 or 1."""
    n, k = scores.shape
    smoothing = 1.0 / (n + 2)
    targets = np.full((n, k), smoothing / (k - 1))
    targets[np.arange(n), codes] = 1.0 - smoothing

    def loss(log_t: float) -> float:
        return -(targets * log_softmax(scores / np.exp(log_t), axis=1)).sum(axis=1).mean()

    found = minimize_scalar(loss, bounds=(np.log(1e-3), np.log(1e3)), method="bounded")
    return float(np.exp(found.x))


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an npz file, read with pickle disabled (an object array is refused)."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path.name} is not a readable array file ({exc})") from None
