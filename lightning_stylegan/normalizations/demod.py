"""``demod`` normalization plugin: StyleGAN2 weight modulation and demodulation (Eqs. 1-3), tRGB modulated only.

Reference: 002_0a18e98dc55024d1.txt Section 2.2 and Appendix B.
"""
from ..nn.filters import DEFAULT_FILTER
from ..nn.style_layers import ModulatedStyleLayer
from .base import Normalization


class Demodulation(Normalization):
    """StyleGAN2 weight modulation and demodulation (Eqs. 1-3), tRGB modulated only."""

    api_version = 1
    demodulate = True

    def style_layer(self, in_channels, out_channels, *, w_dim, resolution, up=1, kernel_size=3,
                    use_noise=True, resample_filter=DEFAULT_FILTER, conv_clamp=None):
        return ModulatedStyleLayer(in_channels, out_channels, w_dim, resolution,
                                   kernel_size=kernel_size, up=up, use_noise=use_noise,
                                   resample_filter=resample_filter, conv_clamp=conv_clamp,
                                   demodulate=self.demodulate)
