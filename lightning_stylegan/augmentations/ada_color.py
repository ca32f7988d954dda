"""The colour and image-space filtering parts of the ``ada`` pipeline (Karras et al. 2020, Training
Generative Adversarial Networks with Limited Data (StyleGAN2-ADA), Appendix B).

Colour: every op is a 4x4 homogeneous matrix acting on (r, g, b, 1); the pipeline multiplies them
into one and ``apply_color`` applies it once. The luma axis is v = (1, 1, 1) / sqrt(3): brightness
adds b to each channel, contrast scales the colour about 0 (mid-grey of [-1, 1] images), luma flip
mirrors the colour through the plane orthogonal to v (x - 2 (v.x) v), hue rotates it about v and
saturation scales its component orthogonal to v.

Filtering: an image is split into four frequency bands with the sym2 wavelet (band 0 the lowest,
band 3 the highest octave); ``band_filters`` gives the 1-D filter of each band, so that a per-sample
filter sum_i g_i band_i, applied separably, scales band i by g_i.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .ada_geometry import homogeneous

# Low-pass coefficients of the 4-tap Daubechies symlet "sym2".
SYM2 = (-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025)

# The assumed power of the four bands (a 1/f spectrum): what the random band gains are
# normalized against, so the expected image energy is kept.
BAND_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)


def luma_axis(device) -> torch.Tensor:
    """v = (1, 1, 1, 0) / sqrt(3), float32."""
    return torch.tensor([1, 1, 1, 0], dtype=torch.float64, device=device).div(math.sqrt(3)).float()


def translate3(b: torch.Tensor) -> torch.Tensor:
    """Adds b to r, g and b (brightness)."""
    return homogeneous([[1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]], b)


def scale3(c: torch.Tensor) -> torch.Tensor:
    """Multiplies r, g and b by c (contrast)."""
    return homogeneous([[c, 0, 0, 0], [0, c, 0, 0], [0, 0, c, 0], [0, 0, 0, 1]], c)


def luma_flip(flip: torch.Tensor) -> torch.Tensor:
    """The Householder reflection I - 2 v v^T where ``flip`` [N] is 1, the identity where it is 0."""
    v = luma_axis(flip.device)
    return torch.eye(4, device=flip.device) - 2 * torch.outer(v, v) * flip.reshape(-1, 1, 1)


def hue_rotation(theta: torch.Tensor) -> torch.Tensor:
    """Rotation by ``theta`` [N] about v (Rodrigues: cos I + sin [v]x + (1 - cos) v v^T)."""
    v = luma_axis(theta.device)[:3]
    cos, sin = torch.cos(theta).reshape(-1, 1, 1), torch.sin(theta).reshape(-1, 1, 1)
    cross = torch.tensor([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], device=theta.device) * v[0]  # [v]x
    rotation = cos * torch.eye(3, device=theta.device) + sin * cross + (1 - cos) * torch.outer(v, v)
    matrix = torch.eye(4, device=theta.device).repeat(theta.shape[0], 1, 1)
    matrix[:, :3, :3] = rotation
    return matrix


def saturation(s: torch.Tensor) -> torch.Tensor:
    """v v^T + (I - v v^T) s: the chroma (the part orthogonal to v) scaled by ``s`` [N]."""
    v = luma_axis(s.device)
    luma = torch.outer(v, v)
    return luma + (torch.eye(4, device=s.device) - luma) * s.reshape(-1, 1, 1)


def apply_color(images: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``matrix`` [N, 4, 4] applied to every pixel of ``images`` [N, C, H, W].

    C = 3: (r, g, b) -> M (r, g, b, 1). C = 4: the same on the first three channels, the fourth
    (alpha) passes unchanged. C = 1: the grey value y stands for (y, y, y); the result is the mean
    of the three transformed channels, y -> (sum of M[:3, :3]) / 3 * y + mean of M[:3, 3].
    """
    n, channels, height, width = images.shape
    matrix = matrix.to(images.dtype)
    flat = images.reshape(n, channels, height * width)
    if channels == 1:
        gain = matrix[:, :3, :3].sum(dim=(1, 2)).reshape(n, 1, 1) / 3
        return (flat * gain + matrix[:, :3, 3].mean(dim=1).reshape(n, 1, 1)).reshape(images.shape)
    if channels not in (3, 4):
        raise ValueError(f"ada: the colour ops need 1 (grey), 3 (RGB) or 4 (RGBA) channels, got "
                         f"{channels}; turn them off (brightness=0, contrast=0, lumaflip=0, hue=0, "
                         f"saturation=0) or use a preset without them (blit, geom, bg)")
    rgb = matrix[:, :3, :3] @ flat[:, :3] + matrix[:, :3, 3:]
    if channels == 4:
        rgb = torch.cat([rgb, flat[:, 3:]], dim=1)
    return rgb.reshape(images.shape)


def band_filters() -> torch.Tensor:
    """[4, 43] float32: the 1-D filter of each sym2 frequency band; they sum to the unit impulse.

    Built from the half-band pair lo2 = H(z) H(1/z) / 2 and hi2 = H(-z) H(-1/z) / 2, which add up
    to the unit impulse: three times over, every band so far is dilated by 2 and low-passed with
    lo2, and the new highest band gets hi2 at the centre.
    """
    lo = np.asarray(SYM2)
    hi = lo * (-1.0) ** np.arange(lo.size)
    lo2, hi2 = np.convolve(lo, lo[::-1]) / 2, np.convolve(hi, hi[::-1]) / 2
    bank = np.zeros((4, 1))
    bank[0, 0] = 1
    for band in range(1, 4):
        dilated = np.zeros((4, 2 * bank.shape[1] - 1))
        dilated[:, ::2] = bank
        bank = np.stack([np.convolve(row, lo2) for row in dilated])
        start = (bank.shape[1] - hi2.size) // 2
        bank[band, start:start + hi2.size] += hi2
    return torch.as_tensor(bank, dtype=torch.float32)


def apply_band_filter(images: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Each image filtered separably (x, then y) with its symmetric 1-D filter ``taps`` [N, K],
    reflection padding K // 2 (the image must be larger than that)."""
    n, channels, height, width = images.shape
    k = taps.shape[1]
    if min(height, width) <= k // 2:
        raise ValueError(f"ada: imgfilter needs images larger than {k // 2} pixels (its reflection "
                         f"padding), got {height}x{width}; set imgfilter=0")
    weight = taps.to(images.dtype).repeat_interleave(channels, dim=0).reshape(n * channels, 1, 1, k)
    x = F.pad(images.reshape(1, n * channels, height, width), [k // 2] * 4, mode="reflect")
    x = F.conv2d(x, weight, groups=n * channels)
    x = F.conv2d(x, weight.transpose(2, 3), groups=n * channels)
    return x.reshape(images.shape)
