"""``rpgan`` loss plugin: the relativistic pairing GAN (Jolicoeur-Martineau 2018, RpGAN; Huang et al.
2024, "The GAN is dead; long live the GAN!", Eq. 2), the loss of R3GAN.

Eq. 2 with f = softplus(-t): D minimizes ``E[f(D(x) - D(G(z)))]`` and G ``E[f(D(G(z)) - D(x))]``.
Like R3GAN's official ``AdversarialTraining``, fake i is paired with real i of the batch, and G's
phase scores the step's reals too (detached). Under DDP a rank pairs its own batch (``losses.base``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import AdversarialLoss


class RelativisticPairing(AdversarialLoss):
    """RpGAN: D ``softplus(D(G(z_i)) - D(x_i))``, G ``softplus(D(x_i) - D(G(z_i)))``."""

    api_version = 1
    description = "relativistic pairing loss (RpGAN; R3GAN Eq. 2)"
    generator_sees_reals = True

    def generator(self, fake: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        return F.softplus(-(fake - real))

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.softplus(-(real - fake))
