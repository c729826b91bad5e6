"""The baseline generation families' estimators: ``fit`` on a table's rows,
``sample(n, random_state)`` new rows with the training columns, their types and levels.

- ``IndependentColumnsGenerator``: each column from its own distribution (the yardstick: what a
  model that learns nothing about how columns go together gives);
- ``GaussianCopulaGenerator``: the columns' distributions joined by a Gaussian copula (linear
  dependence between them, nothing more).

Each saves itself as JSON: nothing is pickled. The GAN's estimator is in
trainforge.generation.gan_generator (it needs torch; these do not).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from trainforge.errors import DataError
from trainforge.generation.baseline import GaussianCopula, IndependentColumns

STATE_FILE = "generator.json"


def _seed(random_state) -> int:
    return int(check_random_state(random_state).randint(2**31 - 1))


def _frame(X) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame) or X.empty or len(X) < 2:
        raise DataError("a generator learns from a table (DataFrame) of at least 2 rows")
    return X


class _BaselineGenerator(BaseEstimator):
    """A baseline (trainforge.generation.baseline) as an estimator that saves itself."""

    _baseline = IndependentColumns

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, X, y=None):
        self.model_ = self._baseline().fit(_frame(X))
        self.n_features_in_ = X.shape[1]
        return self

    def sample(self, n: int, random_state=None) -> pd.DataFrame:
        check_is_fitted(self, "model_")
        return self.model_.sample(int(n), _seed(random_state))

    def save_files(self, folder: Path) -> list[str]:
        check_is_fitted(self, "model_")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / STATE_FILE).write_text(self.model_.to_json())
        return [STATE_FILE]

    @classmethod
    def load_files(cls, folder: Path):
        estimator = cls()
        estimator.model_ = cls._baseline.from_json((folder / STATE_FILE).read_text())
        return estimator


class IndependentColumnsGenerator(_BaselineGenerator):
    """Each column drawn from its own training distribution, independently of the others."""


class GaussianCopulaGenerator(_BaselineGenerator):
    """The columns' own distributions joined by the Gaussian copula of the training rows."""

    _baseline = GaussianCopula
