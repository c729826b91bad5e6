"""A GAN's alternating updates as the loop's custom train step, with their state in checkpoints."""

from __future__ import annotations

import torch
from torch.nn.functional import binary_cross_entropy_with_logits as bce

from trainforge.training.callbacks.base import Callback
from trainforge.training.state import _load_optimizer, _optimizer

REAL_LABEL = 0.9  # one-sided label smoothing keeps the discriminator from getting too sure


class AdversarialStep(Callback):
    """One discriminator step, then one generator step, per batch (``Loop.train_step``).

    The loop's own optimizer updates the generator; this callback owns the discriminator's
    optimizer, the noise generator and the epoch's summed discriminator loss, and saves all
    three, so a resumed GAN continues bit for bit. The batch loss it returns (what the loop
    logs as ``loss``) is the generator's; ``d_loss`` is added to each epoch's logs.

    Args:
        d_optimizer: the discriminator's optimizer.
        latent_dim: size of the noise vectors.
        seed: seeds the noise generator.
    """

    name = "adversarial"

    def __init__(self, d_optimizer: torch.optim.Optimizer, latent_dim: int, seed: int):
        self.d_optimizer = d_optimizer
        self.latent_dim = latent_dim
        self.generator = torch.Generator().manual_seed(seed)
        self.d_sum = torch.zeros((), dtype=torch.float64)

    def __call__(self, loop, real: torch.Tensor, _unused: torch.Tensor) -> torch.Tensor:
        gan = loop.model
        noise = torch.randn(len(real), self.latent_dim, generator=self.generator)
        fake = gan.generator(noise.to(real.device))
        d_real, d_fake = gan.discriminator(real), gan.discriminator(fake.detach())
        d_loss = bce(d_real, torch.full_like(d_real, REAL_LABEL)) + bce(
            d_fake, torch.zeros_like(d_fake)
        )
        self.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_optimizer.step()
        judged = gan.discriminator(fake)
        g_loss = bce(judged, torch.ones_like(judged))
        loop.optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        loop.optimizer.step()
        self.d_sum += d_loss.detach().double().cpu() * len(real)
        return g_loss.detach()

    def on_epoch_begin(self, loop) -> None:
        self.d_sum = torch.zeros((), dtype=torch.float64)

    def on_epoch_end(self, loop, logs: dict) -> None:
        logs["d_loss"] = float(self.d_sum / max(loop.rows, 1))

    def state_dict(self) -> tuple[dict, dict]:
        tensors, plain = _optimizer(self.d_optimizer)
        tensors = {f"d_{k}": v for k, v in tensors.items()}
        tensors.update(noise=self.generator.get_state(), d_sum=self.d_sum)
        return {"d_optimizer": plain}, tensors

    def load_state_dict(self, state: dict, tensors: dict) -> None:
        if "noise" not in tensors:
            return
        optimizer = {k[2:]: v for k, v in tensors.items() if k.startswith("d_optimizer.")}
        _load_optimizer(self.d_optimizer, optimizer, state["d_optimizer"])
        self.generator.set_state(tensors["noise"])
        self.d_sum = tensors["d_sum"].clone()
