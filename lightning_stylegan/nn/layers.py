"""Equalized-learning-rate layers (PGGAN; StyleGAN2 Appendix B "equalized learning rate for all
trainable parameters") and the fused bias + activation that follows every StyleGAN layer.

Weights are stored as N(0, 1) / lr_multiplier and scaled at run time by
``lr_multiplier / sqrt(fan_in)``; biases by ``lr_multiplier``. With Adam, this makes every layer
learn at the same speed and lets the mapping network learn 100x slower (lr_multiplier = 0.01).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F

from .filters import DEFAULT_FILTER, conv2d_resample, setup_filter

LRELU_SLOPE = 0.2

# Gains that keep the expected signal variance through each activation (StyleGAN2 Section 2.2:
# "we scale our activation functions so that they retain the expected signal variance").
ACTIVATION_GAINS = {"linear": 1.0, "relu": math.sqrt(2), "lrelu": math.sqrt(2)}


def activate(x: torch.Tensor, activation: str, in_place: bool = False) -> torch.Tensor:
    """``act(x)`` without gain; ``in_place`` overwrites ``x`` (only for a tensor no backward needs)."""
    if activation == "lrelu":
        return F.leaky_relu_(x, LRELU_SLOPE) if in_place else F.leaky_relu(x, LRELU_SLOPE)
    if activation == "relu":
        return F.relu_(x) if in_place else F.relu(x)
    return x


def bias_act(x: torch.Tensor, bias: torch.Tensor | None, activation: str = "linear",
             gain: float | None = None, clamp: float | None = None) -> torch.Tensor:
    """``clamp(act(x + bias) * gain, -clamp, clamp)``; ``gain`` defaults to the activation's gain.

    Computed as ``act(gain * x + gain * bias)`` (equal for gain > 0, as relu and lrelu are
    positively homogeneous; other gains take the plain order): one pass over ``x`` for bias and
    gain, the activation in place on that new tensor -- two passes of memory traffic, not three.
    """
    if activation not in ACTIVATION_GAINS:
        raise ValueError(f"Unknown activation {activation!r}; use one of {sorted(ACTIVATION_GAINS)}")
    gain = ACTIVATION_GAINS[activation] if gain is None else gain
    if gain <= 0 and activation != "linear":
        return bias_act(bias_act(x, bias, activation, gain=1), None, gain=gain, clamp=clamp)
    fresh = True  # whether x is a tensor made here, which the activation may overwrite
    if bias is not None:
        x = torch.add(bias.to(x.dtype).reshape([1, -1] + [1] * (x.ndim - 2)) * gain, x, alpha=gain)
    elif gain != 1:
        x = x * gain
    else:
        fresh = False
    x = activate(x, activation, in_place=fresh)
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


class EqualizedLinear(nn.Module):
    """Fully connected layer, ``act(x @ (W * lr_mul / sqrt(in)).T + b * lr_mul)``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 activation: str = "linear", lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias * self.bias_gain if self.bias is not None else None
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.to(x.dtype).unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, self.activation)

    def extra_repr(self) -> str:
        return f"in={self.weight.shape[1]}, out={self.weight.shape[0]}, activation={self.activation}"


class EqualizedConv2d(nn.Module):
    """Convolution with equalized lr, optional FIR 2x up/down-sampling, bias and activation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1,
                 resample_filter: Sequence[float] = DEFAULT_FILTER, conv_clamp: float | None = None):
        super().__init__()
        self.activation = activation
        self.up, self.down = up, down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        # act(conv(x, W) + b) * g = act(conv(x, g W) + g b) for g > 0: the gain and the bias
        # ride in the convolution, the activation runs in place on its output.
        if gain <= 0:
            raise ValueError(f"EqualizedConv2d needs a positive gain, got {gain}")
        act_gain = ACTIVATION_GAINS[self.activation] * gain
        w = (self.weight * (self.weight_gain * act_gain)).to(x.dtype)
        b = (self.bias * act_gain).to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding, bias=b)
        x = activate(x, self.activation, in_place=True)
        return x.clamp(-self.conv_clamp * gain, self.conv_clamp * gain) if self.conv_clamp is not None else x

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}->{o}, kernel={k}, up={self.up}, down={self.down}, activation={self.activation}"
