"""``original`` discriminator: the feed-forward discriminator of PGGAN / StyleGAN v1
(002_0a18e98dc55024d1.txt Figure 7a): fromRGB at the input resolution, then two convolutions per
block, the second down-sampling.
"""
from .base import Discriminator, DiscriminatorBlock


class OriginalBlock(DiscriminatorBlock):
    def forward(self, x, img):
        if x is None:  # the block the image enters
            x = self.fromrgb(img)
        return self.conv1(self.conv0(x)), None


class OriginalDiscriminator(Discriminator):
    """Feed-forward discriminator (PGGAN / StyleGAN v1): the image enters at the first block only."""

    api_version = 1
    block_class = OriginalBlock
