"""Generation families in the registry, and the generation ladder: for tables the two
baselines (independent columns, then a Gaussian copula), then the GAN, so the leaderboard shows
what the GAN buys over them; for images the GAN (the baselines' per-pixel quantile tables would
outweigh the model)."""

from __future__ import annotations

from trainforge.models.registry import Family, Prep, Profile, register

RAW = Prep(scale=False)  # generators read the columns as they are (the GAN encodes them)
LADDER = {"table": ("independent_columns", "gaussian_copula", "gan"), "image": ("gan",)}
GENERATORS = "trainforge.generation.generators."


TABLE_STEPS = 4_000  # a table GAN's training steps by default (batches of 64), within epochs:
MIN_EPOCHS, MAX_EPOCHS = 10, 150  # 150 epochs on 1,200 rows, 11 on 24,000


def _gan(profile: Profile) -> dict:
    if profile.image_shape is not None:
        return {"image_shape": list(profile.image_shape), "max_epochs": 20}
    epochs = -(-TABLE_STEPS * 64 // max(profile.n_rows, 1))
    return {"max_epochs": min(max(epochs, MIN_EPOCHS), MAX_EPOCHS)}


for family in (
    Family(
        name="independent_columns",
        saves_itself=True,
        summary="Each column drawn from its own training distribution (a generation baseline).",
        classes={"generation": GENERATORS + "IndependentColumnsGenerator"},
        prep=RAW,
        initial=lambda profile: {},
        initial_doc="category frequencies; numbers from the interpolated quantile function; "
        "missing values at their rate",
        probabilities=False,
        sample_weight=False,
    ),
    Family(
        name="gaussian_copula",
        saves_itself=True,
        summary="The columns' own distributions joined by a Gaussian copula (a generation "
        "baseline that keeps linear dependence).",
        classes={"generation": GENERATORS + "GaussianCopulaGenerator"},
        prep=RAW,
        initial=lambda profile: {},
        initial_doc="ranks to normal scores, their correlation matrix; categories as intervals "
        "of the uniform by frequency",
        probabilities=False,
        sample_weight=False,
    ),
    Family(
        name="gan",
        saves_itself=True,
        summary="Generative adversarial network: an MLP GAN over encoded table rows (a softmax "
        "per categorical column) or a DCGAN over images (PyTorch).",
        classes={"generation": "trainforge.generation.gan_generator.GANGenerator"},
        prep=RAW,
        initial=_gan,
        initial_doc="tables: numbers as normal scores, a drawn level (Gumbel-softmax) per "
        "categorical column; generator and discriminator MLPs of 128 units, noise of 64, Adam "
        "lr 1e-3 (beta1 0.5), batches of 64, about 4,000 steps (10 to 150 epochs), keeping the "
        "epoch of the best Frechet distance of fixed noise's samples (patience 50); images: a "
        "DCGAN, up to 20 epochs; needs torch",
        probabilities=False,
        sample_weight=False,
        requires=("torch",),
    ),
):
    register(family)
