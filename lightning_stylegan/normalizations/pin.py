"""``pin`` normalization plugin: pixel-instance normalization (000_2d004fc061d5976e.txt Eq. 7).

``y = rho * PN(x) + (1 - rho) * IN(x)``, rho in [0, 1]^C trainable, initialised at 0 (so training
starts as vanilla StyleGAN) and clipped to [0, 1] after every optimizer step through
``lightning_stylegan.nn.norms.apply_constraints``; then the style affine transform.
"""
from ..nn.norms import PixelInstanceNorm as PixelInstanceNormLayer
from .base import FeatureNormalization


class PixelInstanceNorm(FeatureNormalization):
    """Pixel-instance norm: a learned per-channel blend of PN and IN, then the style affine."""

    api_version = 1

    def make_normalizer(self, channels: int) -> PixelInstanceNormLayer:
        return PixelInstanceNormLayer(channels)
