"""Per-pixel noise inputs (StyleGAN Section 2 "B"; StyleGAN2 Appendix B: one shared scaling
factor for all feature maps, where StyleGAN v1 learned one per feature map).
"""
from __future__ import annotations

import torch

NOISE_MODES = ("random", "const", "none")


def noise_input(batch_size: int, strength: torch.Tensor, noise_const: torch.Tensor,
                noise_mode: str) -> torch.Tensor | None:
    """The noise to add to a layer's output [N, C, H, W] for ``noise_mode``, or None for ``'none'``.

    ``'random'``: fresh N(0, 1) per sample and pixel; ``'const'``: the layer's fixed map
    ``noise_const`` [H, W] (deterministic images). Both are broadcast over channels and scaled by
    ``strength`` (a scalar, or one value per channel).
    """
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
    if noise_mode == "none":
        return None
    strength = strength.reshape(1, -1, 1, 1) if strength.ndim else strength
    if noise_mode == "const":
        return noise_const * strength
    h, w = noise_const.shape
    return torch.randn(batch_size, 1, h, w, device=noise_const.device) * strength
