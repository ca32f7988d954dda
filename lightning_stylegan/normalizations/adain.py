"""``adain`` normalization plugin: AdaIN of StyleGAN v1, instance normalization then the style as
a per-channel affine transform.

Reference: IN, Eqs. 4-6 of 000_2d004fc061d5976e.txt; the source of StyleGAN v1's circular artifacts.
"""
from ..nn.norms import InstanceNorm
from .base import FeatureNormalization


class AdaIN(FeatureNormalization):
    """AdaIN (StyleGAN v1): instance normalization, then the style as a per-channel affine transform."""

    api_version = 1

    def make_normalizer(self, channels: int) -> InstanceNorm:
        return InstanceNorm()
