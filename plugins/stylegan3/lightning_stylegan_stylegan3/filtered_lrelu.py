"""StyleGAN3's filtered non-linearity (Karras et al. 2021, Section 3.2 and Figure 3): a leaky ReLU
applied at a temporarily higher sampling rate, between a low-pass interpolation and a low-pass
decimation, so that the non-linearity's high frequencies are removed instead of aliased:

    y = down_d( F_d * clamp( gain * lrelu( up_u(x + b) * F_u ) ) )

with ``up_u`` zero insertion (gain u^2 keeps the DC level), ``F_u`` / ``F_d`` the designed low-pass
filters (separable 1-D taps or radial 2-D taps) and ``down_d`` keeping every d-th sample.
``padding`` (x0, x1, y0, y1) applies to the up-sampled signal, as in NVlabs' ``filtered_lrelu``.

Plain torch, built for speed on the CPU: separable filters run as two 1-D depthwise convolutions,
the up-sampling ones transposed (the inserted zeros are never multiplied) and the down-sampling ones
strided (only the kept samples are computed); ``gain`` rides in the up-sampling filter (lrelu is
positively homogeneous) and the activation runs in place. Differentiable twice.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lightning_stylegan.nn.filters import upfirdn2d


def filtered_lrelu(x: torch.Tensor, up_filter: torch.Tensor | None, down_filter: torch.Tensor | None,
                   bias: torch.Tensor | None = None, up: int = 1, down: int = 1,
                   padding: tuple[int, int, int, int] = (0, 0, 0, 0), gain: float = math.sqrt(2),
                   slope: float = 0.2, clamp: float | None = None) -> torch.Tensor:
    """[N, C, H, W] -> [N, C, (H u + py0 + py1 - (ku - 1) - (kd - 1) + d - 1) // d, ... W likewise]."""
    if gain <= 0:
        raise ValueError(f"filtered_lrelu needs a positive gain, got {gain}")
    if bias is not None:
        x = x + bias.to(x.dtype).reshape(1, -1, 1, 1)
    x0, x1, y0, y1 = padding
    if up_filter is None or up_filter.ndim == 1:
        x = _upsample_axis(x, up_filter, up, x0, x1, gain, axis=3)
        x = _upsample_axis(x, up_filter, up, y0, y1, 1.0, axis=2)
    else:
        x = upfirdn2d(x, up_filter, up=up, padding=padding, gain=up ** 2 * gain)
    x = F.leaky_relu_(x, slope) if slope != 1 else x
    if clamp is not None:
        x = F.hardtanh(x, -clamp, clamp)
    if down_filter is None or down_filter.ndim == 1:
        return _downsample_axis(_downsample_axis(x, down_filter, down, axis=3), down_filter, down, axis=2)
    return upfirdn2d(x, down_filter, down=down)


def _upsample_axis(x: torch.Tensor, taps: torch.Tensor | None, up: int, before: int, after: int,
                   gain: float, axis: int) -> torch.Tensor:
    """Along one axis (3 = x, 2 = y): zero insertion to ``up`` times the length, padding (negative =
    crop), convolution with the 1-D taps times ``up * gain``."""
    taps = torch.ones(1, device=x.device) if taps is None else taps
    k, channels = taps.numel(), x.shape[1]
    shape = (1, k) if axis == 3 else (k, 1)
    weight = (taps * (up * gain)).to(x.dtype).reshape(1, 1, *shape).expand(channels, 1, *shape)
    if up > 1:
        # The transposed convolution is the full convolution of the zero-inserted signal, which ends
        # up - 1 zeros short; the padding then extends or crops its k - 1 extra samples per side.
        lo, hi = before - (k - 1), after + up - k
        stride = (1, up) if axis == 3 else (up, 1)
        if lo <= 0 and 0 <= hi - lo < up:  # a crop the convolution itself can do (StyleGAN3's layers)
            crop, extra = (0, -lo) if axis == 3 else (-lo, 0), (0, hi - lo) if axis == 3 else (hi - lo, 0)
            return F.conv_transpose2d(x, weight, stride=stride, padding=crop, output_padding=extra, groups=channels)
        return F.pad(F.conv_transpose2d(x, weight, stride=stride, groups=channels), _pad(axis, lo, hi))
    x = F.pad(x, _pad(axis, before, after)) if before or after else x
    return F.conv2d(x, weight.flip(axis), groups=channels) if k > 1 else x * (up * gain)


def _downsample_axis(x: torch.Tensor, taps: torch.Tensor | None, down: int, axis: int) -> torch.Tensor:
    """Along one axis: the 1-D filter (valid convolution), keeping every ``down``-th output."""
    if taps is None:
        index = [slice(None)] * 4
        index[axis] = slice(None, None, down)
        return x[tuple(index)] if down > 1 else x
    k = taps.numel()
    shape = (1, k) if axis == 3 else (k, 1)
    stride = (1, down) if axis == 3 else (down, 1)
    weight = taps.flip(0).to(x.dtype).reshape(1, 1, *shape).expand(x.shape[1], 1, *shape)
    return F.conv2d(x, weight.flip(axis), stride=stride, groups=x.shape[1])


def _pad(axis: int, lo: int, hi: int) -> list[int]:
    return [lo, hi, 0, 0] if axis == 3 else [0, 0, lo, hi]
