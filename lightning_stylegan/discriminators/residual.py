"""``residual`` discriminator: residual blocks (002_0a18e98dc55024d1.txt Figure 7c, configs E, F).

``x <- (skip(x) + conv1(conv0(x))) / sqrt(2)``, ``skip`` a bias-free 1x1 conv with FIR 2x
down-sampling; the 1/sqrt(2) cancels the doubled variance of the sum (footnote 3).
"""
import math

from ..nn.layers import EqualizedConv2d
from .base import Discriminator, DiscriminatorBlock


class ResidualBlock(DiscriminatorBlock):
    def __init__(self, in_channels, tmp_channels, out_channels, *, resample_filter, **kwargs):
        super().__init__(in_channels, tmp_channels, out_channels, resample_filter=resample_filter, **kwargs)
        self.skip = EqualizedConv2d(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    resample_filter=resample_filter)

    def forward(self, x, img):
        if x is None:  # the block the image enters
            x = self.fromrgb(img)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return y + x, None


class ResidualDiscriminator(Discriminator):
    """Residual discriminator (StyleGAN2 config E/F): 1x1 down-sampling skips, sums / sqrt(2)."""

    api_version = 1
    block_class = ResidualBlock
