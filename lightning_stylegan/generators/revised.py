"""``revised`` generator: NVlabs' TF ``G_synthesis_stylegan_revised`` (StyleGAN2 repository,
``training/networks_stylegan2.py``), the network of configs B-D of 002_0a18e98dc55024d1.txt Table 1:
StyleGAN's feed-forward synthesis with the revised style block of Figure 2d (``original`` topology;
weight demodulation with the default ``demod`` normalization), grown progressively as the TF code
grows it.

What it changes from ``original``, as the TF code does:

* a progressive fade up-scales the lower-resolution image with nearest neighbours
  (``upsample_2d`` with its default box kernel), and the reals of a growth stage are box
  down-scaled (the TF training loop's image pyramid), not FIR-filtered;
* the mapping network is TF ``G_mapping``: labels are embedded by an unscaled N(0, 1) weight,
  concatenated with z and normalized once (``nn/tf_mapping.py``).
"""
from __future__ import annotations

import torch

from ..nn.stylegan1_ops import downscale2d, upscale2d
from ..nn.tf_mapping import ConcatLabelMapping
from .original import OriginalBlock, OriginalSynthesis


class RevisedSynthesis(OriginalSynthesis):
    """StyleGAN2 configs B-D (TF G_synthesis_stylegan_revised): original topology, nearest / box fades, TF mapping."""

    api_version = 1
    block_class = OriginalBlock
    mapping_class = ConcatLabelMapping

    def upsample_image(self, img: torch.Tensor) -> torch.Tensor:
        """Nearest-neighbour 2x up-scaling (the TF code's fade-in of a new resolution)."""
        return upscale2d(img)

    def downsample_image(self, img: torch.Tensor) -> torch.Tensor:
        """2x2 box down-scaling (the TF training loop's image pyramid of the reals)."""
        return downscale2d(img)
