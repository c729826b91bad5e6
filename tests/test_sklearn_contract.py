"""trainforge's neural estimators pass scikit-learn's own estimator checks, none skipped.

``max_epochs=50`` keeps the ~100 small fits fast; every other parameter is the default.
"""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from trainforge.models.neural import MLPClassifier, MLPRegressor


@parametrize_with_checks([MLPClassifier(max_epochs=50), MLPRegressor(max_epochs=50)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
