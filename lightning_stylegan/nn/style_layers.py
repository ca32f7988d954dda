"""Synthesis layers: one convolution plus how the style ``w`` enters and how features are normalized.

Normalization plugins hand these to generator topologies. Every style layer has the call signature
``layer(x, w, noise_mode='random', fused_modconv=True, gain=1)`` and every to-RGB layer
``torgb(x, w, fused_modconv=True)``, so any normalization fits any topology.

* ``ModulatedStyleLayer``: StyleGAN2 (Figure 2d) -- modulated conv, optional demodulation, then
  noise, bias, activation. Parameter names and shapes follow NVlabs' ``SynthesisLayer``.
* ``NormalizedStyleLayer``: StyleGAN v1 (Figure 2b) -- conv, noise, bias, activation, a feature
  normalization (IN for AdaIN, PN, PIN, or none), then the style as a per-channel affine transform.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .filters import DEFAULT_FILTER, conv2d_resample, setup_filter
from .layers import ACTIVATION_GAINS, EqualizedLinear, bias_act
from .modulated_conv import modulated_conv2d
from .noise import noise_input


class ModulatedStyleLayer(nn.Module):
    """StyleGAN2 synthesis layer: ``act(modconv(x, A(w)) + noise + b)`` (Eqs. 1-3)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 kernel_size: int = 3, up: int = 1, use_noise: bool = True, activation: str = "lrelu",
                 resample_filter: Sequence[float] = DEFAULT_FILTER, conv_clamp: float | None = None,
                 demodulate: bool = True):
        super().__init__()
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp, self.demodulate = activation, conv_clamp, demodulate
        self.padding = kernel_size // 2
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        # Demodulation makes the layer invariant to the weight scale; without it the equalized-lr
        # gain 1 / sqrt(fan_in) must be applied explicitly.
        self.weight_gain = 1.0 if demodulate else 1 / math.sqrt(in_channels * kernel_size ** 2)
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random",
                fused_modconv: bool = True, gain: float = 1.0) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        noise = None
        if self.use_noise:
            noise = noise_input(x.shape[0], self.noise_strength, self.noise_const, noise_mode)
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, demodulate=self.demodulate,
                             fused=fused_modconv)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, self.activation, ACTIVATION_GAINS[self.activation] * gain, clamp)


class ModulatedToRGB(nn.Module):
    """StyleGAN2 tRGB: 1x1 modulated conv *without* demodulation, then bias (Appendix B)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused_modconv)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class NormalizedStyleLayer(nn.Module):
    """StyleGAN v1 synthesis layer: ``A_s(w) * norm(act(conv(x) + noise + b)) + A_b(w)``.

    ``normalizer`` is IN for AdaIN (Huang & Belongie), PN, PIN (000_*.txt Eq. 7) or identity. The
    style affine ``A`` maps w to a per-channel scale (initialised at 1) and shift (at 0). Noise has
    one learned strength per feature map, as in StyleGAN v1.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 normalizer: nn.Module, kernel_size: int = 3, up: int = 1, use_noise: bool = True,
                 activation: str = "lrelu", resample_filter: Sequence[float] = DEFAULT_FILTER,
                 conv_clamp: float | None = None):
        super().__init__()
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros(out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.norm = normalizer
        self.affine = EqualizedLinear(w_dim, 2 * out_channels)
        with torch.no_grad():
            self.affine.bias[:out_channels] = 1.0  # scale starts at 1, shift at 0

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random",
                fused_modconv: bool = True, gain: float = 1.0) -> torch.Tensor:
        del fused_modconv  # nothing to fuse: the style does not touch the weights
        weight = (self.weight * self.weight_gain).to(x.dtype)
        x = conv2d_resample(x, weight, self.resample_filter, up=self.up, padding=self.padding)
        if self.use_noise:
            noise = noise_input(x.shape[0], self.noise_strength, self.noise_const, noise_mode)
            x = x + noise.to(x.dtype) if noise is not None else x
        x = bias_act(x, self.bias, self.activation)
        x = self.norm(x)
        scale, shift = self.affine(w).to(x.dtype).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        x = x * scale + shift
        if gain != 1:
            x = x * gain
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp * gain, self.conv_clamp * gain)
        return x


class PlainToRGB(nn.Module):
    """StyleGAN v1 / PGGAN tRGB: an unstyled 1x1 conv with bias. It takes ``w`` like every to-RGB
    layer, so the number of styles depends on the topology only, and ignores it.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None):
        super().__init__()
        del w_dim
        self.conv_clamp = conv_clamp
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        del w, fused_modconv
        x = conv2d_resample(x, (self.weight * self.weight_gain).to(x.dtype))
        return bias_act(x, self.bias, clamp=self.conv_clamp)
