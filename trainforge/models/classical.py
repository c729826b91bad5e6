"""The classical families: baselines, linear models, trees, forests, SVMs, k-NN, naive Bayes,
and scikit-learn's histogram gradient boosting.

Initial settings are chosen to work on typical tables without tuning; where they depend on the
data they say how in ``initial_doc`` (shown by ``trainforge models`` and docs/models.md).
"""

from __future__ import annotations

from trainforge.models.registry import (
    BudgetRules,
    Family,
    Prep,
    Profile,
    Substitution,
    register,
)
from trainforge.search.hooks import BOOSTING_NOTE, boosting_hooks
from trainforge.search.portfolio import learned_cost
from trainforge.search.space import Choice, Float, Int, Space

LINEAR = Prep(scale=True, categorical="onehot")
TREES = Prep(scale=False, categorical="ordinal")
NATIVE = Prep(scale=False, categorical="native")

KERNEL_SVM_MAX_ROWS = 10_000
KNN_MAX_ROWS = 200_000
FOREST_DOC = "n_estimators=200 (100 past 50,000 rows), min_samples_leaf=5 from 2,000 rows (else 1)"


_FOREST_SPACE = Space(
    params=(
        Choice("max_features", ["sqrt", "log2", 0.2, 0.35, 0.5, 0.75, 1.0]),
        Int("min_samples_leaf", 1, 32, log=True),
        Choice("criterion", ["gini", "entropy"], tasks="classification"),
    ),
    note="n_estimators stays at its initial value",
)
# Families a budget leaves out of its default candidates: they rarely win on tables.
_LEFT_OUT = BudgetRules(leave_out=True)


def _rules(rank: int, family: str) -> BudgetRules:
    return BudgetRules(rank=rank, cost=learned_cost(family))


def _none(profile: Profile) -> dict:
    return {}


def _svm_wrap(kind: str, estimator):
    """SVMs give no probabilities: Platt scaling fitted on 3 folds adds them. SVM regression's
    epsilon and C assume a target of unit scale, so the target is standardised for the fit
    (on california_housing, LinearSVR scored R^2 -2.7 on the raw prices)."""
    if kind == "regression":
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.preprocessing import StandardScaler

        return TransformedTargetRegressor(regressor=estimator, transformer=StandardScaler())
    from sklearn.calibration import CalibratedClassifierCV

    return CalibratedClassifierCV(estimator, method="sigmoid", cv=3, ensemble=False)


def _kernel_svm_too_big(profile: Profile) -> Substitution | None:
    if profile.n_rows <= KERNEL_SVM_MAX_ROWS:
        return None
    return Substitution(
        use="linear_svm",
        notice=f"svm: {profile.n_rows:,} training rows is past {KERNEL_SVM_MAX_ROWS:,}, where a "
        "kernel SVM gets slow; training linear_svm instead (name svm in the spec's models to "
        "force it)",
    )


def _knn_too_big(profile: Profile) -> Substitution | None:
    if profile.n_rows <= KNN_MAX_ROWS:
        return None
    return Substitution(
        notice=f"knn: skipped on {profile.n_rows:,} rows (over {KNN_MAX_ROWS:,}), where "
        "predictions get slow; name it in the spec's models to train it anyway"
    )


def _tree_leaf(profile: Profile) -> dict:
    # 1% of the rows, between 5 and 50: fully grown single trees score far worse on every
    # dataset measured (docs/models.md), above all in probability-based metrics.
    return {"min_samples_leaf": min(50, max(5, profile.n_rows // 100))}


def _forest(profile: Profile) -> dict:
    # Leaves of 5 rows from 2,000 training rows up: better ROC AUC on adult, lending_club and
    # the adult sample, and models a quarter of the size; small multiclass tables (car,
    # segment) do best with fully grown trees (docs/models.md has the measurements).
    return {
        "n_estimators": 200 if profile.n_rows <= 50_000 else 100,
        "min_samples_leaf": 1 if profile.n_rows < 2_000 else 5,
    }


def _boosting(profile: Profile) -> dict:
    settings = {"max_iter": 500, "learning_rate": 0.1, "early_stopping": True}
    settings["n_iter_no_change"] = 20
    if profile.categorical_mask and any(profile.categorical_mask):
        settings["categorical_features"] = list(profile.categorical_mask)
    return settings


for family in [
    Family(
        name="baseline",
        baseline=True,
        summary="Predicts the training class shares (classification) or the mean (regression).",
        classes={
            "classification": "sklearn.dummy.DummyClassifier",
            "regression": "sklearn.dummy.DummyRegressor",
        },
        prep=TREES,
        initial=lambda p: {"strategy": "prior" if p.task != "regression" else "mean"},
        initial_doc="strategy=prior (classification) or mean (regression)",
        ladder=0,
        inputs=("table", "text", "sequence"),  # it never reads the inputs
        budget=BudgetRules(rank=0),
    ),
    Family(
        name="logistic_regression",
        summary="L2-regularised logistic regression on scaled, one-hot encoded features.",
        classes={"classification": "sklearn.linear_model.LogisticRegression"},
        prep=LINEAR,
        initial=lambda p: {"C": 1.0, "max_iter": 2000},
        initial_doc="C=1.0, max_iter=2000",
        ladder=10,
        space=Space(params=(Float("C", 1e-3, 100.0, log=True),)),
        budget=_rules(30, "logistic_regression"),
    ),
    Family(
        name="linear_regression",
        summary="Ordinary least squares.",
        classes={"regression": "sklearn.linear_model.LinearRegression"},
        prep=LINEAR,
        initial=_none,
        initial_doc="scikit-learn defaults",
    ),
    Family(
        name="ridge",
        summary="Ridge regression, alpha chosen by efficient leave-one-out over a log grid.",
        classes={"regression": "sklearn.linear_model.RidgeCV"},
        prep=LINEAR,
        initial=lambda p: {"alphas": [10.0**k for k in range(-3, 4)]},
        initial_doc="alphas=1e-3..1e3 (7 values), chosen by leave-one-out",
        ladder=10,
        budget=_rules(30, "ridge"),
    ),
    Family(
        name="lasso",
        summary="Lasso regression, alpha chosen by 5-fold cross-validation on the training rows.",
        classes={"regression": "sklearn.linear_model.LassoCV"},
        prep=LINEAR,
        initial=lambda p: {"cv": 5, "max_iter": 5000},
        initial_doc="100 alphas along the path, cv=5, max_iter=5000",
    ),
    Family(
        name="elastic_net",
        summary="Elastic net regression, alpha and l1_ratio chosen by 5-fold cross-validation.",
        classes={"regression": "sklearn.linear_model.ElasticNetCV"},
        prep=LINEAR,
        initial=lambda p: {"l1_ratio": [0.1, 0.5, 0.9], "cv": 5, "max_iter": 5000},
        initial_doc="l1_ratio in {0.1, 0.5, 0.9}, cv=5, max_iter=5000",
    ),
    Family(
        name="naive_bayes",
        summary="Gaussian naive Bayes.",
        classes={"classification": "sklearn.naive_bayes.GaussianNB"},
        prep=LINEAR,
        initial=_none,
        initial_doc="scikit-learn defaults",
        ladder=20,
        space=Space(params=(Float("var_smoothing", 1e-12, 1e-2, log=True),)),
        budget=_LEFT_OUT,
    ),
    Family(
        name="knn",
        threaded=True,
        summary="k-nearest neighbours on scaled features.",
        classes={
            "classification": "sklearn.neighbors.KNeighborsClassifier",
            "regression": "sklearn.neighbors.KNeighborsRegressor",
        },
        prep=LINEAR,
        initial=lambda p: {"n_neighbors": 15, "weights": "distance"},
        initial_doc=f"n_neighbors=15, weights=distance; left out of the ladder past "
        f"{KNN_MAX_ROWS:,} rows",
        ladder=30,
        sample_weight=False,
        substitute=_knn_too_big,
        space=Space(
            params=(
                Int("n_neighbors", 3, 100, log=True),
                Choice("weights", ["uniform", "distance"]),
            )
        ),
        budget=_LEFT_OUT,
    ),
    Family(
        name="svm",
        summary="Kernel (RBF) support vector machine; probabilities by Platt scaling.",
        classes={"classification": "sklearn.svm.SVC", "regression": "sklearn.svm.SVR"},
        prep=LINEAR,
        initial=lambda p: {"C": 1.0, "gamma": "scale"},
        initial_doc=f"RBF kernel, C=1.0, gamma=scale; replaced by linear_svm past "
        f"{KERNEL_SVM_MAX_ROWS:,} training rows",
        ladder=40,
        wrap=_svm_wrap,
        substitute=_kernel_svm_too_big,
        space=Space(params=(Float("C", 0.1, 100.0, log=True),)),
        budget=_LEFT_OUT,
    ),
    Family(
        name="linear_svm",
        summary="Linear support vector machine; probabilities by Platt scaling on 3 folds.",
        classes={"classification": "sklearn.svm.LinearSVC", "regression": "sklearn.svm.LinearSVR"},
        prep=LINEAR,
        initial=lambda p: {"C": 1.0, "max_iter": 5000},
        initial_doc="C=1.0, max_iter=5000",
        wrap=_svm_wrap,
        space=Space(params=(Float("C", 1e-3, 10.0, log=True),)),
        budget=_LEFT_OUT,
    ),
    Family(
        name="decision_tree",
        summary="A single CART decision tree.",
        classes={
            "classification": "sklearn.tree.DecisionTreeClassifier",
            "regression": "sklearn.tree.DecisionTreeRegressor",
        },
        prep=TREES,
        initial=_tree_leaf,
        initial_doc="min_samples_leaf = 1% of the rows, between 5 and 50",
        ladder=50,
        space=Space(params=(Int("max_depth", 2, 24), Int("min_samples_leaf", 1, 100, log=True))),
        budget=_LEFT_OUT,
    ),
    Family(
        name="random_forest",
        threaded=True,
        saves_itself=True,  # compactly: trainforge.models.forest
        summary="Random forest of CART trees.",
        classes={
            "classification": "trainforge.models.forest.RandomForestClassifier",
            "regression": "trainforge.models.forest.RandomForestRegressor",
        },
        prep=TREES,
        initial=_forest,
        initial_doc=FOREST_DOC,
        ladder=60,
        space=_FOREST_SPACE,
        budget=_rules(40, "random_forest"),
    ),
    Family(
        name="extra_trees",
        threaded=True,
        saves_itself=True,  # compactly: trainforge.models.forest
        summary="Extremely randomised trees.",
        classes={
            "classification": "trainforge.models.forest.ExtraTreesClassifier",
            "regression": "trainforge.models.forest.ExtraTreesRegressor",
        },
        prep=TREES,
        initial=_forest,
        initial_doc=FOREST_DOC,
        ladder=70,
        space=_FOREST_SPACE,
        budget=_rules(60, "extra_trees"),
    ),
    Family(
        name="hist_gradient_boosting",
        saves_itself=True,  # compactly: trainforge.models.hgb
        summary="scikit-learn's histogram gradient boosting with native categorical support.",
        classes={
            "classification": "trainforge.models.hgb.HGBClassifier",
            "regression": "trainforge.models.hgb.HGBRegressor",
        },
        prep=NATIVE,
        initial=_boosting,
        initial_doc="max_iter=500, learning_rate=0.1, early stopping after 20 rounds without "
        "improvement on an internal 10% split; categoricals handled natively",
        ladder=80,
        space=Space(
            params=(
                Float("learning_rate", 0.01, 0.3, log=True),
                Int("max_leaf_nodes", 8, 256, log=True),
                Int("min_samples_leaf", 2, 200, log=True),
                Float("l2_regularization", 1e-6, 10.0, log=True),
                Float("max_features", 0.3, 1.0),
            ),
            fixed={"max_iter": 1000},
            note="most fits end well before 1,000 rounds; " + BOOSTING_NOTE,
            hooks=boosting_hooks,
        ),
        budget=_rules(20, "hist_gradient_boosting"),
    ),
]:
    register(family)
