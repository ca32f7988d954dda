"""``r3gan`` generator plugin: R3GAN's G (Huang et al. 2024, Section 3, Config E), z (and a label
embedding) straight to images, without a mapping network or W (``w_space = False``).

    x_4 = GenerativeBasis([z, EmbeddingLayer(c)])           the 4x4 basis scaled by a linear map
    x_r = blocks_r(UpsampleLayer(x_{r/2}))                   per stage r = 8, ..., R
    img = AggregationLayer(x_R)                              1x1 convolution to img_channels

Every residual block is fix-up initialized with the total number of G's blocks (``layers``). The
state dict is keyed as the official ``R3GAN.Networks.Generator``'s (``MainLayers.*``,
``AggregationLayer.*``, ``EmbeddingLayer.*``); see the README for the rule.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Convolution, GenerativeBasis, ResidualBlock, Stage, UpsampleLayer, msr_init
from .stages import embedding_dim, stage_specs

KEY = "model.generator.synthesis_options"


class R3GANGenerator(nn.Module):
    """R3GAN's generator: generative basis, residual stages of grouped inverted bottlenecks, no W."""

    api_version = 1
    w_space = False
    description = "R3GAN's generator (Huang et al. 2024): z -> 4x4 basis -> grouped residual stages, no W"

    def __init__(self, z_dim: int, c_dim: int, img_resolution: int, img_channels: int,
                 WidthPerStage: list[int] | None = None, CardinalityPerStage: list[int] | None = None,
                 BlocksPerStage: list[int] | None = None, ExpansionFactor: int = 2,
                 ConditionEmbeddingDimension: int | None = None, KernelSize: int = 3,
                 ResamplingFilter: tuple[float, ...] = (1, 2, 1), FP16Stages: tuple[int, ...] = ()):
        """The official ``Generator``'s options, per stage from 4x4 up (README). A list left None
        takes the official presets' rule (``stages``); ``ConditionEmbeddingDimension`` None is
        ``z_dim`` with labels, as the official ``train.py``; ``FP16Stages`` run in bfloat16 on CUDA."""
        super().__init__()
        self.z_dim, self.c_dim = z_dim, c_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        specs = stage_specs(img_resolution, widths=WidthPerStage, cardinalities=CardinalityPerStage,
                            blocks=BlocksPerStage, expansion=ExpansionFactor, kernel_size=KernelSize,
                            fp16_stages=FP16Stages, key=KEY, from_input=False)
        embedding = embedding_dim(c_dim, ConditionEmbeddingDimension, z_dim, KEY)
        total_blocks = sum(spec.blocks for spec in specs)
        stages = []
        for i, spec in enumerate(specs):
            transition = (GenerativeBasis(z_dim + embedding, spec.width) if i == 0 else
                          UpsampleLayer(specs[i - 1].width, spec.width, ResamplingFilter))
            blocks = [ResidualBlock(spec.width, spec.cardinality, ExpansionFactor, KernelSize, total_blocks)
                      for _ in range(spec.blocks)]
            stages.append(Stage([transition, *blocks], spec.reduced_precision))
        self.MainLayers = nn.ModuleList(stages)
        self.AggregationLayer = Convolution(specs[-1].width, img_channels, 1)
        self.EmbeddingLayer = msr_init(nn.Linear(c_dim, embedding, bias=False)) if c_dim else None

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """z [N, z_dim], c [N, c_dim] (one-hot; needed when c_dim > 0) -> images [N, img_channels,
        R, R] in z's dtype."""
        dtype, x = z.dtype, z
        if self.EmbeddingLayer is not None:
            if c is None:
                raise ValueError(f"this R3GAN generator is conditional (c_dim={self.c_dim}): pass labels c")
            x = torch.cat([z, F.linear(c.to(dtype), self.EmbeddingLayer.weight.to(dtype))], dim=1)
        for stage in self.MainLayers:
            x = stage(x, dtype)
        return self.AggregationLayer(x).to(dtype)
