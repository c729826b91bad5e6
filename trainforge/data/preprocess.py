"""Preprocessing built from the schema with scikit-learn's ColumnTransformer.

It is fitted on the training split only and saved as the first step of each model's pipeline.
What each family gets depends on its ``Prep`` needs (see trainforge.models.registry.Prep).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from trainforge.data.features import feature_roles
from trainforge.data.schema import Schema
from trainforge.models.registry import Prep

ONEHOT_MAX_LEVELS = 32  # more levels than this: target encoding (linear) or codes (trees)
NATIVE_MAX_LEVELS = 255  # histogram boosting's limit for native categories


class TextFeatures(TransformerMixin, BaseEstimator):
    """A free-text column of a table as a few dense numbers: TF-IDF of words and word pairs,
    reduced by truncated SVD to COMPONENTS columns (fewer on a small vocabulary), so every
    family can read it beside the other columns. Missing text is empty text."""

    COMPONENTS = 32
    MAX_FEATURES = 20_000

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, X, y=None):
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = _texts(X)
        self.tfidf_ = TfidfVectorizer(
            sublinear_tf=True, ngram_range=(1, 2), min_df=2, max_features=self.MAX_FEATURES
        )
        try:
            matrix = self.tfidf_.fit_transform(texts)
        except ValueError:  # no word appears twice: nothing to learn from
            self.tfidf_ = TfidfVectorizer(ngram_range=(1, 1), min_df=1, max_features=1)
            matrix = self.tfidf_.fit_transform([*texts, "text"])[:-1]
        components = min(self.COMPONENTS, matrix.shape[1] - 1)
        self.svd_ = None
        if components >= 1:
            self.svd_ = TruncatedSVD(components, random_state=self.seed).fit(matrix)
        self.width_ = self.COMPONENTS
        return self

    def transform(self, X):
        matrix = self.tfidf_.transform(_texts(X))
        dense = self.svd_.transform(matrix) if self.svd_ is not None else matrix.toarray()
        out = np.zeros((dense.shape[0], self.width_))  # always the same width: a fixed mask
        out[:, : min(dense.shape[1], self.width_)] = dense[:, : self.width_]
        return out

    def get_feature_names_out(self, input_features=None):
        return np.array([f"text_{i}" for i in range(self.width_)], dtype=object)


def _texts(X) -> list[str]:
    values = X.to_numpy().ravel() if hasattr(X, "to_numpy") else np.asarray(X).ravel()
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]


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
    texts = [(f"text_{i}", TextFeatures(seed=seed), name) for i, name in enumerate(roles["text"])]
    blocks = [block for block in blocks if block[2]] + texts
    transformer = ColumnTransformer(blocks, sparse_threshold=0.0, remainder="drop")
    mask = None
    if prep.categorical == "native":
        text_width = TextFeatures.COMPONENTS * len(texts)  # at most; never categorical
        mask = (False,) * len(roles["numeric"]) + (True,) * len(few) + (False,) * len(many)
        mask += (False,) * text_width
    return transformer, mask
