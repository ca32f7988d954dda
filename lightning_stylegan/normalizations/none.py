"""``none`` normalization plugin: No normalization; the style still enters as a per-channel affine transform.

Use: the ablation baseline that isolates what a normalization contributes.
"""
from ..nn.norms import Identity
from .base import FeatureNormalization


class NoNormalization(FeatureNormalization):
    """No normalization; the style still enters as a per-channel affine transform."""

    api_version = 1

    def make_normalizer(self, channels: int) -> Identity:
        return Identity()
