"""``stylegan1`` generator: the synthesis network of StyleGAN v1 as NVlabs' official TF code builds
it (``training/networks_stylegan.py``, ``G_synthesis``), with the feature normalizations of the v1
family (``adain`` = v1's instance norm, ``pixel``, ``pin``, ``none``).

Every layer ends in v1's *layer epilogue*: per-channel-scaled noise, bias, lrelu, the
normalization, then the style ``x * (A_s(w) + 1) + A_b(w)`` (``style_mod``; both affine parts start
at zero). The layers, each with its own style (``num_ws = 2 log2 R - 2``, none for to-RGB):

* ``b4.const_epilogue`` (style 0): the epilogue applied to the learned constant (initialised at
  ones), *before* any convolution;
* ``b4.conv1`` (style 1): 3x3 conv, epilogue;
* ``b{r}.conv0`` (style 2 log2 r - 4): nearest 2x up-scaling, 3x3 conv, [1,2,1] blur, epilogue
  (up-scaling and conv fused into a transposed conv from 128 px, ``fused_scale='auto'``);
* ``b{r}.conv1`` (style 2 log2 r - 3): 3x3 conv, epilogue;
* ``b{r}.torgb``: an unstyled 1x1 conv + bias.

Convs keep v1's parametrization: weights ~ N(0, 1) scaled at run time by ``sqrt(2) / sqrt(fan_in)``
(1 / sqrt(fan_in) for to-RGB and the style affine), zero biases, lrelu without an output gain.
Progressive fades up-scale the lower-resolution image with nearest neighbours, and the reals are
box-down-scaled (``upsample_image`` / ``downsample_image``), as v1's ``structure='linear'`` and its
training loop do. Feature maps: ``min(channel_base // r, channel_max)`` (v1's ``fmap_base`` is
``channel_base / 2``, so the default 16384 is v1's 8192). The mapping network is v1's (``nn/tf_mapping.py``: labels concatenated with z
before one normalization, the lrelu gain inside the weight scale).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..nn.layers import LRELU_SLOPE, EqualizedLinear
from ..nn.memory_format import to_preferred_memory_format
from ..nn.noise import noise_input
from ..nn.style_layers import PlainToRGB
from ..nn.tf_mapping import Stylegan1Mapping
from ..nn.stylegan1_ops import (BLUR_FILTER, LRELU_GAIN, blur2d, blur_kernel, downscale2d, fused_scale_at,
                                upscale2d, upscale2d_conv2d)
from .base import SynthesisNetwork


class Stylegan1Layer(nn.Module):
    """One v1 layer: [conv: 3x3, or nearest 2x up + 3x3 + blur], then the layer epilogue
    ``style_mod(norm(lrelu(x + noise * s + b)), w)``. Without ``in_channels`` (the 4x4 constant's
    layer) there is no conv, only the epilogue."""

    is_style_layer = True  # found by lightning_stylegan.analysis.layers

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 normalizer: nn.Module, *, up: bool = False, kernel_size: int = 3, use_noise: bool = True,
                 blur_filter: Sequence[float] | None = BLUR_FILTER, fused: bool = False):
        super().__init__()
        self.in_channels, self.out_channels, self.resolution = in_channels, out_channels, resolution
        self.up, self.use_noise, self.fused = up, use_noise, fused
        if in_channels:
            self.weight_gain = LRELU_GAIN / math.sqrt(in_channels * kernel_size ** 2)
            self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        elif up:
            raise ValueError("an up-sampling layer needs in_channels")
        if up and blur_filter is not None:
            self.register_buffer("blur_filter", blur_kernel(blur_filter))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros(out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.norm = normalizer
        self.affine = EqualizedLinear(w_dim, 2 * out_channels)  # [scale - 1, shift], both start at 0

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random",
                fused_modconv: bool = True, gain: float = 1.0) -> torch.Tensor:
        del fused_modconv  # the style does not touch the weights
        if self.in_channels:
            weight = (self.weight * self.weight_gain).to(x.dtype)
            if self.up:
                x = upscale2d_conv2d(x, weight, self.fused)
                if hasattr(self, "blur_filter"):
                    x = blur2d(x, self.blur_filter)
            else:
                x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
        if self.use_noise:
            noise = noise_input(x.shape[0], self.noise_strength, self.noise_const, noise_mode)
            x = x + noise.to(x.dtype) if noise is not None else x
        x = F.leaky_relu(x + self.bias.to(x.dtype).reshape(1, -1, 1, 1), LRELU_SLOPE)
        x = self.norm(x)
        scale, shift = self.affine(w).to(x.dtype).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        x = x * (scale + 1) + shift
        return x * gain if gain != 1 else x

    def extra_repr(self) -> str:
        return (f"{self.in_channels}->{self.out_channels}, resolution={self.resolution}, up={self.up}, "
                f"fused={self.fused}")


class Stylegan1Block(nn.Module):
    """One resolution of v1's G: ``const`` + ``const_epilogue`` + ``conv1`` at 4x4, else ``conv0``
    (up) + ``conv1``; ``torgb`` where the image may come out. Two styles, none for to-RGB."""

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, resolution: int,
                 img_channels: int, has_torgb: bool, normalization,
                 resample_filter: Sequence[float] | None = BLUR_FILTER, conv_clamp: float | None = None,
                 use_noise: bool = True):
        super().__init__()
        del conv_clamp  # refused by Stylegan1Synthesis
        self.in_channels, self.w_dim, self.resolution = in_channels, w_dim, resolution
        self.img_channels = img_channels
        self.num_conv, self.num_torgb = 2, 0
        make = normalization.make_normalizer
        kwargs = dict(w_dim=w_dim, resolution=resolution, use_noise=use_noise, blur_filter=resample_filter)
        if in_channels == 0:
            self.const = nn.Parameter(torch.ones(out_channels, resolution, resolution))
            self.const_epilogue = Stylegan1Layer(0, out_channels, normalizer=make(out_channels), **kwargs)
        else:
            self.conv0 = Stylegan1Layer(in_channels, out_channels, normalizer=make(out_channels), up=True,
                                        fused=fused_scale_at("auto", resolution), **kwargs)
        self.conv1 = Stylegan1Layer(out_channels, out_channels, normalizer=make(out_channels), **kwargs)
        if has_torgb:
            self.torgb = PlainToRGB(out_channels, img_channels, w_dim)

    def forward(self, x, img, ws, last: bool, noise_mode: str = "random", fused_modconv: bool = True):
        del fused_modconv
        w0, w1 = ws.unbind(dim=1)
        if self.in_channels == 0:
            const = to_preferred_memory_format(self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1))
            x = self.const_epilogue(const, w0, noise_mode)
        else:
            expected = (self.in_channels, self.resolution // 2, self.resolution // 2)
            if tuple(x.shape[1:]) != expected:
                raise ValueError(f"Block b{self.resolution} expects features of shape [N, *{expected}], "
                                 f"got {tuple(x.shape)}")
            x = self.conv0(x, w0, noise_mode)
        x = self.conv1(x, w1, noise_mode)
        if last:
            img = self.torgb(x, None).float()
        return x, img


class Stylegan1Synthesis(SynthesisNetwork):
    """StyleGAN v1 synthesis as NVlabs' TF G_synthesis: epilogue on the constant, nearest-up + blur, a style per layer."""

    api_version = 1
    block_class = Stylegan1Block
    mapping_class = Stylegan1Mapping

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, normalization,
                 channel_base: int = 16384, channel_max: int = 512, use_noise: bool = True,
                 resample_filter: Sequence[float] | None = BLUR_FILTER, conv_clamp: float | None = None,
                 progressive: bool = False, fused_scale: bool | str = "auto"):
        if not callable(getattr(normalization, "make_normalizer", None)):
            raise ConfigError(
                f"The stylegan1 generator topology needs a feature normalization (a normalization plugin "
                f"with make_normalizer(channels): adain, pixel, pin, none), but "
                f"{type(normalization).__name__} builds its own style layers (modulated convs). Set "
                f"model.generator.normalization to adain (StyleGAN v1), or use the original, skip or "
                f"residual topology with this normalization.")
        if conv_clamp is not None:
            raise ConfigError(f"The stylegan1 generator topology has no conv_clamp (StyleGAN v1 does not "
                              f"clamp), got conv_clamp={conv_clamp}; leave model.generator.conv_clamp unset.")
        fused_scale_at(fused_scale, img_resolution)  # validates
        super().__init__(w_dim, img_resolution, img_channels, normalization, channel_base=channel_base,
                         channel_max=channel_max, use_noise=use_noise, resample_filter=resample_filter,
                         conv_clamp=None, progressive=progressive)
        for block in self.blocks():
            if hasattr(block, "conv0"):
                block.conv0.fused = fused_scale_at(fused_scale, block.resolution)

    def upsample_image(self, img: torch.Tensor) -> torch.Tensor:
        """Nearest-neighbour 2x up-scaling (v1's fade-in of a new resolution)."""
        return upscale2d(img)

    def downsample_image(self, img: torch.Tensor) -> torch.Tensor:
        """2x2 box down-scaling (v1's image pyramid of the reals)."""
        return downscale2d(img)
