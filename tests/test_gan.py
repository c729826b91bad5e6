"""The GAN: DCGAN on small images and MLPs on table rows, sample grids, the quality score."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from trainforge.errors import DataError
from trainforge.models.gan import GAN
from trainforge.models.gan_quality import frechet_distance


def _bars(n=192, seed=0):
    """8x8 images with a bright 2-pixel bar, horizontal or vertical, at a random place."""
    rng = np.random.default_rng(seed)
    X = rng.normal(30, 10, (n, 8, 8))
    for image, (vertical, at) in zip(X, zip(rng.integers(0, 2, n), rng.integers(1, 5, n))):
        if vertical:
            image[1:7, at : at + 2] = 220
        else:
            image[at : at + 2, 1:7] = 220
    return X.clip(0, 255), rng.integers(0, 2, n)


def test_frechet_distance_is_zero_for_equal_statistics_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(500, 3))
    assert frechet_distance(real, real) == pytest.approx(0, abs=1e-6)
    # Equal covariances: the distance is the squared shift of the means (here 3 * 2^2).
    assert frechet_distance(real, real + 2) == pytest.approx(12, rel=1e-6)


def test_image_gan_saves_a_grid_per_epoch_improves_its_score_and_samples(tmp_path):
    X, y = _bars()
    gan = GAN(
        latent_dim=16, width=16, batch_size=16, max_epochs=4, quality_samples=100,
        random_state=0,
    ).fit(X, y, sample_dir=str(tmp_path / "grids"))  # fmt: skip
    scores = [h["fid"] for h in gan.history_]
    assert len(scores) == 4 and all("d_loss" in h for h in gan.history_)
    assert min(scores[1:]) < scores[0]  # the quality score improves over training
    assert gan.best_epoch_ == 1 + int(np.argmin(scores))
    grids = sorted(p.name for p in (tmp_path / "grids").iterdir())
    assert grids == [f"epoch-{e:04d}.png" for e in range(1, 5)]
    with Image.open(tmp_path / "grids" / "epoch-0004.png") as grid:
        assert grid.size == (80, 80) and grid.mode == "L"  # 64 samples of 8x8, 8 a row
    samples = gan.sample(7, random_state=1)
    assert samples.shape == (7, 8, 8)
    assert samples.min() >= X.min() - 1e-6 and samples.max() <= X.max() + 1e-6
    np.testing.assert_array_equal(samples, gan.sample(7, random_state=1))


def test_table_gan_learns_the_columns_distribution():
    rng = np.random.default_rng(0)
    centres = np.array([[5.0, 0.0], [-5.0, 10.0]])
    X = centres[rng.integers(0, 2, 400)] + rng.normal(size=(400, 2))
    gan = GAN(width=32, batch_size=32, max_epochs=5, random_state=0).fit(X)
    scores = [h["fid"] for h in gan.history_]
    assert gan.kind_ == "mlp" and min(scores) < scores[0]
    samples = gan.sample(2000, random_state=0)
    assert samples.shape == (2000, 2)
    np.testing.assert_allclose(samples.mean(axis=0), X.mean(axis=0), atol=1.5)


def test_gan_refuses_images_whose_size_is_not_a_multiple_of_4_and_nan():
    with pytest.raises(DataError, match=r"multiples of 4, got \(6, 8\); crop or pad"):
        GAN(max_epochs=1).fit(np.zeros((10, 6, 8)))
    with pytest.raises(ValueError, match="Input X contains NaN"):  # scikit-learn's message
        GAN(max_epochs=1).fit(np.full((10, 3), np.nan))
    with pytest.raises(ValueError, match="minimum of 2 is required"):
        GAN(max_epochs=1).fit(np.zeros((1, 3)))
