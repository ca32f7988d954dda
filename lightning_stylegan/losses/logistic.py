"""``logistic`` loss plugin: the non-saturating logistic loss of StyleGAN and StyleGAN2
(Goodfellow et al. 2014, Eq. 1 and the non-saturating G of Section 3; 002_0a18e98dc55024d1.txt
Appendix B; NVlabs' ``StyleGAN2Loss``), the default."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import AdversarialLoss


class Logistic(AdversarialLoss):
    """Non-saturating logistic: G ``softplus(-D(G(z)))``, D ``softplus(D(G(z))) + softplus(-D(x))``."""

    api_version = 1
    description = "non-saturating logistic loss (StyleGAN, StyleGAN2)"

    def generator(self, fake: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        """``-log sigmoid(D(G(z))) = softplus(-D(G(z)))``."""
        return F.softplus(-fake)

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """``-log(1 - sigmoid(D(G(z)))) - log sigmoid(D(x)) = softplus(D(G(z))) + softplus(-D(x))``."""
        return F.softplus(fake) + F.softplus(-real)
