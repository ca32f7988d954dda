"""The interface of a normalization plugin: how a synthesis layer applies its style and normalizes.

A plugin is a subclass of ``Normalization`` published in the entry-point group
``lightning_stylegan.normalizations``, with class attributes ``api_version`` (the registry API it
targets, see ``lightning_stylegan.registry.API_VERSION``) and ``description`` (one line). Generator
topologies call ``style_layer`` for each 3x3 convolution and ``to_rgb`` for each output layer; the
returned modules must accept ``layer(x, w, noise_mode, fused_modconv, gain)`` and
``torgb(x, w, fused_modconv)`` (see ``lightning_stylegan.nn.style_layers``).
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

from ..nn.filters import DEFAULT_FILTER
from ..nn.style_layers import ModulatedToRGB, NormalizedStyleLayer, PlainToRGB


class Normalization:
    """Base class of normalization plugins; subclasses override ``style_layer`` (and ``to_rgb``)."""

    description = ""

    def style_layer(self, in_channels: int, out_channels: int, *, w_dim: int, resolution: int,
                    up: int = 1, kernel_size: int = 3, use_noise: bool = True,
                    resample_filter: Sequence[float] = DEFAULT_FILTER,
                    conv_clamp: float | None = None) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} must implement style_layer()")

    def to_rgb(self, in_channels: int, out_channels: int, *, w_dim: int,
               conv_clamp: float | None = None) -> nn.Module:
        """StyleGAN2's modulated 1x1 output layer without demodulation, unless overridden."""
        return ModulatedToRGB(in_channels, out_channels, w_dim, conv_clamp=conv_clamp)


class FeatureNormalization(Normalization):
    """StyleGAN v1 family: conv, noise, bias, activation, ``make_normalizer(C)``, style affine.

    Subclasses define ``make_normalizer``; their output layer is v1's unstyled 1x1 conv.
    """

    def make_normalizer(self, channels: int) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} must implement make_normalizer()")

    def style_layer(self, in_channels, out_channels, *, w_dim, resolution, up=1, kernel_size=3,
                    use_noise=True, resample_filter=DEFAULT_FILTER, conv_clamp=None):
        return NormalizedStyleLayer(in_channels, out_channels, w_dim, resolution,
                                    self.make_normalizer(out_channels), kernel_size=kernel_size,
                                    up=up, use_noise=use_noise, resample_filter=resample_filter,
                                    conv_clamp=conv_clamp)

    def to_rgb(self, in_channels, out_channels, *, w_dim, conv_clamp=None):
        return PlainToRGB(in_channels, out_channels, w_dim, conv_clamp=conv_clamp)
