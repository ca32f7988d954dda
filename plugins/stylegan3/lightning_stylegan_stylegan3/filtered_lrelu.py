"""StyleGAN3's filtered non-linearity (Karras et al. 2021, Section 3.2 and Figure 3): a leaky ReLU
applied at a temporarily higher sampling rate, between a low-pass interpolation and a low-pass
decimation, so that the non-linearity's high frequencies are removed instead of aliased:

    y = down_d( F_d * ( gain * lrelu( up_u(x + b) * F_u ) clamped ) )

with ``up_u`` zero insertion (gain u^2 keeps the DC level), ``F_u`` / ``F_d`` the designed low-pass
filters (separable 1-D taps, applied as their outer product, or radial 2-D taps) and ``down_d``
keeping every d-th sample. ``padding`` (x0, x1, y0, y1) applies to the up-sampled signal, as in
NVlabs' ``filtered_lrelu``. Plain torch, on the project's twice-differentiable ``upfirdn2d``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lightning_stylegan.nn.filters import upfirdn2d


def as_2d(taps: torch.Tensor | None) -> torch.Tensor | None:
    """1-D separable taps -> their outer product; 2-D (radial) taps unchanged; None stays None."""
    if taps is None or taps.ndim == 2:
        return taps
    return taps[:, None] * taps[None, :]


def filtered_lrelu(x: torch.Tensor, up_filter: torch.Tensor | None, down_filter: torch.Tensor | None,
                   bias: torch.Tensor | None = None, up: int = 1, down: int = 1,
                   padding: tuple[int, int, int, int] = (0, 0, 0, 0), gain: float = math.sqrt(2),
                   slope: float = 0.2, clamp: float | None = None) -> torch.Tensor:
    """[N, C, H, W] -> [N, C, (H u + py0 + py1 - (ku - 1) - (kd - 1) + d - 1) // d, ... W likewise]."""
    if bias is not None:
        x = x + bias.to(x.dtype).reshape(1, -1, 1, 1)
    x = upfirdn2d(x, as_2d(up_filter), up=up, padding=padding, gain=up ** 2)
    x = F.leaky_relu(x, slope) * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d(x, as_2d(down_filter), down=down)
