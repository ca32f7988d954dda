"""FIR filtering with up/down-sampling (StyleGAN2 Appendix B: "bilinear filtering in all
up/downsampling layers" with the separable [1,3,3,1] kernel), in plain torch.

``upfirdn2d`` follows the usual upsample -> pad -> FIR -> downsample definition, so the layers built
on it reproduce NVlabs' stylegan2-ada-pytorch numerically (their CUDA kernel computes the same sum).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

DEFAULT_FILTER = (1, 3, 3, 1)


def setup_filter(taps: Sequence[float] = DEFAULT_FILTER) -> torch.Tensor:
    """2-D filter from 1-D taps: the outer product, normalized to sum 1 (unit DC gain)."""
    f = torch.as_tensor(list(taps), dtype=torch.float32)
    if f.ndim != 1 or f.numel() == 0:
        raise ValueError(f"FIR taps must be a non-empty 1-D sequence, got {list(taps)!r}")
    f = torch.outer(f, f)
    return f / f.sum()


def _padding4(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    """int -> all sides; (before, after) -> both axes; 4 values -> (x0, x1, y0, y1)."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    if len(padding) == 2:
        return padding[0], padding[1], padding[0], padding[1]
    return tuple(padding)  # (before, after) along x, then along y


def _fir1d(x: torch.Tensor, taps: torch.Tensor, dim: int) -> torch.Tensor:
    """Valid 1-D convolution of ``x`` along ``dim`` with ``taps``, as a sum of shifted slices
    (several times faster on CPU than a depthwise ``conv2d``, and twice differentiable)."""
    length = x.shape[dim] - taps.numel() + 1
    flipped = taps.flip(0).to(x.dtype)
    out = x.narrow(dim, 0, length) * flipped[0]
    for k in range(1, taps.numel()):
        out = out + x.narrow(dim, k, length) * flipped[k]
    return out


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up: int = 1, down: int = 1,
              padding: int | Sequence[int] = 0, gain: float = 1) -> torch.Tensor:
    """Per channel: insert ``up - 1`` zeros after each pixel, pad (negative = crop), convolve with
    the 2-D FIR filter ``f`` times ``gain``, keep every ``down``-th pixel.

    ``f`` must be separable, ``f = outer(taps_y, taps_x)``, as every filter ``setup_filter`` makes
    is; it is applied as two 1-D passes. ``padding`` is one int (all sides), ``(before, after)``
    (the same on both axes), or ``(x_before, x_after, y_before, y_after)``.
    """
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    x = F.pad(x, list(_padding4(padding)))
    if f is not None:
        # For f = outer(a, b): f.sum(0) = sum(a) b and f.sum(1) = a sum(b) / f.sum() = a / sum(a).
        x = _fir1d(x, f.sum(dim=0) * gain, dim=3)
        x = _fir1d(x, f.sum(dim=1) / f.sum(), dim=2)
    elif gain != 1:
        x = x * gain
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """Upsample by ``up`` with the FIR filter; output is exactly ``up`` times the input size.

    The gain ``up**2`` keeps the DC level (zero insertion leaves 1 of ``up**2`` pixels non-zero).
    """
    k = f.shape[-1]
    return upfirdn2d(x, f, up=up, padding=((k + up - 1) // 2, (k - up) // 2), gain=up ** 2)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2) -> torch.Tensor:
    """Low-pass with the FIR filter, then keep every ``down``-th pixel (size / ``down``)."""
    k = f.shape[-1]
    return upfirdn2d(x, f, down=down, padding=((k - down + 1) // 2, (k - down) // 2))


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1,
                    down: int = 1, padding: int = 0, groups: int = 1) -> torch.Tensor:
    """Convolution with optional 2x FIR up- or down-sampling; ``padding`` refers to the
    up-sampled image.

    Down-sampling filters first and then convolves with stride ``down``. Up-sampling applies ``w``
    as a transposed convolution (the weight is *not* flipped, matching NVlabs' ``flip_weight=False``
    for up-sampling layers, so converted weights keep their meaning) and then filters.
    """
    if up > 1 and down > 1:
        raise ValueError("conv2d_resample does either up- or down-sampling, not both")
    kw = w.shape[-1]
    if up == 1 and down == 1:
        return F.conv2d(x, w, padding=padding, groups=groups)
    fk = f.shape[-1]
    if down > 1:
        p0, p1 = padding + (fk - down + 1) // 2, padding + (fk - down) // 2
        if kw == 1:
            return F.conv2d(upfirdn2d(x, f, down=down, padding=(p0, p1)), w, groups=groups)
        return F.conv2d(upfirdn2d(x, f, padding=(p0, p1)), w, stride=down, groups=groups)
    p0, p1 = padding + (fk + up - 1) // 2, padding + (fk - up) // 2
    if kw == 1:
        return upfirdn2d(F.conv2d(x, w, groups=groups), f, up=up, padding=(p0, p1), gain=up ** 2)
    out_channels, in_per_group = w.shape[0], w.shape[1]
    w = w.reshape(groups, out_channels // groups, in_per_group, kw, kw).transpose(1, 2)
    w = w.reshape(groups * in_per_group, out_channels // groups, kw, kw)
    x = F.conv_transpose2d(x, w, stride=up, groups=groups)
    return upfirdn2d(x, f, padding=(p0 - (kw - 1), p1 - (kw - up)), gain=up ** 2)
