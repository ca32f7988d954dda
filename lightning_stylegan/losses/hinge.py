"""``hinge`` loss plugin: the hinge loss of geometric GAN (Lim & Ye 2017, Eqs. 8-9), as SAGAN
(Zhang et al. 2019, Eq. 7) and BigGAN train with it."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import AdversarialLoss


class Hinge(AdversarialLoss):
    """Hinge: D ``max(0, 1 - D(x)) + max(0, 1 + D(G(z)))``, G ``-D(G(z))``."""

    api_version = 1
    description = "hinge loss (Lim & Ye 2017; SAGAN, BigGAN)"

    def generator(self, fake: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        return -fake

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - real) + F.relu(1 + fake)
