"""Generator and discriminator networks: DCGAN-style for images, MLPs for tables.

Both live in one ``GANPair`` module, so the training loop's model (and so every checkpoint)
holds the weights of the two. Generators end in ``tanh`` for images (data scaled to [-1, 1])
and in a plain linear layer for tables (standardised columns).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class GANConfig:
    """The two networks' shape.

    Attributes:
        kind: ``dcgan`` (images) or ``mlp`` (tables).
        latent_dim: size of the generator's noise input.
        width: base channels (dcgan: 1x and 2x of it) or hidden units (mlp: 2x and 1x).
        shape: ``(channels, height, width)`` of an image (height and width divisible by 4), or
            ``(n_features,)`` of a table row.
        blocks: ``(start, stop)`` spans of a table row generated through a softmax each (the
            one-hot blocks of categorical columns).
    """

    kind: str
    latent_dim: int
    width: int
    shape: tuple[int, ...]
    blocks: tuple[tuple[int, int], ...] = ()


class DCGenerator(nn.Module):
    """Noise -> linear -> 2 transposed convolutions (each doubling the size) -> tanh."""

    def __init__(self, config: GANConfig):
        super().__init__()
        channels, height, width = config.shape
        self.start = (2 * config.width, height // 4, width // 4)
        self.project = nn.Sequential(
            nn.Linear(config.latent_dim, 2 * config.width * (height // 4) * (width // 4)),
            nn.BatchNorm1d(2 * config.width * (height // 4) * (width // 4)),
            nn.ReLU(),
        )
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * config.width, config.width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(config.width),
            nn.ReLU(),
            nn.ConvTranspose2d(config.width, channels, 4, 2, 1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(self.project(z).view(len(z), *self.start))


class DCDiscriminator(nn.Module):
    """Image -> 2 strided convolutions with leaky ReLU -> one logit (real vs generated)."""

    def __init__(self, config: GANConfig):
        super().__init__()
        channels, height, width = config.shape
        self.net = nn.Sequential(
            nn.Conv2d(channels, config.width, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(config.width, 2 * config.width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * config.width),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(2 * config.width * (height // 4) * (width // 4), 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, 0]


def _mlp(n_in: int, hidden: tuple[int, ...], n_out: int, activation, dropout=0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip((n_in, *hidden), hidden):
        layers += [nn.Linear(a, b), activation()] + ([nn.Dropout(dropout)] if dropout else [])
    return nn.Sequential(*layers, nn.Linear(hidden[-1], n_out))


class MLPGenerator(nn.Module):
    """Noise -> MLP -> a row; each one-hot block of the row a level drawn from its softmax
    (from torch's global generator: GAN.sample seeds it)."""

    def __init__(self, config: GANConfig):
        super().__init__()
        hidden = (2 * config.width, 2 * config.width)
        self.net = _mlp(config.latent_dim, hidden, config.shape[0], nn.ReLU)
        self.blocks = config.blocks

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net(z)
        if not self.blocks:
            return out
        parts, at = [], 0
        for start, stop in self.blocks:
            # a level drawn from the block's distribution: nearly one-hot while training (the
            # real rows' blocks are one-hot; CTGAN's Gumbel-softmax), one-hot when sampling
            logits = out[:, start:stop]
            level = nn.functional.gumbel_softmax(logits, tau=0.2, hard=not self.training, dim=1)
            parts += [out[:, at:start], level]
            at = stop
        return torch.cat([*parts, out[:, at:]], dim=1)


class MLPDiscriminator(nn.Module):
    def __init__(self, config: GANConfig):
        super().__init__()
        hidden = (2 * config.width, config.width)
        self.net = _mlp(config.shape[0], hidden, 1, lambda: nn.LeakyReLU(0.2), dropout=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, 0]


class GANPair(nn.Module):
    """The generator and the discriminator as one module (one state dict, one checkpoint)."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        if config.kind == "dcgan":
            self.generator, self.discriminator = DCGenerator(config), DCDiscriminator(config)
        else:
            self.generator, self.discriminator = MLPGenerator(config), MLPDiscriminator(config)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)
