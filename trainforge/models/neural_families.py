"""Neural families in the registry. Their estimators import torch only when built, so the
catalogue lists them on a classical-only install (where they are left out of the ladder)."""

from __future__ import annotations

from trainforge.models.classical import LINEAR
from trainforge.models.registry import Family, Profile, register


def _mlp(profile: Profile) -> dict:
    # Larger batches on large tables: the same epochs in far fewer optimizer steps.
    return {"batch_size": 256 if profile.n_rows <= 100_000 else 1024}


register(
    Family(
        name="mlp",
        summary="Multi-layer perceptron on scaled, one-hot encoded features (PyTorch).",
        classes={
            "classification": "trainforge.models.neural.MLPClassifier",
            "regression": "trainforge.models.neural.MLPRegressor",
        },
        prep=LINEAR,
        initial=_mlp,
        initial_doc="hidden (256, 128), ReLU, dropout 0.1, AdamW lr 1e-3 weight decay 1e-4, "
        "batches of 256 (1024 past 100,000 rows), lr halved on a validation plateau, early "
        "stopping after 10 epochs on a 10% split, best weights restored; needs torch",
        ladder=90,
        sample_weight=False,
        requires=("torch",),
    )
)
