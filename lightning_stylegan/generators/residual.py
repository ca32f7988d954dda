"""``residual`` generator: residual blocks (002_0a18e98dc55024d1.txt Figure 7c).

``x <- (skip(x) + conv1(conv0(x))) / sqrt(2)``, where ``skip`` is a bias-free 1x1 conv with 2x
up-sampling; the 1/sqrt(2) cancels the doubled variance of the sum (footnote 3). Only the last
block converts to RGB.
"""
import math

from ..nn.layers import EqualizedConv2d
from .base import SynthesisBlock, SynthesisNetwork


class ResidualBlock(SynthesisBlock):
    def __init__(self, in_channels, out_channels, *, resample_filter, **kwargs):
        super().__init__(in_channels, out_channels, resample_filter=resample_filter, **kwargs)
        if in_channels:
            self.skip = EqualizedConv2d(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                        resample_filter=resample_filter)

    def forward(self, x, img, ws, last, **layer_kwargs):
        w_iter = iter(ws.unbind(dim=1))
        x = self.input(x, ws.shape[0])
        if self.in_channels:
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), **layer_kwargs)
            x = y + self.conv1(x, next(w_iter), gain=math.sqrt(0.5), **layer_kwargs)
        else:
            x = self.conv1(x, next(w_iter), **layer_kwargs)
        if last:
            img = self.torgb(x, next(w_iter), fused_modconv=layer_kwargs["fused_modconv"]).float()
        return x, img


class ResidualSynthesis(SynthesisNetwork):
    """Residual synthesis blocks with a 1x1 up-sampling skip, sums scaled by 1/sqrt(2)."""

    api_version = 1
    block_class = ResidualBlock
