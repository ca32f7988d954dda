"""``pixel`` normalization plugin: Pixel normalization, then the style as a per-channel affine transform.

Reference: PN, Eq. 3 of 000_2d004fc061d5976e.txt; the variant without circular artifacts.
"""
from ..nn.norms import PixelNorm as PixelNormLayer
from .base import FeatureNormalization


class PixelNorm(FeatureNormalization):
    """Pixel normalization, then the style as a per-channel affine transform."""

    api_version = 1

    def make_normalizer(self, channels: int) -> PixelNormLayer:
        return PixelNormLayer()
