"""``original`` generator: the feed-forward synthesis network of PGGAN / StyleGAN v1
(002_0a18e98dc55024d1.txt Figure 7a, left column of Table 2): each block up-samples and convolves
twice; only the last block converts to RGB.
"""
from .base import SynthesisBlock, SynthesisNetwork


class OriginalBlock(SynthesisBlock):
    def forward(self, x, img, ws, last, **layer_kwargs):
        x, w_iter = self.main_layers(x, ws, **layer_kwargs)
        if last:
            img = self.torgb(x, next(w_iter), fused_modconv=layer_kwargs["fused_modconv"]).float()
        return x, img


class OriginalSynthesis(SynthesisNetwork):
    """Feed-forward synthesis (PGGAN / StyleGAN v1): the image comes from the last block only."""

    api_version = 1
    block_class = OriginalBlock
