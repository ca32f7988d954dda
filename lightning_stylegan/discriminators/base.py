"""What every discriminator topology shares: block layout, epilogue, conditioning.

A discriminator plugin is a subclass of ``Discriminator`` with ``api_version``, ``description``, a
``block_class`` (a ``DiscriminatorBlock`` subclass whose ``forward`` is the topology) and the rule
``has_fromrgb(resolution)``. The layout follows StyleGAN2 (002_0a18e98dc55024d1.txt Figure 7,
Appendix B) and NVlabs' stylegan2-ada-pytorch parameter naming:

* blocks ``b{R}, ..., b8``, each ``conv0`` (3x3) then ``conv1`` (3x3, 2x FIR down-sampling), from
  ``min(channel_base // res, channel_max)`` to the next resolution's channels;
* the epilogue ``b4``: minibatch-stddev, 3x3 conv, fully connected, output;
* conditional models map the label c to ``cmap`` and output the projection ``<out, cmap> / sqrt(dim)``.

For progressive growing (``progressive=True``) every block has a fromRGB layer; an image of a
lower resolution R enters at block R, and ``alpha`` < 1 fades that block in: the features entering
block R/2 blend the new block's output with the lower-resolution path of the down-sampled image
(``fade_in``; PGGAN Section 3).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..generators.base import block_resolutions, channels_at
from ..nn.filters import DEFAULT_FILTER, downsample2d, setup_filter
from ..nn.layers import EqualizedConv2d, EqualizedLinear
from ..nn.memory_format import to_preferred_memory_format
from ..nn.mapping import MappingNetwork
from ..nn.minibatch_std import MinibatchStd


class DiscriminatorBlock(nn.Module):
    """One resolution; subclasses implement ``forward(x, img) -> (x, img)``."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, *, resolution: int,
                 img_channels: int, has_fromrgb: bool, activation: str = "lrelu",
                 resample_filter: Sequence[float] = DEFAULT_FILTER, conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, img_channels
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        if has_fromrgb:
            self.fromrgb = EqualizedConv2d(img_channels, tmp_channels, kernel_size=1,
                                           activation=activation, conv_clamp=conv_clamp)
        self.conv0 = EqualizedConv2d(tmp_channels, tmp_channels, kernel_size=3, activation=activation,
                                     conv_clamp=conv_clamp)
        self.conv1 = EqualizedConv2d(tmp_channels, out_channels, kernel_size=3, activation=activation,
                                     down=2, resample_filter=resample_filter, conv_clamp=conv_clamp)

    def forward(self, x, img):
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")


class DiscriminatorEpilogue(nn.Module):
    """The 4x4 head: [fromrgb for input skips], minibatch-stddev, conv, fc, out, [projection]."""

    def __init__(self, in_channels: int, cmap_dim: int, img_channels: int, has_fromrgb: bool,
                 mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1,
                 activation: str = "lrelu", conv_clamp: float | None = None, resolution: int = 4,
                 fc_channels: int | None = None, out_features: int | None = None):
        super().__init__()
        self.in_channels, self.cmap_dim, self.resolution = in_channels, cmap_dim, resolution
        fc_channels = in_channels if fc_channels is None else fc_channels
        if has_fromrgb:
            self.fromrgb = EqualizedConv2d(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStd(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels else None
        self.conv = EqualizedConv2d(in_channels + mbstd_num_channels, in_channels, kernel_size=3,
                                    activation=activation, conv_clamp=conv_clamp)
        self.fc = EqualizedLinear(in_channels * resolution ** 2, fc_channels, activation=activation)
        self.out = EqualizedLinear(fc_channels, out_features or cmap_dim or 1)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None,
                cmap: torch.Tensor | None) -> torch.Tensor:
        if hasattr(self, "fromrgb"):
            y = self.fromrgb(img)
            x = y if x is None else x + y
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))
        if self.cmap_dim:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """img [N, img_channels, R, R] (and labels c [N, c_dim]) -> logits [N, 1]."""

    block_class: type[DiscriminatorBlock] = DiscriminatorBlock

    def has_fromrgb(self, resolution: int, img_resolution: int) -> bool:
        """Whether the block at ``resolution`` reads the image (only the first one by default)."""
        return resolution == img_resolution

    def fade_in(self, new: torch.Tensor, low_block: DiscriminatorBlock, img_low: torch.Tensor,
                alpha: float) -> torch.Tensor:
        """The features entering ``low_block`` while the block above it fades in: a blend of the
        new block's output and the features ``low_block`` makes from the down-sampled image."""
        return torch.lerp(low_block.fromrgb(img_low), new, alpha)

    def __init__(self, img_resolution: int, img_channels: int, c_dim: int = 0,
                 channel_base: int = 32768, channel_max: int = 512, mbstd_group_size: int | None = 4,
                 mbstd_num_channels: int = 1, cmap_dim: int | None = None, mapping_layers: int = 8,
                 resample_filter: Sequence[float] = DEFAULT_FILTER, conv_clamp: float | None = None,
                 progressive: bool = False):
        super().__init__()
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.progressive = progressive
        self.block_resolutions = block_resolutions(img_resolution)[:0:-1]  # R, ..., 8
        ch = {res: channels_at(res, channel_base, channel_max) for res in self.block_resolutions + [4, 2]}
        cmap_dim = (ch[4] if cmap_dim is None else cmap_dim) if c_dim else 0
        for res in self.block_resolutions:
            in_channels = ch[res] if res < img_resolution else 0
            self.add_module(f"b{res}", self.block_class(
                in_channels, ch[res], ch[res // 2], resolution=res, img_channels=img_channels,
                has_fromrgb=progressive or self.has_fromrgb(res, img_resolution), resample_filter=resample_filter,
                conv_clamp=conv_clamp))
        self.build_head(ch, c_dim, cmap_dim, mapping_layers, img_channels=img_channels,
                        has_fromrgb=self.has_fromrgb(4, img_resolution), mbstd_group_size=mbstd_group_size,
                        mbstd_num_channels=mbstd_num_channels, conv_clamp=conv_clamp)

    def build_head(self, channels: dict[int, int], c_dim: int, cmap_dim: int, mapping_layers: int,
                   **epilogue_options) -> None:
        """The 4x4 epilogue ``b4`` and, for labels, StyleGAN2's projection: ``mapping`` embeds c
        into ``cmap_dim`` features."""
        if c_dim:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None,
                                          num_layers=mapping_layers, w_avg_beta=None)
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim, **epilogue_options)

    def head(self, x: torch.Tensor | None, img: torch.Tensor | None, c: torch.Tensor | None) -> torch.Tensor:
        """Logits from the features entering the 4x4 epilogue (the counterpart of ``build_head``)."""
        cmap = self.mapping(None, c) if self.c_dim else None
        return self.b4(x, img, cmap)

    def downsample_image(self, img: torch.Tensor, block: DiscriminatorBlock) -> torch.Tensor:
        """2x down-sampling of the image for the lower-resolution path of a fade: ``block``'s FIR filter."""
        return downsample2d(img, block.resample_filter)

    def check_input(self, img: torch.Tensor, alpha: float) -> None:
        """Refuses an image size that is no stage of this discriminator, and alpha < 1 where
        nothing fades."""
        resolution = img.shape[-1]
        stages = [res for res in self.block_resolutions if self.progressive or res == self.img_resolution]
        if img.ndim != 4 or img.shape[1] != self.img_channels or img.shape[2] != resolution \
                or resolution not in stages:
            sizes = " or ".join(str(res) for res in stages)
            raise ValueError(f"The discriminator expects images of shape [N, {self.img_channels}, R, R] "
                             f"with R = {sizes}, got {tuple(img.shape)}")
        if not 0 <= alpha <= 1 or (alpha < 1 and (not self.progressive or resolution == 8)):
            raise ValueError(f"alpha < 1 needs a progressive discriminator above 8x8, got {alpha} at {resolution}")

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, alpha: float = 1.0) -> torch.Tensor:
        """Logits for images at the full resolution or, when progressive, at a lower stage of
        growth (the image size selects it), the newest block faded in by ``alpha``."""
        self.check_input(img, alpha)
        resolution = img.shape[-1]
        img = to_preferred_memory_format(img)
        source, x = img, None
        for res in self.block_resolutions:
            if res > resolution:
                continue
            block = getattr(self, f"b{res}")
            if alpha < 1 and res == resolution // 2:
                img = self.downsample_image(source, block)
                x = self.fade_in(x, block, img, alpha)
            x, img = block(x, img)
        return self.head(x, img, c)


def label_switch(scores: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """StyleGAN v1's conditioning (Mescheder et al. 2018, as NVlabs' TF ``D_basic`` / ``D_stylegan``):
    one score per class [N, c_dim], the (one-hot) label's selected: ``sum(scores * c)`` [N, 1]."""
    if c is None or c.ndim != 2 or c.shape != scores.shape:
        raise ValueError(f"This discriminator is conditional: c must have shape {list(scores.shape)}, "
                         f"got {None if c is None else list(c.shape)}")
    return (scores * c.to(scores.dtype)).sum(dim=1, keepdim=True)
