"""scikit-learn's own estimator checks over every public trainforge estimator.

Each estimator is checked with small settings (few epochs or rounds) so the whole set runs in
the default suite. A check is listed as expected to fail only where the estimator's input makes
it inapplicable, each with the reason; everything else must pass.
"""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from trainforge.models.boosting import (
    CatBoostClassifier,
    CatBoostRegressor,
    LightGBMClassifier,
    LightGBMRegressor,
    XGBoostClassifier,
    XGBoostRegressor,
)
from trainforge.models.gan import GAN
from trainforge.models.image import CNNClassifier
from trainforge.models.neural import MLPClassifier, MLPRegressor
from trainforge.models.sequence import (
    RNNClassifier,
    RNNRegressor,
    TransformerClassifier,
    TransformerRegressor,
)

SHORT = {"max_epochs": 3, "random_state": 0}
ROUNDS = {"n_estimators": 20, "random_state": 0}

ESTIMATORS = [
    MLPClassifier(hidden_sizes=(16,), **SHORT),
    MLPRegressor(hidden_sizes=(16,), **SHORT),
    CNNClassifier(channels=(4,), augment=False, **SHORT),
    RNNClassifier(hidden_size=8, **SHORT),
    RNNRegressor(hidden_size=8, **SHORT),
    TransformerClassifier(d_model=8, heads=2, **SHORT),
    TransformerRegressor(d_model=8, heads=2, **SHORT),
    GAN(width=8, latent_dim=4, quality_samples=32, **SHORT),
    XGBoostClassifier(**ROUNDS),
    XGBoostRegressor(**ROUNDS),
    LightGBMClassifier(**ROUNDS),
    LightGBMRegressor(**ROUNDS),
    CatBoostClassifier(**ROUNDS),
    CatBoostRegressor(**ROUNDS),
]


def expected_failures(estimator) -> dict[str, str]:
    """The checks an estimator's input shape makes inapplicable, with the reason."""
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_scikit_learn_contract(estimator, check):
    check(estimator)


def test_every_public_estimator_is_checked():
    import trainforge.models.boosting as boosting
    import trainforge.models.sequence as sequence

    public = {
        name
        for module in (boosting, sequence)
        for name in dir(module)
        if name.endswith(("Classifier", "Regressor")) and not name.startswith("_")
        and getattr(module, name).__module__ == module.__name__
    }
    checked = {type(e).__name__ for e in ESTIMATORS}
    assert public <= checked, public - checked
    assert {"MLPClassifier", "MLPRegressor", "CNNClassifier", "GAN"} <= checked
