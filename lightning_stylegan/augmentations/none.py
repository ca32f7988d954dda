"""``none`` augmentation plugin: D sees the images as they are (StyleGAN2 without ADA)."""
import torch

from .base import Augmentation


class NoAugmentation(Augmentation):
    """No augmentation: the identity."""

    api_version = 1

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images
