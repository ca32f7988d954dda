"""``original`` generator: the feed-forward synthesis network of PGGAN / StyleGAN v1
(002_0a18e98dc55024d1.txt Figure 7a, left column of Table 2): each block up-samples and convolves
twice; only the last block converts to RGB.
"""
from .base import SynthesisBlock, SynthesisNetwork


class OriginalBlock(SynthesisBlock):
    def forward(self, x, img, ws, **layer_kwargs):
        w_iter = iter(ws.unbind(dim=1))
        x = self.input(x, ws.shape[0])
        if self.in_channels:
            x = self.conv0(x, next(w_iter), **layer_kwargs)
        x = self.conv1(x, next(w_iter), **layer_kwargs)
        if self.is_last:
            img = self.torgb(x, next(w_iter), fused_modconv=layer_kwargs["fused_modconv"]).float()
        return x, img


class OriginalSynthesis(SynthesisNetwork):
    """Feed-forward synthesis (PGGAN / StyleGAN v1): the image comes from the last block only."""

    api_version = 1
    block_class = OriginalBlock
