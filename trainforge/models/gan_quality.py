"""How close generated samples are to the data: a Frechet distance between feature statistics.

As in FID, each set of samples is summarised by the mean and covariance of its features and the
score is ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))``; lower is better, 0 means the
same statistics. No pretrained network is downloaded: the features come from a classifier
trained on the same data when labels are given (its last hidden layer), else from a fixed
random convolutional network (images) or the standardised columns themselves (tables).
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import torch

Features = Callable[[torch.Tensor], np.ndarray]


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """The Frechet distance between Gaussians fitted to two feature matrices (rows: samples)."""
    from scipy import linalg

    mu_r, mu_f = real.mean(axis=0), fake.mean(axis=0)
    cov_r = np.atleast_2d(np.cov(real, rowvar=False))
    cov_f = np.atleast_2d(np.cov(fake, rowvar=False))
    with warnings.catch_warnings():  # a singular product is handled just below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_r @ cov_f)
        if not np.isfinite(root).all():  # near-singular product: nudge both, as FID code does
            offset = np.eye(len(cov_r)) * 1e-6
            root = linalg.sqrtm((cov_r + offset) @ (cov_f + offset))
    value = ((mu_r - mu_f) ** 2).sum() + np.trace(cov_r + cov_f - 2 * np.real(root))
    return float(max(value, 0.0))


def image_features(images: np.ndarray, y, seed: int) -> Features:
    """A feature function for images scaled to [-1, 1] ``(N, C, H, W)`` tensors.

    With labels, a small CNN is trained on the images for 3 epochs and its pooled last block is
    the feature; without, a fixed random CNN's.
    """
    from trainforge.models.image import CNNClassifier
    from trainforge.models.nets.cnn import CNN, CNNConfig

    if y is not None:
        classifier = CNNClassifier(
            channels=(16, 32, 64),
            max_epochs=3,
            augment=False,
            validation_fraction=0.0,
            random_state=seed,
        )
        classifier.fit(images.transpose(0, 2, 3, 1), y)
        net = classifier.model_
        mean = torch.tensor(classifier.mean_, dtype=torch.float32)[:, None, None]
        std = torch.tensor(classifier.std_, dtype=torch.float32)[:, None, None]
    else:
        torch.manual_seed(seed)
        net = CNN(CNNConfig(images.shape[1], 10, channels=(16, 32, 64)))
        mean, std = torch.zeros(()), torch.ones(())
    net.eval()

    def features(batch: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            pooled = net.blocks(((batch.cpu() - mean) / std).contiguous())
            return pooled.mean(dim=(2, 3)).double().numpy()

    return features


def table_features(rows: np.ndarray, y, seed: int) -> Features:
    """A feature function for standardised table rows: an MLP classifier's hidden layer when
    labels are given, else the rows themselves."""
    if y is None:
        return lambda batch: batch.detach().cpu().double().numpy()
    from trainforge.models.neural import MLPClassifier

    classifier = MLPClassifier(
        hidden_sizes=(64,), max_epochs=30, validation_fraction=0.0, random_state=seed
    )
    classifier.fit(rows, y)
    net = classifier.model_.eval()

    def features(batch: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return net.blocks(batch.cpu().float()).double().numpy()

    return features
