"""The re-sampling ops and equalized-lr layers of StyleGAN v1 (NVlabs' TF ``networks_stylegan.py``),
in plain torch.

v1 re-samples differently from StyleGAN2's FIR filtering (``filters.py``):

* up-sampling is nearest-neighbour (each pixel repeated 2x2), followed in the generator by a
  3x3 conv and a [1,2,1] x [1,2,1] / 16 blur; from 128 px up the up-sampling and conv are one
  transposed conv with the 3x3 kernel summed over its four 2x2 shifts (``fused_scale='auto'``),
  which equals the separate ops with the kernel rotated by 180 degrees (see ``upscale2d_conv2d``);
* down-sampling is a 2x2 box average; in the discriminator a [1,2,1] blur, a 3x3 conv and the box
  average, fused from 128 px into one stride-2 conv with the summed (and quartered) 4x4 kernel;
* progressive fades re-sample images with nearest up-scaling and box down-scaling.

The layers keep v1's parametrization: the activation gain (sqrt 2 for lrelu) sits in the weight's
run-time scale ``gain / sqrt(fan_in)``, not after the activation as in StyleGAN2, and every bias
starts at zero. All convs pad with zeros ("SAME").
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F

from .layers import LRELU_SLOPE

BLUR_FILTER = (1, 2, 1)
LRELU_GAIN = math.sqrt(2)


def fused_scale_at(fused_scale: bool | str, resolution: int) -> bool:
    """v1's ``fused_scale``: True, False, or ``'auto'`` = fused when the larger side of the
    re-sampling is at least 128 px (G: the output of the up-sampling; D: its input)."""
    if fused_scale == "auto":
        return resolution >= 128
    if isinstance(fused_scale, bool):
        return fused_scale
    raise ValueError(f"fused_scale must be True, False or 'auto', got {fused_scale!r}")


def upscale2d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Nearest-neighbour up-scaling: every pixel repeated ``factor`` x ``factor`` times."""
    if factor == 1:
        return x
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1).expand(n, c, h, factor, w, factor)
    return x.reshape(n, c, h * factor, w * factor)


def downscale2d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Box down-scaling: the mean of each ``factor`` x ``factor`` tile."""
    return x if factor == 1 else F.avg_pool2d(x, factor)


def blur_kernel(taps: Sequence[float] = BLUR_FILTER) -> torch.Tensor:
    """The 2-D low-pass kernel: outer product of the taps, normalized to sum 1."""
    f = torch.as_tensor(list(taps), dtype=torch.float64)
    if f.ndim != 1 or f.numel() == 0:
        raise ValueError(f"blur taps must be a non-empty 1-D sequence, got {list(taps)!r}")
    f = torch.outer(f, f)
    return (f / f.sum()).to(torch.float32)


def blur2d(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Depthwise correlation with ``kernel`` [k, k], zero padding, same size out ("SAME")."""
    k = kernel.shape[-1]
    c = x.shape[1]
    x = F.pad(x, [(k - 1) // 2, k // 2, (k - 1) // 2, k // 2])
    weight = kernel.to(x.dtype).reshape(1, 1, k, k).expand(c, 1, k, k)
    return F.conv2d(x, weight, groups=c)


def _summed_shifts(weight: torch.Tensor) -> torch.Tensor:
    """The k x k kernel summed over its four one-pixel shifts: a (k+1) x (k+1) kernel."""
    w = F.pad(weight, [1, 1, 1, 1])
    return w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]


def upscale2d_conv2d(x: torch.Tensor, weight: torch.Tensor, fused: bool) -> torch.Tensor:
    """``conv(upscale2d(x), weight)`` (weight [out, in, k, k], odd k, already scaled); ``fused``
    is v1's fused op: one stride-2 transposed conv with the summed (k+1)^2 kernel, taken as TF's
    ``conv2d_transpose`` takes it (unflipped). That equals the separate ops with the kernel rotated
    by 180 degrees, not with ``weight`` itself: a reparametrization, exactly as in NVlabs' code."""
    k = weight.shape[-1]
    if not fused:
        return F.conv2d(upscale2d(x), weight, padding=k // 2)
    return F.conv_transpose2d(x, _summed_shifts(weight).transpose(0, 1), stride=2, padding=(k - 1) // 2)


def conv2d_downscale2d(x: torch.Tensor, weight: torch.Tensor, fused: bool) -> torch.Tensor:
    """``downscale2d(conv(x, weight))``; ``fused`` computes the same as one stride-2 conv with
    the summed kernel / 4."""
    k = weight.shape[-1]
    if not fused:
        return downscale2d(F.conv2d(x, weight, padding=k // 2))
    return F.conv2d(x, _summed_shifts(weight) * 0.25, stride=2, padding=(k - 1) // 2)


class Conv2dLayer(nn.Module):
    """v1's ``act(conv(x, W * gain / sqrt(fan_in)) + b)`` with optional fused or separate 2x box
    down-scaling (``down=True``: the D's ``conv2d_downscale2d``). Weight [out, in, k, k] ~ N(0, 1)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = LRELU_GAIN,
                 activation: str = "lrelu", down: bool = False, fused: bool = False):
        super().__init__()
        if activation not in ("lrelu", "linear"):
            raise ValueError(f"activation must be 'lrelu' or 'linear', got {activation!r}")
        self.activation, self.down, self.fused = activation, down, fused
        self.weight_gain = gain / math.sqrt(in_channels * kernel_size ** 2)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        if self.down:
            x = conv2d_downscale2d(x, w, self.fused)
        else:
            x = F.conv2d(x, w, padding=w.shape[-1] // 2)
        x = x + self.bias.to(x.dtype).reshape(1, -1, 1, 1)
        return F.leaky_relu(x, LRELU_SLOPE) if self.activation == "lrelu" else x

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}->{o}, kernel={k}, down={self.down}, fused={self.fused}, activation={self.activation}"


class DenseLayer(nn.Module):
    """v1's ``act(flatten(x) @ (W * gain * lr_mul / sqrt(fan_in)).T + b * lr_mul)``; W [out, in] ~
    N(0, 1 / lr_mul^2) (``get_weight`` with ``use_wscale``; ``lr_multiplier`` 0.01 in the mapping)."""

    def __init__(self, in_features: int, out_features: int, gain: float = LRELU_GAIN,
                 activation: str = "lrelu", lr_multiplier: float = 1.0):
        super().__init__()
        if activation not in ("lrelu", "linear"):
            raise ValueError(f"activation must be 'lrelu' or 'linear', got {activation!r}")
        self.activation = activation
        self.weight_gain = gain * lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        bias = (self.bias * self.bias_gain).to(x.dtype).unsqueeze(0)
        x = torch.addmm(bias, x, (self.weight * self.weight_gain).to(x.dtype).t())
        return F.leaky_relu(x, LRELU_SLOPE) if self.activation == "lrelu" else x

    def extra_repr(self) -> str:
        return f"in={self.weight.shape[1]}, out={self.weight.shape[0]}, activation={self.activation}"
