"""The two kinds of layer of StyleGAN3's synthesis network (Karras et al. 2021, Sections 3.1-3.3 and
Appendix F; NVlabs' ``networks_stylegan3``), with NVlabs' parameter and buffer names.

* ``SynthesisInput``: Fourier features (Section 3.1, "we use Fourier features ... continuous"),
  ``sin(2 pi (<f_c, x> + phi_c))`` for ``C`` frequencies ``f_c`` drawn uniformly from the disk of
  radius ``bandwidth``, rotated and translated per sample by a learned affine map of ``w``
  (Appendix F: rotation from ``(r_c, r_s)`` normalized to unit length, translation ``(t_x, t_y)``;
  the affine is initialized to the identity), then by the user transform ``transform``; frequencies
  that such a transform pushes out of the band fade linearly to zero before the Nyquist rate. A
  learned ``C x C`` linear map follows.
* ``SynthesisLayer``: modulated convolution (StyleGAN2 Eqs. 1-3, after normalizing ``w`` and the
  styles to unit RMS) whose input is scaled by ``magnitude_ema ** -0.5``, the tracked mean square of
  the layer's input ("we normalize the input of each layer by an exponential moving average",
  Section 3.2), then the filtered leaky ReLU. ``ToRGBLayer`` is its linear 1x1, undemodulated form
  (styles scaled by ``1 / sqrt(in_channels)``), without filters.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lightning_stylegan.nn.layers import EqualizedLinear

from .filtered_lrelu import filtered_lrelu
from .filters import design_lowpass
from .schedule import LayerSpec

DEMOD_EPS = 1e-8


class SynthesisInput(nn.Module):
    """w [N, w_dim] -> Fourier features [N, channels, size, size] sampled at ``sampling_rate``."""

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.w_dim, self.channels, self.size = w_dim, channels, size
        self.sampling_rate, self.bandwidth = sampling_rate, bandwidth
        # Gaussian draws, their radii r compressed by r * exp(r^2 / 4) into the unit disk (NVlabs' init).
        freqs = torch.randn(channels, 2)
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        self.weight = nn.Parameter(torch.randn(channels, channels))
        self.affine = EqualizedLinear(w_dim, 4)
        with torch.no_grad():  # the identity transform at initialization
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand(channels) - 0.5)

    def sample_grid(self, device) -> torch.Tensor:
        """Pixel-center coordinates [size, size, 2] (x, y), in units where the image spans
        ``size / sampling_rate`` around the origin."""
        coords = (torch.arange(self.size, device=device, dtype=torch.float32) + 0.5 - self.size / 2) / self.sampling_rate
        y, x = torch.meshgrid(coords, coords, indexing="ij")
        return torch.stack([x, y], dim=-1)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        t = self.affine(w)  # (r_c, r_s, t_x, t_y)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        batch = w.shape[0]
        rotation = torch.eye(3, device=w.device).repeat(batch, 1, 1)  # the inverse rotation of the image
        rotation[:, 0, 0], rotation[:, 0, 1] = t[:, 0], -t[:, 1]
        rotation[:, 1, 0], rotation[:, 1, 1] = t[:, 1], t[:, 0]
        translation = torch.eye(3, device=w.device).repeat(batch, 1, 1)
        translation[:, 0, 2], translation[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = rotation @ translation @ self.transform.unsqueeze(0)
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ transforms[:, :2, 2:]).squeeze(2)
        freqs = self.freqs.unsqueeze(0) @ transforms[:, :2, :2]  # [N, C, 2]
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth)
                      / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        x = torch.einsum("hwk,nck->nhwc", self.sample_grid(w.device), freqs) + phases[:, None, None, :]
        x = torch.sin(x * (2 * math.pi)) * amplitudes[:, None, None, :]
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, size={self.size}, sampling_rate={self.sampling_rate:g}, "
                f"bandwidth={self.bandwidth:g}")


def _filter_buffer(taps: np.ndarray | None) -> torch.Tensor | None:
    return None if taps is None else torch.as_tensor(taps, dtype=torch.float32)


class SynthesisLayer(nn.Module):
    """x [N, in_channels, in_size, in_size], w [N, w_dim] -> [N, out_channels, out_size, out_size].

    The layer between ``previous`` and ``spec`` of the schedule: the convolution runs at the input
    rate, the non-linearity at ``lrelu_upsampling`` times the higher of the two rates (filters of
    ``filter_size`` taps per unit of the up/down factor, Kaiser-sinc, or jinc for down-sampling with
    ``use_radial_filters`` except in the critically sampled layers), then the output rate.
    """

    is_style_layer = True  # for lightning_stylegan.analysis.layers
    is_torgb = False

    def __init__(self, previous: LayerSpec, spec: LayerSpec, *, w_dim: int, conv_kernel: int = 3,
                 filter_size: int = 6, lrelu_upsampling: int = 2, use_radial_filters: bool = False,
                 conv_clamp: float | None = None, magnitude_ema_beta: float = 0.999):
        super().__init__()
        self.in_channels, self.out_channels = previous.channels, spec.channels
        self.in_size, self.out_size = previous.size, spec.size
        self.resolution = spec.size  # the side of the feature map (analysis tools)
        self.conv_kernel = 1 if self.is_torgb else conv_kernel
        self.conv_clamp, self.magnitude_ema_beta = conv_clamp, magnitude_ema_beta
        self.affine = EqualizedLinear(w_dim, self.in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(self.out_channels, self.in_channels, self.conv_kernel, self.conv_kernel))
        self.bias = nn.Parameter(torch.zeros(self.out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))

        rate = max(previous.sampling_rate, spec.sampling_rate) * (1 if self.is_torgb else lrelu_upsampling)
        self.up_factor = round(rate / previous.sampling_rate)
        self.down_factor = round(rate / spec.sampling_rate)
        if previous.sampling_rate * self.up_factor != rate or spec.sampling_rate * self.down_factor != rate:
            raise ValueError(f"sampling rates {previous.sampling_rate} -> {spec.sampling_rate} are not "
                             f"integer fractions of the non-linearity's rate {rate}")
        up_taps = filter_size * self.up_factor if self.up_factor > 1 and not self.is_torgb else 1
        down_taps = filter_size * self.down_factor if self.down_factor > 1 and not self.is_torgb else 1
        radial = use_radial_filters and not spec.critically_sampled
        self.register_buffer("up_filter", _filter_buffer(design_lowpass(
            up_taps, previous.cutoff, previous.half_width * 2, rate)))
        self.register_buffer("down_filter", _filter_buffer(design_lowpass(
            down_taps, spec.cutoff, spec.half_width * 2, rate, radial=radial)))
        # Padding of the up-sampled signal so that the output has out_size samples, centred on the
        # input's samples (Appendix C.3's symmetric interpretation: shift by half the up factor).
        total = (self.out_size - 1) * self.down_factor + 1
        total -= (self.in_size + self.conv_kernel - 1) * self.up_factor
        total += up_taps + down_taps - 2
        low = (total + self.up_factor) // 2
        self.padding = (low, total - low, low, total - low)

    def forward(self, x: torch.Tensor, w: torch.Tensor, update_emas: bool = False,
                fused_modconv: bool = False) -> torch.Tensor:
        if update_emas:
            mean_square = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(mean_square.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles / math.sqrt(self.in_channels * self.conv_kernel ** 2)
        x = modulated_conv(x, self.weight, styles, input_gain, demodulate=not self.is_torgb,
                           padding=self.conv_kernel - 1, fused=fused_modconv)
        gain, slope = (1.0, 1.0) if self.is_torgb else (math.sqrt(2), 0.2)
        return filtered_lrelu(x, self.up_filter, self.down_filter, self.bias, up=self.up_factor,
                              down=self.down_factor, padding=self.padding, gain=gain, slope=slope,
                              clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}x{self.in_size} -> {self.out_channels}x{self.out_size}, "
                f"kernel={self.conv_kernel}, up={self.up_factor}, down={self.down_factor}")


class ToRGBLayer(SynthesisLayer):
    """The last layer: linear, 1x1, styles scaled by 1 / sqrt(fan-in), no demodulation, no filters."""

    is_style_layer = False
    is_torgb = True


def modulated_conv(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, input_gain: torch.Tensor,
                   demodulate: bool = True, padding: int = 0, fused: bool = False) -> torch.Tensor:
    """StyleGAN3's modulated convolution: with ``demodulate``, ``weight`` and ``styles`` are first
    scaled to unit RMS (per output channel; over the whole style tensor), then StyleGAN2's Eq. 1
    modulation and Eq. 3 demodulation; the input is multiplied by ``input_gain``.

    ``fused``: one grouped convolution with per-sample weights (NVlabs' form); otherwise the styles
    scale the input of one shared convolution and the demodulation its output, the faster form on
    the CPU. The two are equal up to rounding.
    """
    batch, in_channels = styles.shape
    if demodulate:
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + DEMOD_EPS).rsqrt()  # [N, O]
    gains = styles * input_gain
    if not fused:
        x = F.conv2d(x * gains.to(x.dtype)[:, :, None, None], weight.to(x.dtype), padding=padding)
        return x * dcoefs.to(x.dtype)[:, :, None, None] if demodulate else x
    w = weight.unsqueeze(0) * styles[:, None, :, None, None]
    if demodulate:
        w = w * dcoefs[:, :, None, None, None]
    w = w * input_gain
    out_channels, kh, kw = weight.shape[0], weight.shape[2], weight.shape[3]
    x = F.conv2d(x.reshape(1, -1, *x.shape[2:]), w.reshape(-1, in_channels, kh, kw).to(x.dtype),
                 padding=padding, groups=batch)
    return x.reshape(batch, out_channels, *x.shape[2:])
