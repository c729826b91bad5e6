"""Image families in the registry: the CNN (images only). The image ladder (logistic regression
on pixels, then the MLP, then the CNN) is ``registry.IMAGE_LADDER``."""

from __future__ import annotations

from trainforge.models.registry import Family, Prep, Profile, register

# Pixels go to the CNN as they are: it normalises per channel with training statistics itself.
PIXELS = Prep(scale=False, categorical="ordinal")


# The CNN on a GPU, where a bigger network costs little more time: two residual blocks of two
# convolutions each (64 and 128 channels), shifts of up to 2 pixels, batches of 256, the
# one-cycle schedule over all 15 epochs. On an H200: 0.9376 test accuracy on Fashion-MNIST in
# 21-26 s (two runs), where the CPU defaults reach 0.9137 in 19-23 s (benchmarks/gpu.py,
# RESULTS.md "GPU").
GPU_CNN = {
    "channels": [64, 128],
    "convs_per_block": 2,
    "residual": True,
    "crop_padding": 2,
    "batch_size": 256,
    "max_epochs": 15,
    "patience": 15,
}


def _cnn(profile: Profile) -> dict:
    settings = dict(GPU_CNN) if profile.device.startswith("cuda") else {}
    if profile.image_shape:
        settings["image_shape"] = list(profile.image_shape)
    return settings


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
        "thread); on a GPU two residual blocks of 2x64 and 2x128 channels, shifts of 2 "
        "pixels, batches of 256, 15 epochs (0.938 in 21-26 s on an H200); image data only; "
        "needs torch",
        sample_weight=False,
        requires=("torch",),
        images_only=True,
    )
)
