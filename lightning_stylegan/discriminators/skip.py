"""``skip`` discriminator: input skips (002_0a18e98dc55024d1.txt Figure 7b).

Every block, and the 4x4 epilogue, adds fromRGB of the image down-sampled with the [1,3,3,1]
filter to its resolution.
"""
from ..nn.filters import downsample2d
from .base import Discriminator, DiscriminatorBlock


class SkipBlock(DiscriminatorBlock):
    def forward(self, x, img):
        y = self.fromrgb(img)
        x = y if x is None else x + y
        return self.conv1(self.conv0(x)), downsample2d(img, self.resample_filter)


class SkipDiscriminator(Discriminator):
    """Input skips: the down-sampled image feeds every block through its own fromRGB."""

    api_version = 1
    block_class = SkipBlock

    def fade_in(self, new, low_block, img_low, alpha):
        # low_block adds fromRGB of the down-sampled image itself: fade the new features in.
        return new * alpha

    def has_fromrgb(self, resolution: int, img_resolution: int) -> bool:
        return True
