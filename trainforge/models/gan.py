"""A generative adversarial network on trainforge's training loop: DCGAN for images, MLPs for
tables.

The generator and discriminator are updated alternately on each batch by a custom train step
(trainforge.training.callbacks.adversarial), with two optimizers that both go into checkpoints,
so a killed GAN resumes bit for bit like any other model. After every epoch the quality score
(a Frechet distance, see trainforge.models.gan_quality) is logged as ``fid``; early stopping
watches it and restores the generator of the best epoch. With ``sample_dir`` set, a grid of
samples from the same fixed noise is saved there after each epoch (``epoch-0001.png``, ...).
Like ``checkpoint_dir`` and ``resume`` (trainforge.training.runtime), ``sample_dir`` is an
argument of ``fit``: where a fit writes is not part of the model.
"""

from __future__ import annotations

import contextlib
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from trainforge.errors import DataError
from trainforge.models.gan_quality import frechet_distance, image_features, table_features
from trainforge.models.nets.gan import GANConfig, GANPair
from trainforge.training.callbacks.adversarial import AdversarialStep
from trainforge.training.callbacks.early_stopping import EarlyStopping
from trainforge.training.callbacks.sample_grid import SampleGrid
from trainforge.training.determinism import deterministic
from trainforge.training.loop import Loop, fit
from trainforge.training.runtime import (
    DATA_PARALLEL,
    FitRuntime,
    identity,
    runtime_callbacks,
    starting_loop,
)
from trainforge.training.runtime import NAMES as RUNTIME_NAMES


class GAN(BaseEstimator):
    """Learns to generate images or table rows like the training data; ``sample(n)`` draws.

    Args:
        architecture: ``dcgan`` for images, ``mlp`` for table rows, ``auto``: ``dcgan`` for
            arrays (N, H, W[, C]) or when ``image_shape`` is set, else ``mlp``.
        image_shape: ``(height, width[, channels])`` when images come as flat rows.
        latent_dim: size of the noise vector.
        width: base channels (dcgan) or hidden units (mlp) of both networks.
        learning_rate, beta1: Adam settings of both optimizers (DCGAN's 2e-4 and 0.5).
        batch_size, max_epochs: as for the other neural estimators.
        patience: epochs without a better quality score before stopping.
        quality_samples: real and generated samples compared for the quality score.
        checkpoint_every_steps, device, deterministic: as for MLPs.
        blocks: for table rows, the ``[start, stop)`` column spans of one-hot blocks; the
            generator outputs each block through a softmax, and the rows are taken as already
            scaled (trainforge.generation.table_codec encodes them so) instead of standardised.

    ``fit`` takes ``sample_dir`` (where a grid of samples is saved after each epoch, images
    only) and the runtime arguments of the other torch estimators (checkpoints, resuming,
    callbacks, ``on_epoch``, ``verbose``).
    """

    _parameter_constraints = {
        "architecture": [StrOptions({"auto", "dcgan", "mlp"})],
        "image_shape": [tuple, list, None],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "width": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "beta1": [Interval(Real, 0, 1, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "quality_samples": [Interval(Integral, 2, None, closed="left")],
        "checkpoint_every_steps": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
        "device": [str],
        "deterministic": ["boolean"],
        "blocks": [list, tuple, None],
    }

    def __init__(
        self,
        architecture="auto",
        image_shape=None,
        latent_dim=64,
        width=32,
        learning_rate=2e-4,
        beta1=0.5,
        batch_size=64,
        max_epochs=20,
        patience=10,
        quality_samples=1000,
        checkpoint_every_steps=0,
        random_state=None,
        device="cpu",
        deterministic=True,
        blocks=None,
    ):
        self.architecture = architecture
        self.image_shape = image_shape
        self.latent_dim = latent_dim
        self.width = width
        self.learning_rate = learning_rate
        self.beta1 = beta1
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.quality_samples = quality_samples
        self.checkpoint_every_steps = checkpoint_every_steps
        self.random_state = random_state
        self.device = device
        self.deterministic = deterministic
        self.blocks = blocks

    FIT_RUNTIME = (RUNTIME_NAMES - DATA_PARALLEL) | {"sample_dir"}

    def fit(self, X, y=None, *, sample_dir=None, **runtime):
        """Train on ``X``; labels ``y``, if given, train the quality score's feature network.
        ``sample_dir``: where sample grids go; ``runtime`` as for MLPClassifier.fit."""
        self._validate_params()
        runtime = FitRuntime.of("GAN", runtime, also=("sample_dir",))
        if runtime.data_parallel != 1 or runtime.shard is not None:
            raise TypeError("GAN.fit() does not train data-parallel (data_parallel, shard)")
        data, y = self._prepare(X, y)
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        device = torch.device(self.device)
        kind = self.kind_
        features = (image_features if kind == "dcgan" else table_features)(data, y, seed)
        checkpoint_identity = identity(self, data)

        def build() -> Loop:
            torch.manual_seed(seed)
            model = GANPair(self._config(data.shape[1:])).to(device)
            betas = (self.beta1, 0.999)
            loop = Loop(
                model=model,
                optimizer=torch.optim.Adam(model.generator.parameters(), self.learning_rate, betas),
                loss_fn=_unused_loss,
                generator=torch.Generator().manual_seed(seed),
                max_epochs=self.max_epochs,
                batch_size=self.batch_size,
            )
            d_optimizer = torch.optim.Adam(
                model.discriminator.parameters(), self.learning_rate, betas
            )
            step = AdversarialStep(d_optimizer, self.latent_dim, seed + 1)
            loop.train_step = step
            loop.callbacks = [
                *self._callbacks(step, sample_dir),
                *runtime_callbacks(
                    runtime, "fid", checkpoint_identity, self.checkpoint_every_steps
                ),
            ]
            return loop

        loop = starting_loop(build, runtime, checkpoint_identity)
        model = loop.model
        X_t = torch.as_tensor(data, device=device)
        with deterministic(self.deterministic, device):
            fit(loop, X_t, torch.zeros(len(data), device=device), self._scorer(data, features))
        self.model_ = model.eval()
        self.history_ = loop.history
        self.n_epochs_ = loop.epoch
        stopper = next(c for c in loop.callbacks if isinstance(c, EarlyStopping))
        self.best_epoch_ = stopper.best_epoch
        return self

    def sample(self, n: int, random_state=None) -> np.ndarray:
        """``n`` new samples in the training data's scale: images ``(n, H, W[, C])`` like the
        training array, or table rows ``(n, n_features)``."""
        check_is_fitted(self, "model_")
        seed = int(check_random_state(random_state).randint(2**31 - 1))
        noise = torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(seed))
        device = next(self.model_.parameters()).device
        with torch.no_grad(), seeded(seed, device):
            out = self.model_.generator(noise.to(device)).double().cpu().numpy()
        return self._unscale(out)

    # -- data --------------------------------------------------------------------------------

    def _prepare(self, X, y) -> tuple[np.ndarray, np.ndarray | None]:
        """The training data scaled for the networks (images ``(N, C, H, W)`` in [-1, 1], table
        rows standardised per column) and the labels, checked as scikit-learn checks them: at
        least 2 samples, finite values, no sparse input, one label per sample."""
        checks = dict(allow_nd=True, dtype=np.float64, ensure_min_samples=2)
        if y is None:
            array = validate_data(self, X, **checks)
        else:
            array, y = validate_data(self, X, y, **checks)
        self.n_features_in_ = int(np.prod(array.shape[1:]))
        images = self.architecture == "dcgan" or (
            self.architecture == "auto" and (array.ndim > 2 or self.image_shape is not None)
        )
        self.kind_ = "dcgan" if images else "mlp"
        if not images:
            self.mean_, self.scale_ = array.mean(axis=0), array.std(axis=0)
            self.scale_[self.scale_ == 0] = 1.0
            if self.blocks:  # scaled by the caller (table_codec); one-hot blocks stay 0/1
                self.mean_, self.scale_ = np.zeros_like(self.mean_), np.ones_like(self.scale_)
            return ((array - self.mean_) / self.scale_).astype(np.float32), y
        from trainforge.models.image import as_images

        pictures = as_images(array, self.image_shape)
        self.input_ndim_ = array.ndim
        self.image_shape_ = pictures.shape[1:]
        if pictures.shape[1] % 4 or pictures.shape[2] % 4:
            raise DataError(
                f"GAN: image height and width must be multiples of 4, got {pictures.shape[1:3]}; "
                "crop or pad the images"
            )
        self.low_, self.high_ = float(pictures.min()), float(pictures.max())
        span = (self.high_ - self.low_) or 1.0
        scaled = (2 * (pictures - self.low_) / span - 1).transpose(0, 3, 1, 2).astype(np.float32)
        return scaled, y

    def _unscale(self, out: np.ndarray) -> np.ndarray:
        if self.kind_ == "mlp":
            return out * self.scale_ + self.mean_
        pictures = (out.transpose(0, 2, 3, 1) + 1) / 2 * (self.high_ - self.low_) + self.low_
        return pictures[..., 0] if self.input_ndim_ == 3 else pictures

    def _config(self, shape: tuple) -> GANConfig:
        blocks = tuple(tuple(int(v) for v in span) for span in self.blocks or ())
        if self.kind_ == "dcgan" and blocks:
            raise DataError("GAN: blocks are spans of table columns; images take none")
        if any(not 0 <= a < b <= shape[0] for a, b in blocks):
            raise DataError(f"GAN: blocks must be spans [start, stop) within {shape[0]} columns")
        return GANConfig(self.kind_, self.latent_dim, self.width, tuple(shape), blocks)

    # -- saving without pickle -----------------------------------------------------------------

    _FITTED = (
        "kind_", "n_features_in_", "mean_", "scale_", "image_shape_", "input_ndim_", "low_",
        "high_", "history_", "n_epochs_", "best_epoch_",
    )  # fmt: skip

    def save_files(self, folder: Path) -> list[str]:
        """Write the fitted GAN as ``estimator.json`` + ``weights.safetensors`` (both
        networks: a saved GAN can be trained on, and the discriminator scores samples)."""
        from trainforge.models.saved import save_network

        check_is_fitted(self, "model_")
        return save_network(self, folder, self._FITTED)

    @classmethod
    def load_files(cls, folder: Path) -> GAN:
        """Rebuild a GAN written by ``save_files`` (JSON and tensors only)."""
        from safetensors.torch import load_file

        from trainforge.models.saved import checked_network, read_saved

        saved = read_saved(folder, cls, cls._FITTED)
        estimator = cls(**saved["params"])
        estimator._validate_params()
        for key, value in saved["fitted"].items():
            if key in ("mean_", "scale_"):
                value = np.asarray(value, dtype=np.float64)
            elif key == "image_shape_":
                value = tuple(value)
            setattr(estimator, key, value)
        raw = saved["config"]
        config = GANConfig(
            str(raw["kind"]), int(raw["latent_dim"]), int(raw["width"]),
            tuple(int(v) for v in raw["shape"]),
            tuple(tuple(int(v) for v in span) for span in raw.get("blocks", ())),
        )  # fmt: skip
        weights = load_file(folder / "weights.safetensors")
        estimator.model_ = checked_network(lambda: GANPair(config), weights).eval()
        return estimator

    # -- training parts ------------------------------------------------------------------------

    def _scorer(self, data: np.ndarray, features):
        """The per-epoch evaluation: the Frechet distance of fixed noise's samples."""
        n = min(self.quality_samples, len(data))
        rows = np.random.RandomState(0).permutation(len(data))[:n]
        real = features(torch.as_tensor(data[np.sort(rows)]))
        noise = torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(0))

        def evaluate(model) -> dict:
            device = next(model.parameters()).device
            with seeded(0, device):  # the same draws each epoch; training's RNG untouched
                fake = model.generator(noise.to(device))
            return {"fid": frechet_distance(real, features(fake))}

        return evaluate

    def _callbacks(self, step: AdversarialStep, sample_dir) -> list:
        callbacks = [step, EarlyStopping(monitor="fid", patience=self.patience)]
        if sample_dir and self.kind_ == "dcgan":
            callbacks.append(SampleGrid(Path(sample_dir), self.latent_dim))
        return callbacks


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    """Torch's global generator (the CUDA one on a GPU) seeded for a block and restored after
    it: a table generator draws its categories from it (trainforge.models.nets.gan)."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _unused_loss(outputs, targets):  # the adversarial step computes its own losses
    raise NotImplementedError
