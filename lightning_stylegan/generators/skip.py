"""``skip`` generator: output skips (002_0a18e98dc55024d1.txt Figure 7b, configs E and F).

Every block has a to-RGB layer; the image is the sum of all of them, each lower-resolution image
up-sampled with the [1,3,3,1] filter before the next block adds its contribution.
"""
from ..nn.filters import upsample2d
from .base import SynthesisBlock, SynthesisNetwork


class SkipBlock(SynthesisBlock):
    def forward(self, x, img, ws, last, **layer_kwargs):
        x, w_iter = self.main_layers(x, ws, **layer_kwargs)
        y = self.torgb(x, next(w_iter), fused_modconv=layer_kwargs["fused_modconv"]).float()
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


class SkipSynthesis(SynthesisNetwork):
    """Output skips (StyleGAN2 config E/F): the image is the up-sampled sum of every block's tRGB."""

    api_version = 1
    block_class = SkipBlock

    def has_torgb(self, resolution: int, img_resolution: int) -> bool:
        return True
