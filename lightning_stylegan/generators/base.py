"""What every synthesis topology shares: the block layout, channel counts and the split of ws.

A generator plugin is a subclass of ``SynthesisNetwork`` with ``api_version``, ``description``,
a ``block_class`` (a ``SynthesisBlock`` subclass whose ``forward`` is the topology) and the rule
``has_torgb(resolution)``. The layout follows StyleGAN2 (002_0a18e98dc55024d1.txt Appendix B,
Figure 7) and NVlabs' stylegan2-ada-pytorch parameter naming:

* blocks ``b4, b8, ..., b{R}``; ``b4`` starts from a learned 4x4 constant ~ N(0, 1) and has one
  style layer ``conv1``; every other block has ``conv0`` (2x up-sampling) and ``conv1``;
* channels ``min(channel_base // res, channel_max)``;
* one w per style layer plus one for the last to-RGB layer (``num_ws``); a block's to-RGB layer
  shares its w with the next block's first layer.

For progressive growing (``progressive=True``) every block has a to-RGB layer, and
``forward(ws, resolution=R, alpha=a)`` runs the blocks up to R and fades the newest one in:
``lerp(upsample(image at R/2), image at R, a)`` (PGGAN Section 3; StyleGAN2 configs A-D). The
image re-sampling of the fade, and of the reals the training loop fades alike, is
``upsample_image`` / ``downsample_image`` (FIR [1,3,3,1] by default; a topology may override them).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..nn.filters import DEFAULT_FILTER, downsample2d, setup_filter, upsample2d
from ..nn.memory_format import to_preferred_memory_format
from ..nn.noise import NOISE_MODES

MIN_RESOLUTION, MAX_RESOLUTION = 4, 1024


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at one resolution: ``min(channel_base // resolution, channel_max)``."""
    return min(channel_base // resolution, channel_max)


def block_resolutions(img_resolution: int) -> list[int]:
    """[4, 8, ..., img_resolution]; raises a clear error for a non-power-of-two."""
    if not (MIN_RESOLUTION <= img_resolution <= MAX_RESOLUTION) or img_resolution & (img_resolution - 1):
        raise ValueError(f"img_resolution must be a power of two between {MIN_RESOLUTION} and "
                         f"{MAX_RESOLUTION}, got {img_resolution}. Resize your data or pick e.g. 32, 64, 256.")
    return [2 ** i for i in range(2, img_resolution.bit_length())]


class SynthesisBlock(nn.Module):
    """One resolution's layers; subclasses implement ``forward(x, img, ws, last, **layer_kwargs)``.

    ``ws`` holds ``num_conv + num_torgb`` styles; ``last`` says the image is wanted from this
    block (the output resolution, or the one being faded out). ``forward`` returns the features
    and the image so far (None until a to-RGB layer has run).
    """

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, resolution: int,
                 img_channels: int, has_torgb: bool, normalization,
                 resample_filter: Sequence[float] = DEFAULT_FILTER, conv_clamp: float | None = None,
                 use_noise: bool = True):
        super().__init__()
        self.in_channels, self.w_dim, self.resolution = in_channels, w_dim, resolution
        self.img_channels = img_channels
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        layer_kwargs = dict(w_dim=w_dim, resolution=resolution, use_noise=use_noise,
                            resample_filter=resample_filter, conv_clamp=conv_clamp)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = normalization.style_layer(in_channels, out_channels, up=2, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = normalization.style_layer(out_channels, out_channels, **layer_kwargs)
        self.num_conv += 1
        if has_torgb:
            self.torgb = normalization.to_rgb(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1

    def input(self, x: torch.Tensor | None, batch_size: int) -> torch.Tensor:
        """The block's input: the learned constant for ``b4``, else the previous features."""
        if self.in_channels == 0:
            return to_preferred_memory_format(self.const.unsqueeze(0).repeat(batch_size, 1, 1, 1))
        expected = (self.in_channels, self.resolution // 2, self.resolution // 2)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"Block b{self.resolution} expects features of shape [N, *{expected}], "
                             f"got {tuple(x.shape)}")
        return x

    def main_layers(self, x: torch.Tensor | None, ws: torch.Tensor, **layer_kwargs):
        """The feed-forward path ``[conv0 (up)] -> conv1``; returns the features and an iterator
        over the styles not yet used (the to-RGB style)."""
        w_iter = iter(ws.unbind(dim=1))
        x = self.input(x, ws.shape[0])
        if self.in_channels:
            x = self.conv0(x, next(w_iter), **layer_kwargs)
        return self.conv1(x, next(w_iter), **layer_kwargs), w_iter

    def forward(self, x, img, ws, last: bool, **layer_kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> images [N, img_channels, R, R] (in [-1, 1] once trained)."""

    block_class: type[SynthesisBlock] = SynthesisBlock
    # A generator plugin works in W (mapping network, styles, truncation); one that maps z and labels
    # straight to images, forward(z, c), sets False (see ``networks.Generator``).
    w_space: bool = True

    def has_torgb(self, resolution: int, img_resolution: int) -> bool:
        """Whether the block at ``resolution`` has a to-RGB layer (only the last one by default)."""
        return resolution == img_resolution

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, normalization,
                 channel_base: int = 32768, channel_max: int = 512, use_noise: bool = True,
                 resample_filter: Sequence[float] = DEFAULT_FILTER, conv_clamp: float | None = None,
                 progressive: bool = False):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.progressive = progressive
        self.block_resolutions = block_resolutions(img_resolution)
        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels_at(res // 2, channel_base, channel_max) if res > 4 else 0
            is_last = res == img_resolution
            block = self.block_class(
                in_channels, channels_at(res, channel_base, channel_max), w_dim=w_dim, resolution=res,
                img_channels=img_channels, has_torgb=progressive or self.has_torgb(res, img_resolution),
                normalization=normalization, resample_filter=resample_filter, conv_clamp=conv_clamp,
                use_noise=use_noise)
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            self.add_module(f"b{res}", block)

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", fused_modconv: bool | None = None,
                resolution: int | None = None, alpha: float = 1.0, update_emas: bool = False) -> torch.Tensor:
        """``fused_modconv=None`` fuses at inference on CUDA (NVlabs' default) and nowhere else:
        on the CPU the non-fused form runs 2-4x faster in channels_last, as it keeps one shared
        weight (``benchmarks/train_step.py`` reports both forms).

        ``resolution`` (default: the full one) and ``alpha`` < 1 select a progressive-growing
        stage: images come out at that resolution, the newest block faded in by ``alpha``.

        ``update_emas`` is True in the one pass per step in which a synthesis network may update
        running statistics of its activations (StyleGAN3's magnitude EMA): the D main pass, as in
        NVlabs' stylegan3. The built-in topologies keep none.
        """
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        resolution = resolution or self.img_resolution
        self._check_stage(resolution, alpha)
        if fused_modconv is None:
            fused_modconv = not self.training and ws.device.type == "cuda"
        ws = ws.to(torch.float32)
        x = img = low = None
        w_idx = 0
        for block in self.blocks():
            if block.resolution > resolution:
                break
            fading_out = alpha < 1 and block.resolution == resolution // 2
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            x, img = block(x, img, block_ws, last=block.resolution == resolution or fading_out,
                           noise_mode=noise_mode, fused_modconv=fused_modconv)
            low = img if fading_out else low
            w_idx += block.num_conv
        if alpha < 1:
            img = torch.lerp(self.upsample_image(low), img, alpha)
        return img

    def upsample_image(self, img: torch.Tensor) -> torch.Tensor:
        """2x up-sampling of an image for progressive fades: the FIR filter of ``b4``."""
        return upsample2d(img, self.b4.resample_filter)

    def downsample_image(self, img: torch.Tensor) -> torch.Tensor:
        """2x down-sampling of an image (the reals of a growth stage): the FIR filter of ``b4``."""
        return downsample2d(img, self.b4.resample_filter)

    def _check_stage(self, resolution: int, alpha: float) -> None:
        if resolution not in self.block_resolutions:
            raise ValueError(f"resolution must be one of {self.block_resolutions}, got {resolution}")
        if (resolution < self.img_resolution or alpha < 1) and not self.progressive:
            raise ValueError("This synthesis network was built without progressive=True: it has no "
                             "to-RGB layers below the output resolution to grow from.")
        if not 0 <= alpha <= 1 or (alpha < 1 and resolution == 4):
            raise ValueError(f"alpha must be in [0, 1] (and 1 at 4x4), got {alpha} at {resolution}")
