"""The mapping networks of NVlabs' TensorFlow code, which differ from stylegan2-ada-pytorch's
(``mapping.py``) in how labels enter and, for StyleGAN v1, where the activation gain sits.

* ``ConcatLabelMapping``, TF ``G_mapping`` of StyleGAN2 (configs B-D of 002_0a18e98dc55024d1.txt
  Table 1) and of StyleGAN v1: the label is embedded by a weight ~ N(0, 1) [c_dim -> z_dim] without
  bias or run-time scale, concatenated with z, and the concatenation is normalized once
  (``x / sqrt(mean(x^2) + 1e-8)``); the layers are StyleGAN2's (gain sqrt 2 after the lrelu).
* ``Stylegan1Mapping``, v1's ``G_mapping`` (``networks_stylegan.py``): the same input, and layers
  ``lrelu(x @ (W * sqrt(2) * lr_mul / sqrt(in)).T + b * lr_mul)`` with the gain inside the weight's
  run-time scale. That differs from StyleGAN2's ``sqrt(2) * lrelu(...)`` in the bias's scale, so in
  its learning dynamics, not in what the network can express.

A generator plugin picks one with its ``mapping_class`` attribute.
"""
from __future__ import annotations

import torch
from torch import nn

from .mapping import MappingNetwork
from .norms import normalize_2nd_moment
from .stylegan1_ops import LRELU_GAIN, DenseLayer


class LabelEmbedding(nn.Module):
    """``c @ W.T`` with W [features, c_dim] ~ N(0, 1): TF's ``LabelConcat`` weight, unscaled."""

    def __init__(self, c_dim: int, features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(features, c_dim))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return c.matmul(self.weight.to(c.dtype).t())


class ConcatLabelMapping(MappingNetwork):
    """TF ``G_mapping``: ``normalize(concat(z, c @ W_embed))``, then the layers."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, **kwargs):
        if c_dim and not z_dim:
            raise ValueError("ConcatLabelMapping embeds the label at z's width; it needs z_dim > 0")
        kwargs.setdefault("embed_features", z_dim)
        super().__init__(z_dim, c_dim, w_dim, num_ws, **kwargs)

    def make_embedding(self, c_dim: int, features: int) -> nn.Module:
        return LabelEmbedding(c_dim, features)

    def embed_inputs(self, z: torch.Tensor | None, c: torch.Tensor | None) -> torch.Tensor:
        x = z.to(torch.float32)
        if self.c_dim:
            x = torch.cat([x, self.embed(c.to(torch.float32))], dim=1)
        return normalize_2nd_moment(x)


class Stylegan1Mapping(ConcatLabelMapping):
    """StyleGAN v1's ``G_mapping``: concatenated label input, the lrelu gain inside the weight scale."""

    def make_layer(self, in_features: int, out_features: int, activation: str, lr_multiplier: float) -> nn.Module:
        if activation != "lrelu":
            raise ValueError(f"The StyleGAN v1 mapping network uses lrelu, got activation={activation!r}")
        return DenseLayer(in_features, out_features, gain=LRELU_GAIN, activation="lrelu", lr_multiplier=lr_multiplier)
