"""``stylegan1`` discriminator: StyleGAN v1's ``D_basic`` as NVlabs' official TF code builds it
(``training/networks_stylegan.py``).

* ``b{r}.fromrgb`` (every resolution when progressive, else the input one): 1x1 conv + bias + lrelu;
* ``b{r}`` for r = R..8: ``conv0`` 3x3, then a [1,2,1] blur and ``conv1`` 3x3 with 2x2 box
  down-scaling (one stride-2 conv with the summed 4x4 kernel from 128 px, ``fused_scale='auto'``);
* ``b4``: minibatch stddev (group 4, 1 feature), ``conv`` 3x3, ``fc`` (dense to
  ``min(channel_base // 2, channel_max)``, v1's ``nf(0)``), ``out`` (dense to ``max(c_dim, 1)``);
* labels: the outputs times the (one-hot) labels, summed (v1's ``LabelSwitch``).

Every layer has v1's parametrization (weights ~ N(0, 1) scaled at run time by ``sqrt(2) / sqrt(fan_in)``,
1 / sqrt(fan_in) for ``out``; zero biases; lrelu without an output gain). A progressive fade-in of
resolution r blends the features entering ``b{r/2}``: ``lerp(fromrgb(box_down(img)), b{r}(...), alpha)``.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..generators.base import block_resolutions, channels_at
from ..nn.minibatch_std import MinibatchStd
from ..nn.stylegan1_ops import (BLUR_FILTER, Conv2dLayer, DenseLayer, blur2d, blur_kernel, downscale2d,
                                fused_scale_at)
from .base import Discriminator, label_switch


class Stylegan1DiscriminatorBlock(nn.Module):
    """``conv0`` (3x3), blur, ``conv1`` (3x3 + 2x box down), each with bias + lrelu; ``fromrgb``."""

    def __init__(self, in_channels: int, out_channels: int, *, resolution: int, img_channels: int,
                 has_fromrgb: bool, blur_filter: Sequence[float] | None = BLUR_FILTER, fused: bool = False):
        super().__init__()
        self.resolution, self.img_channels = resolution, img_channels
        if has_fromrgb:
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1)
        self.conv0 = Conv2dLayer(in_channels, in_channels, kernel_size=3)
        if blur_filter is not None:
            self.register_buffer("blur_filter", blur_kernel(blur_filter))
        self.conv1 = Conv2dLayer(in_channels, out_channels, kernel_size=3, down=True, fused=fused)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None):
        if x is None:  # the block the image enters
            x = self.fromrgb(img)
        x = self.conv0(x)
        if hasattr(self, "blur_filter"):
            x = blur2d(x, self.blur_filter)
        return self.conv1(x), None


class Stylegan1DiscriminatorEpilogue(nn.Module):
    """The 4x4 head: minibatch stddev, ``conv`` 3x3, ``fc``, ``out`` (``max(c_dim, 1)`` scores)."""

    def __init__(self, in_channels: int, fc_channels: int, out_features: int,
                 mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1, resolution: int = 4):
        super().__init__()
        self.resolution = resolution
        use_mbstd = mbstd_num_channels > 0 and (mbstd_group_size is None or mbstd_group_size > 1)
        self.mbstd = MinibatchStd(mbstd_group_size, mbstd_num_channels) if use_mbstd else None
        self.conv = Conv2dLayer(in_channels + (mbstd_num_channels if use_mbstd else 0), in_channels, kernel_size=3)
        self.fc = DenseLayer(in_channels * resolution ** 2, fc_channels)
        self.out = DenseLayer(fc_channels, out_features, gain=1.0, activation="linear")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        return self.out(self.fc(self.conv(x)))


class Stylegan1Discriminator(Discriminator):
    """StyleGAN v1 discriminator as NVlabs' TF D_basic: fromRGB + lrelu, blur + box-down convs, mbstd head, label switch."""

    api_version = 1

    def __init__(self, img_resolution: int, img_channels: int, c_dim: int = 0, channel_base: int = 16384,
                 channel_max: int = 512, mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1,
                 mapping_layers: int = 8, conv_clamp: float | None = None, progressive: bool = False,
                 resample_filter: Sequence[float] | None = BLUR_FILTER, fused_scale: bool | str = "auto"):
        nn.Module.__init__(self)  # v1's own layers; the forward (stages, fades) is Discriminator's
        del mapping_layers  # v1 conditions by selecting the label's score, without a label network
        if conv_clamp is not None:
            raise ConfigError(f"The stylegan1 discriminator topology has no conv_clamp (StyleGAN v1 does "
                              f"not clamp), got conv_clamp={conv_clamp}; leave model.discriminator.conv_clamp unset.")
        fused_scale_at(fused_scale, img_resolution)  # validates
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.progressive = progressive
        self.block_resolutions = block_resolutions(img_resolution)[:0:-1]  # R, ..., 8
        ch = {res: channels_at(res, channel_base, channel_max) for res in self.block_resolutions + [4, 2]}
        for res in self.block_resolutions:
            self.add_module(f"b{res}", Stylegan1DiscriminatorBlock(
                ch[res], ch[res // 2], resolution=res, img_channels=img_channels,
                has_fromrgb=progressive or res == img_resolution, blur_filter=resample_filter,
                fused=fused_scale_at(fused_scale, res)))
        self.b4 = Stylegan1DiscriminatorEpilogue(ch[4], ch[2], max(c_dim, 1), mbstd_group_size=mbstd_group_size,
                                                 mbstd_num_channels=mbstd_num_channels)

    def head(self, x, img, c):
        scores = self.b4(x)
        return label_switch(scores, c) if self.c_dim else scores

    def downsample_image(self, img: torch.Tensor, block) -> torch.Tensor:
        """2x2 box down-scaling (v1's image pyramid)."""
        return downscale2d(img)
