"""``lsgan``: the least squares GAN loss (Mao et al., "Least Squares Generative Adversarial
Networks", ICCV 2017), an example loss plugin of lightning-stylegan.

Eq. 2 of the paper, with a the label D gives fakes, b the label it gives reals and c the value G
wants D to give its fakes::

    min_D  1/2 E_x[(D(x) - b)^2] + 1/2 E_z[(D(G(z)) - a)^2]
    min_G  1/2 E_z[(D(G(z)) - c)^2]

The defaults are the 0-1 coding of Eq. 9 (a = 0, b = 1, c = 1), the one the paper trains with;
``{"a": -1, "b": 1, "c": 0}`` is Eq. 8, the coding for which minimizing Eq. 2 minimizes the Pearson
chi-squared divergence (b - c = 1, b - a = 2). D's output is used as it is (no sigmoid).
"""
from __future__ import annotations

import math

import torch

from lightning_stylegan.losses.base import AdversarialLoss

__version__ = "0.1.0"


class LeastSquares(AdversarialLoss):
    """Least squares GAN loss (Mao et al. 2017, Eq. 2; 0-1 coding of Eq. 9 by default)."""

    api_version = 1
    description = "least squares GAN loss (Mao et al. 2017, Eq. 2; a, b, c options)"
    generator_sees_reals = False  # G's loss needs D's logits of the fakes only

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0):
        values = {"a": a, "b": b, "c": c}
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if a == b:
            raise ValueError(f"a (the fakes' label) and b (the reals' label) must differ, got a = b = {a}: "
                             f"D could not tell reals from fakes")
        if c == a:
            raise ValueError(f"c (the value G wants D to give its fakes) must differ from a (the fakes' "
                             f"label), got c = a = {a}: G would be trained to look fake")
        self.a, self.b, self.c = float(a), float(b), float(c)

    def generator(self, fake: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        """``1/2 (D(G(z)) - c)^2`` per sample."""
        return 0.5 * (fake - self.c).square()

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """``1/2 (D(x) - b)^2 + 1/2 (D(G(z)) - a)^2`` per sample."""
        return 0.5 * (real - self.b).square() + 0.5 * (fake - self.a).square()

    def __repr__(self) -> str:
        return f"LeastSquares(a={self.a:g}, b={self.b:g}, c={self.c:g})"
