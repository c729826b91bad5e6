"""Preprocessing built from the schema with scikit-learn's ColumnTransformer.

It is fitted on the training split only and saved as the first step of each model's pipeline.
What each family gets depends on its ``Prep`` needs (see trainforge.models.registry.Prep).
"""

from __future__ import annotations

import numpy as np

from trainforge.data.features import feature_roles
from trainforge.data.schema import Schema
from trainforge.models.registry import Prep

ONEHOT_MAX_LEVELS = 32  # more levels than this: target encoding (linear) or codes (trees)
NATIVE_MAX_LEVELS = 255  # histogram boosting's limit for native categories


def _folds(task: str, seed: int):
    """Seeded folds for target encoding's cross-fitting."""
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = KFold if task == "regression" else StratifiedKFold
    return splitter(n_splits=5, shuffle=True, random_state=seed)


def build_preprocessor(schema: Schema, prep: Prep, seed: int = 0):
    """The ColumnTransformer for a family, and the categorical mask of its output columns.

    Returns:
        ``(transformer, mask)``; ``mask`` marks output columns holding category codes for
        estimators with native categorical support, and is None for other families.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import (
        OneHotEncoder,
        OrdinalEncoder,
        StandardScaler,
        TargetEncoder,
    )

    from trainforge.data.modality import build_inputs, modality_of

    if modality_of(schema)[0] != "table":  # text and sequences: trainforge.data.modality
        return build_inputs(schema, prep), None
    roles = feature_roles(schema)
    levels = {c.name: c.levels for c in schema.columns}
    limit = NATIVE_MAX_LEVELS if prep.categorical == "native" else ONEHOT_MAX_LEVELS
    few = [c for c in roles["categorical"] if levels[c] <= limit]
    many = [c for c in roles["categorical"] if levels[c] > limit]

    def fill():
        return SimpleImputer(strategy="constant", fill_value="(missing)")

    def codes():
        return OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)

    blocks = []
    if prep.categorical == "native":
        native = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
        )
        blocks += [("numeric", "passthrough", roles["numeric"]), ("categories", native, few)]
        blocks += [("many_categories", make_pipeline(fill(), codes()), many)]
    else:
        numeric = [SimpleImputer(strategy="median", add_indicator=True)]
        if prep.scale:
            numeric.append(StandardScaler())
        blocks.append(("numeric", make_pipeline(*numeric), roles["numeric"]))
        if prep.categorical == "onehot":
            onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
            target = TargetEncoder(cv=_folds(schema.task, seed))
            blocks += [("categories", make_pipeline(fill(), onehot), few)]
            blocks += [("many_categories", make_pipeline(fill(), target, StandardScaler()), many)]
        else:
            blocks += [("categories", make_pipeline(fill(), codes()), few + many)]
            many = []
    blocks = [block for block in blocks if block[2]]
    transformer = ColumnTransformer(blocks, sparse_threshold=0.0, remainder="drop")
    mask = None
    if prep.categorical == "native":
        mask = (False,) * len(roles["numeric"]) + (True,) * len(few) + (False,) * len(many)
    return transformer, mask
