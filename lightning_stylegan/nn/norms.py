"""Feature normalizations compared by the circular-artifact paper (000_2d004fc061d5976e.txt,
Eqs. 3-7) and used by StyleGAN v1 and its mapping network.
"""
from __future__ import annotations

import torch
from torch import nn

NORM_EPS = 1e-8


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = NORM_EPS) -> torch.Tensor:
    """``x / sqrt(mean(x^2 over dim) + eps)``: pixel norm over channels (Eq. 3) when dim=1."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def pixel_norm(x: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """PN, Eq. 3: each pixel's feature vector scaled to unit mean square over the C channels."""
    return normalize_2nd_moment(x, dim=1, eps=eps)


def instance_norm(x: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """IN, Eqs. 4-6: each feature map shifted to zero mean and scaled to unit variance over H, W."""
    x = x - x.mean(dim=[2, 3], keepdim=True)
    return x * (x.square().mean(dim=[2, 3], keepdim=True) + eps).rsqrt()


class InstanceNorm(nn.Module):
    """IN (Eq. 4) as a module, the normalization inside StyleGAN v1's AdaIN."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return instance_norm(x)


class PixelNorm(nn.Module):
    """PN (Eq. 3) as a module."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x)


class Identity(nn.Module):
    """No normalization."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class PixelInstanceNorm(nn.Module):
    """PIN, Eq. 7: ``y = rho * PN(x) + (1 - rho) * IN(x)`` with ``rho`` in [0, 1]^C trainable,
    initialised at 0 (plain IN, i.e. vanilla StyleGAN) and clipped to [0, 1] by ``clip_()``, which
    the training loop calls after every optimizer step.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.rho = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rho = self.rho.to(x.dtype).reshape(1, -1, 1, 1)
        return rho * pixel_norm(x) + (1 - rho) * instance_norm(x)

    @torch.no_grad()
    def clip_(self) -> None:
        self.rho.clamp_(0.0, 1.0)


def apply_constraints(module: nn.Module) -> None:
    """Project constrained parameters back onto their domain (PIN's rho into [0, 1]).

    Call after every optimizer step; any submodule with a ``clip_()`` method takes part, so a
    plugin with its own constraint only needs to define one.
    """
    for submodule in module.modules():
        clip = getattr(submodule, "clip_", None)
        if callable(clip):
            clip()
