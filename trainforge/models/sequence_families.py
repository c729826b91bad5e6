"""Families for text and sequence data, and their start-simple ladders.

Text: a linear model on TF-IDF, then an RNN, then a Transformer. Sequences: a linear model on
the flattened, scaled series, then an RNN, then a Transformer. The neural estimators import
torch only when built (trainforge.models.sequence).
"""

from __future__ import annotations

from trainforge.models.registry import Family, Prep, Profile, register

TFIDF = Prep(scale=False, vectorize="tfidf")
FLAT_SERIES = Prep(scale=True)
RAW = Prep(scale=False)
SMALL_DATA_ROWS = 1_000  # below this, larger validation share and patience (noisy val loss)


def _tfidf_linear(profile: Profile) -> dict:
    if profile.task == "regression":
        return {"alpha": 1.0}
    return {"C": 10.0, "max_iter": 2000}


def _series_linear(profile: Profile) -> dict:
    if profile.task == "regression":
        return {"alpha": 1.0}
    return {"C": 1.0, "max_iter": 2000}


def _training(profile: Profile) -> dict:
    """Small data (a UCR archive's 50 series) gets smaller batches, a 20% validation split and
    more patience, so that early stopping does not react to a few noisy validation rows."""
    settings = {"channels": profile.channels} if profile.modality == "sequence" else {}
    if profile.n_rows < SMALL_DATA_ROWS:
        settings.update(batch_size=16, validation_fraction=0.2, patience=30, max_epochs=200)
    return settings


def _rnn(profile: Profile) -> dict:
    shape = {"cell": "lstm", "pooling": "last"} if profile.modality == "sequence" else {}
    return {**shape, **_training(profile)}


def _transformer(profile: Profile) -> dict:
    return _training(profile)


SMALL_DOC = "; under 1,000 rows batches of 16, a 20% validation split and patience 30; needs torch"

for family in (
    Family(
        name="tfidf_linear",
        summary="Logistic regression (ridge for regression) on word 1-2 gram TF-IDF of a text.",
        classes={
            "classification": "sklearn.linear_model.LogisticRegression",
            "regression": "sklearn.linear_model.Ridge",
        },
        prep=TFIDF,
        initial=_tfidf_linear,
        initial_doc="TF-IDF of words and word pairs seen in 2+ texts (sublinear tf); "
        "C=10 (alpha=1 for ridge)",
        ladder=10,
        inputs=("text",),
    ),
    Family(
        name="series_linear",
        summary="Logistic regression (ridge) on the series' values, flattened and scaled.",
        classes={
            "classification": "sklearn.linear_model.LogisticRegression",
            "regression": "sklearn.linear_model.Ridge",
        },
        prep=FLAT_SERIES,
        initial=_series_linear,
        initial_doc="each step and channel standardised, padding as 0; C=1 (alpha=1 for ridge)",
        ladder=10,
        inputs=("sequence",),
    ),
    Family(
        name="rnn",
        saves_itself=True,
        summary="Recurrent network (GRU or LSTM, bidirectional) over tokens or time steps.",
        classes={
            "classification": "trainforge.models.sequence.RNNClassifier",
            "regression": "trainforge.models.sequence.RNNRegressor",
        },
        prep=RAW,
        initial=_rnn,
        initial_doc="text: BPE tokenizer (8,000 pieces, 128 tokens), embeddings of 64, one "
        "bidirectional GRU of 64 with mean pooling; series: scaled per channel, bidirectional "
        "LSTM of 64 reading its final states; AdamW lr 2e-3, batches of 32, clipping at 1, "
        "early stopping after 10 epochs on a 10% split" + SMALL_DOC,
        ladder=20,
        sample_weight=False,
        requires=("torch", "tokenizers"),
        inputs=("text", "sequence"),
    ),
    Family(
        name="transformer",
        saves_itself=True,
        summary="Transformer encoder (pre-norm, CLS pooling, padding masks) over tokens or "
        "time steps.",
        classes={
            "classification": "trainforge.models.sequence.TransformerClassifier",
            "regression": "trainforge.models.sequence.TransformerRegressor",
        },
        prep=RAW,
        initial=_transformer,
        initial_doc="text: BPE tokenizer (8,000 pieces, 128 tokens) embedded; series: each "
        "step projected; width 64, 4 heads, 2 blocks, MLP 128, sinusoidal positions, CLS "
        "pooling; AdamW lr 1e-3, batches of 32, early stopping after 10 epochs on a 10% split"
        + SMALL_DOC,
        ladder=30,
        sample_weight=False,
        requires=("torch", "tokenizers"),
        inputs=("text", "sequence"),
    ),
):
    register(family)
