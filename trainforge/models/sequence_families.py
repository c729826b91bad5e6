"""Families for text and sequence data, and their start-simple ladders.

Text: a linear model on TF-IDF, then an RNN, then a Transformer. Sequences: a linear model on
the flattened, scaled series, then ROCKET (MultiRocket features and ridge), then an RNN and a
Transformer from NETS_MIN_SERIES series up (on a UCR problem of 36 series the RNN stayed at
chance and the Transformer reached 0.53 where ROCKET-family models reach about 0.87). The
neural estimators import torch only when built (trainforge.models.sequence).
"""

from __future__ import annotations

from trainforge.models.registry import Family, Prep, Profile, Substitution, register

TFIDF = Prep(scale=False, vectorize="tfidf")
FLAT_SERIES = Prep(scale=True)
RAW = Prep(scale=False)
SMALL_DATA_ROWS = 1_000  # below this, larger validation share and patience (noisy val loss)
NETS_MIN_SERIES = 300  # the default sequence ladder trains the RNN and Transformer from here
ROCKET_FEATURES = 50_000  # MultiRocket's default
ROCKET_FEATURES_LARGE = 10_000  # from ROCKET_LARGE_ROWS series: ridge on 50,000 gets slow
ROCKET_LARGE_ROWS = 5_000


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


def _rocket(profile: Profile) -> dict:
    large = profile.n_rows >= ROCKET_LARGE_ROWS
    features = ROCKET_FEATURES_LARGE if large else ROCKET_FEATURES
    return {"channels": profile.channels, "n_features": features, "random_state": profile.seed}


def _inception(profile: Profile) -> dict:
    settings = {"channels": profile.channels}
    if profile.n_rows < SMALL_DATA_ROWS:
        settings.update(batch_size=16, validation_fraction=0.2)
    return settings


def _nets_need_more_series(name: str):
    def rule(profile: Profile) -> Substitution | None:
        if profile.modality != "sequence" or profile.n_rows >= NETS_MIN_SERIES:
            return None
        return Substitution(
            f"{name}: left out of the sequence ladder on {profile.n_rows} series (fewer than "
            f"{NETS_MIN_SERIES}: it rarely learns from so few; name it in models to train it)"
        )

    return rule


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
        name="rocket",
        saves_itself=True,
        summary="MultiRocket: random dilated convolution kernels over the series and its "
        "differences, four pooled features each, then ridge (penalty by leave-one-out).",
        classes={
            "classification": "trainforge.models.rocket.RocketClassifier",
            "regression": "trainforge.models.rocket.RocketRegressor",
        },
        prep=RAW,
        initial=_rocket,
        initial_doc=f"{ROCKET_FEATURES:,} features ({ROCKET_FEATURES_LARGE:,} from "
        f"{ROCKET_LARGE_ROWS:,} series), MiniRocket's 84 kernels at up to 32 dilations, "
        "PPV/MPV/MIPV/LSPV pooling; ridge over 10 penalties 1e-3..1e3; class probabilities "
        "by a softmax temperature fitted on leave-one-out scores",
        ladder=15,
        sample_weight=False,
        inputs=("sequence",),
    ),
    Family(
        name="inception_time",
        saves_itself=True,
        summary="InceptionTime: an ensemble of 5 Inception convolutional networks over series "
        "(Ismail Fawaz et al. 2020).",
        classes={
            "classification": "trainforge.models.inception.InceptionTimeClassifier",
            "regression": "trainforge.models.inception.InceptionTimeRegressor",
        },
        prep=RAW,
        initial=_inception,
        initial_doc="5 networks of 6 modules (32 filters per branch, kernels 39/19/9, residual "
        "every 3), Adam lr 1e-3, batches of 64 (16 under 1,000 series), early stopping after 50 "
        "epochs on a 10% split (20% under 1,000 series); not in the default ladder (a few "
        "minutes per small problem on a CPU): name it, ideally with device: cuda; needs torch",
        sample_weight=False,
        requires=("torch",),
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
        substitute=_nets_need_more_series("rnn"),
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
        substitute=_nets_need_more_series("transformer"),
    ),
):
    register(family)
