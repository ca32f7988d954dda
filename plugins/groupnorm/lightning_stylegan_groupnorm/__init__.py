"""``groupnorm``: an example third-party normalization plugin for lightning-stylegan.

Group normalization (Wu & He, "Group Normalization", ECCV 2018): per sample, the C channels are
split into G groups of C/G consecutive channels, and each group is shifted to zero mean and scaled
to unit variance over (its channels, H, W), Eqs. 1, 2 and 7 of the paper:

    x_hat_i = (x_i - mu_i) / sqrt(sigma_i^2 + eps),
    S_i = {k | k_N = i_N, floor(k_C / (C/G)) = floor(i_C / (C/G))}.

G is the largest divisor of C that is at most 32 (the paper's default G = 32), so any channel count
works. There is no learned affine (the paper's Eq. 6): the style affine of the synthesis layer
follows. The plugin builds on the public ``FeatureNormalization`` base (StyleGAN v1 layer family).
"""
from __future__ import annotations

import torch
from torch import nn

from lightning_stylegan.normalizations.base import FeatureNormalization

__all__ = ["GroupNorm", "GroupNormalization", "num_groups"]


def num_groups(channels: int, max_groups: int = 32) -> int:
    """The largest divisor of ``channels`` that is at most ``max_groups``."""
    return next(g for g in range(min(channels, max_groups), 0, -1) if channels % g == 0)


class GroupNorm(nn.Module):
    """GN without affine (Wu & He 2018, Eqs. 1, 2, 7) on [N, C, H, W], with G = ``num_groups(C)``."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.channels, self.groups, self.eps = channels, num_groups(channels), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = x.reshape(x.shape[0], self.groups, -1)  # [N, G, C/G * H * W]
        mean = groups.mean(dim=2, keepdim=True)
        var = groups.var(dim=2, unbiased=False, keepdim=True)
        return ((groups - mean) * (var + self.eps).rsqrt()).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, groups={self.groups}, eps={self.eps}"


class GroupNormalization(FeatureNormalization):
    """Group norm (Wu & He 2018, G = largest divisor of C up to 32), then the style affine."""

    api_version = 1

    def make_normalizer(self, channels: int) -> GroupNorm:
        return GroupNorm(channels)
