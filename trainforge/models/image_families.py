"""Image families in the registry: the CNN (images only). The image ladder (logistic regression
on pixels, then the MLP, then the CNN) is ``registry.IMAGE_LADDER``."""

from __future__ import annotations

from trainforge.models.registry import Family, Prep, Profile, register

# Pixels go to the CNN as they are: it normalises per channel with training statistics itself.
PIXELS = Prep(scale=False, categorical="ordinal")


def _cnn(profile: Profile) -> dict:
    return {"image_shape": list(profile.image_shape)} if profile.image_shape else {}


register(
    Family(
        name="cnn",
        saves_itself=True,
        summary="Convolutional network for images: conv blocks, optional residual (PyTorch).",
        classes={"classification": "trainforge.models.image.CNNClassifier"},
        prep=PIXELS,
        initial=_cnn,
        initial_doc="blocks of 16 and 32 channels (3x3 conv, batch norm, ReLU, max pooling), "
        "the last map averaged to 7x7 for a linear head, AdamW lr 3e-3 weight decay 5e-4 with "
        "a one-cycle schedule over 10 epochs, batches of 128, flips, early stopping after 5 "
        "epochs on a 10% split (0.915 test accuracy on Fashion-MNIST in 10 epochs on one CPU "
        "thread); image data only; needs torch",
        sample_weight=False,
        requires=("torch",),
        images_only=True,
    )
)
