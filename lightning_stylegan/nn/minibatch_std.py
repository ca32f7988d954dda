"""Minibatch standard deviation (PGGAN Section 3; StyleGAN2 Appendix B "minibatch standard
deviation layer at the end of the discriminator").
"""
from __future__ import annotations

import torch
from torch import nn


class MinibatchStd(nn.Module):
    """Append ``num_channels`` feature maps holding, for each group of ``group_size`` samples, the
    standard deviation over the group averaged over channels and pixels.

    Samples ``i`` and ``i + k * (N / G)`` form a group (the batch is split into G interleaved
    slices), as in NVlabs' implementation; ``group_size=None`` uses the whole batch.
    """

    def __init__(self, group_size: int | None = 4, num_channels: int = 1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        if n % g:
            raise ValueError(f"Minibatch-stddev group size {g} must divide the batch size {n}.")
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # [n, F, c, H, W]
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
