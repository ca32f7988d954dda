"""``revised`` discriminator: NVlabs' TF ``D_stylegan`` (StyleGAN2 repository,
``training/networks_stylegan2.py``), StyleGAN's discriminator rebuilt from StyleGAN2's layers for
configs B-D of 002_0a18e98dc55024d1.txt Table 1, grown progressively as the TF code grows it.

What it changes from ``original``, as the TF code does:

* a progressive fade feeds the lower-resolution fromRGB a 2x2 box down-scaled image
  (``naive_downsample_2d``), not an FIR-filtered one; the blocks keep the [1,3,3,1] FIR down-sampling;
* the 4x4 head's dense layer has ``min(channel_base // 2, channel_max)`` features (TF ``nf(0)``)
  and the output one score per class, the label's selected (``label_switch``), instead of
  StyleGAN2's projection onto a label mapping network.
"""
from __future__ import annotations

import torch

from ..nn.stylegan1_ops import downscale2d
from .base import DiscriminatorEpilogue, label_switch
from .original import OriginalBlock, OriginalDiscriminator


class RevisedDiscriminator(OriginalDiscriminator):
    """StyleGAN2 configs B-D (TF D_stylegan): original topology, box fades, nf(0) dense, label switch."""

    api_version = 1
    block_class = OriginalBlock

    def build_head(self, channels, c_dim, cmap_dim, mapping_layers, **epilogue_options) -> None:
        self.b4 = DiscriminatorEpilogue(channels[4], 0, fc_channels=channels[2],
                                        out_features=max(c_dim, 1), **epilogue_options)

    def head(self, x, img, c):
        scores = self.b4(x, img, None)
        return label_switch(scores, c) if self.c_dim else scores

    def downsample_image(self, img: torch.Tensor, block) -> torch.Tensor:
        """2x2 box down-scaling (TF ``naive_downsample_2d``)."""
        return downscale2d(img)
