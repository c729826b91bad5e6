"""scikit-learn's own estimator checks over every public trainforge estimator.

Each estimator runs with small settings so the set fits the default suite. A check is listed
as expected to fail only where the estimator's input makes it inapplicable, with the reason;
everything else must pass. Series estimators read a table's rows as series of one channel; the
CNN reads rows of 1, 3 or 4 values as 1x1, 1x1x3 and 2x2 images; the GAN learns the rows.
"""

from __future__ import annotations

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
from trainforge.models.hgb import HGBClassifier, HGBRegressor
from trainforge.models.image import CNNClassifier
from trainforge.models.inception import InceptionTimeClassifier
from trainforge.models.neural import MLPClassifier, MLPRegressor
from trainforge.models.rocket import RocketClassifier, RocketRegressor
from trainforge.models.sequence import RNNClassifier, RNNRegressor, TransformerClassifier

MLP = {"hidden_sizes": (32,), "max_epochs": 60, "patience": 60, "random_state": 0}
ROUNDS = {"n_estimators": 60, "random_state": 0}
NETS = {"max_epochs": 40, "patience": 40, "learning_rate": 1e-2, "random_state": 0}

ESTIMATORS = [
    MLPClassifier(**MLP),
    MLPRegressor(**{**MLP, "max_epochs": 200, "patience": 200, "learning_rate": 1e-2}),
    HGBClassifier(max_iter=30),
    HGBRegressor(max_iter=30),
    XGBoostClassifier(**ROUNDS),
    XGBoostRegressor(**ROUNDS),
    LightGBMClassifier(**ROUNDS),
    LightGBMRegressor(**ROUNDS),
    CatBoostClassifier(**ROUNDS),
    CatBoostRegressor(**ROUNDS),
    RocketClassifier(n_features=1000),
    RocketRegressor(n_features=1000),
    RNNClassifier(hidden_size=8, **NETS),
    RNNRegressor(hidden_size=8, **NETS),
    TransformerClassifier(d_model=8, heads=2, layers=1, ff_dim=16, **NETS),
    InceptionTimeClassifier(members=1, depth=3, filters=4, kernel=8, **NETS),
    CNNClassifier(channels=(4,), batch_size=16, augment=False, **{**NETS, "max_epochs": 10}),
    GAN(latent_dim=4, width=8, batch_size=16, max_epochs=2, quality_samples=20, random_state=0),
]

SPLIT = (
    "an internal validation split for early stopping draws rows, so a row repeated twice and a "
    "row weighted 2 land in different splits"
)


SERIES_END = (
    "NaN marks where a shorter series ends (a row's trailing NaN is padding, a gap is refused), "
    "so NaN in the check's random places is not always an error"
)


NOT_IMAGES = (
    "the check's rows of 2, 5 or 10 values are not square images of 1 or 3 channels; "
    "CNNClassifier refuses them, naming image_shape, rather than guess a shape"
)
# the checks whose data has such widths (each passes on a width that is an image)
NOT_IMAGE_CHECKS = [
    "check_estimators_overwrite_params",
    "check_estimators_fit_returns_self",
    "check_readonly_memmap_input",
    "check_estimators_dtypes",
    "check_dtype_object",
    "check_classifier_data_not_an_array",
    "check_classifiers_one_label_sample_weights",
    "check_classifiers_classes",
    "check_classifiers_train",
    "check_fit2d_1sample",
    "check_fit_idempotent",
    "check_fit_check_is_fitted",
    "check_n_features_in",
]


def expected_failures(estimator) -> dict[str, str]:
    """The checks an estimator's input makes inapplicable, with the reason."""
    if type(estimator).__module__ == "trainforge.models.boosting":
        return {"check_sample_weight_equivalence_on_dense_data": SPLIT}
    if hasattr(estimator, "_series"):
        return {"check_estimators_nan_inf": SERIES_END}
    if isinstance(estimator, CNNClassifier):
        return dict.fromkeys(NOT_IMAGE_CHECKS, NOT_IMAGES)
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_scikit_learn_contract(estimator, check):
    check(estimator)
