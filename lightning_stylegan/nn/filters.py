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


def _depthwise_upfirdn2d(x: torch.Tensor, f: torch.Tensor, up: int, down: int,
                         padding: tuple[int, int, int, int]) -> torch.Tensor:
    """upfirdn2d as one depthwise convolution: transposed with stride ``up`` when up-sampling, so
    the inserted zeros are never multiplied, strided when down-sampling, so only the kept pixels
    are computed."""
    if up > 1 and x.device.type == "cpu" and (x.dtype in (torch.bfloat16, torch.float16)
                                              or torch.is_autocast_enabled("cpu")):
        # oneDNN has no fast reduced-precision depthwise transposed convolution: in bfloat16 it
        # took 8.7 ms for [8, 128, 16, 16] -> 32x32 and 2.3 ms for 4x4 -> 8x8, against 2.0 and
        # 0.07 ms in float32 (2 threads); the casts cost less than the difference.
        with torch.autocast("cpu", enabled=False):
            return _depthwise_upfirdn2d(x.float(), f.float(), up, down, padding).to(x.dtype)
    channels = x.shape[1]
    x0, x1, y0, y1 = padding
    kh, kw = f.shape
    weight = f.to(x.dtype)[None, None].expand(channels, 1, kh, kw)
    if up > 1:
        # conv_transpose2d with the unflipped filter = zero insertion + full convolution; the
        # padding then crops or extends the full result (length (n - 1) up + k) on each side.
        x = F.conv_transpose2d(x, weight, stride=up, groups=channels)
        x = F.pad(x, [x0 - (kw - 1), x1 + up - kw, y0 - (kh - 1), y1 + up - kh])
        return x[:, :, ::down, ::down] if down > 1 else x
    if x0 == x1 and y0 == y1 and x0 >= 0 and y0 >= 0:
        return F.conv2d(x, weight.flip([2, 3]), stride=down, padding=(y0, x0), groups=channels)
    return F.conv2d(F.pad(x, [x0, x1, y0, y1]), weight.flip([2, 3]), stride=down, groups=channels)


class _UpFirDn2d(torch.autograd.Function):
    """upfirdn2d whose gradient is again an upfirdn2d -- the filter flipped, up and down swapped,
    the padding that restores the input size -- so its backward and double backward (R1, path
    length) run the same fast depthwise convolution as its forward; torch's generic convolution
    double backward is several times slower (benchmarks/fir.py)."""

    @staticmethod
    def forward(ctx, x, f, up, down, padding):
        ctx.save_for_backward(f)
        ctx.up, ctx.down, ctx.padding, ctx.size = up, down, padding, x.shape[2:]
        return _depthwise_upfirdn2d(x, f, up, down, padding)

    @staticmethod
    def backward(ctx, grad):
        f, = ctx.saved_tensors
        adjoint = []
        for size, k, (before, after) in ((ctx.size[1], f.shape[1], ctx.padding[:2]),
                                          (ctx.size[0], f.shape[0], ctx.padding[2:])):
            length = size * ctx.up + before + after - k + 1  # before keeping every down-th
            kept = -(-length // ctx.down)
            adjoint += [k - 1 - before, length - kept * ctx.down + k - 1 - after]
        return _UpFirDn2d.apply(grad, f.flip([0, 1]), ctx.down, ctx.up, tuple(adjoint)), None, None, None, None


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up: int = 1, down: int = 1,
              padding: int | Sequence[int] = 0, gain: float = 1) -> torch.Tensor:
    """Per channel: insert ``up - 1`` zeros after each pixel, pad (negative = crop), convolve with
    the 2-D FIR filter ``f`` [kh, kw] times ``gain``, keep every ``down``-th pixel.

    ``padding`` is one int (all sides), ``(before, after)`` (the same on both axes), or
    ``(x_before, x_after, y_before, y_after)``.
    """
    if f is None:
        f = torch.ones(1, 1, device=x.device)
    return _UpFirDn2d.apply(x, f * gain, up, down, _padding4(padding))


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
                    down: int = 1, padding: int = 0, groups: int = 1,
                    bias: torch.Tensor | None = None) -> torch.Tensor:
    """Convolution with optional 2x FIR up- or down-sampling, plus ``bias``; ``padding`` refers
    to the up-sampled image.

    Down-sampling filters first and then convolves with stride ``down``. Up-sampling applies ``w``
    as a transposed convolution (the weight is *not* flipped, matching NVlabs' ``flip_weight=False``
    for up-sampling layers, so converted weights keep their meaning) and then filters. The bias
    rides in the last convolution where there is one (no separate pass over the output).
    """
    if up > 1 and down > 1:
        raise ValueError("conv2d_resample does either up- or down-sampling, not both")
    kw = w.shape[-1]
    if up == 1 and down == 1:
        return F.conv2d(x, w, bias, padding=padding, groups=groups)
    fk = f.shape[-1]
    if down > 1:
        p0, p1 = padding + (fk - down + 1) // 2, padding + (fk - down) // 2
        if kw == 1:
            return F.conv2d(upfirdn2d(x, f, down=down, padding=(p0, p1)), w, bias, groups=groups)
        return F.conv2d(upfirdn2d(x, f, padding=(p0, p1)), w, bias, stride=down, groups=groups)
    p0, p1 = padding + (fk + up - 1) // 2, padding + (fk - up) // 2
    if kw == 1:
        x = upfirdn2d(F.conv2d(x, w, groups=groups), f, up=up, padding=(p0, p1), gain=up ** 2)
    else:
        out_channels, in_per_group = w.shape[0], w.shape[1]
        w = w.reshape(groups, out_channels // groups, in_per_group, kw, kw).transpose(1, 2)
        w = w.reshape(groups * in_per_group, out_channels // groups, kw, kw)
        x = F.conv_transpose2d(x, w, stride=up, groups=groups)
        x = upfirdn2d(x, f, padding=(p0 - (kw - 1), p1 - (kw - up)), gain=up ** 2)
    return x + bias.reshape(1, -1, 1, 1) if bias is not None else x
