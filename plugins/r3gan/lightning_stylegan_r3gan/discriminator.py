"""``r3gan`` discriminator plugin: R3GAN's D (Huang et al. 2024, Section 3, Config E), G's mirror image.

    x_R = ExtractionLayer(img)                               1x1 convolution from img_channels
    x_{r/2} = DownsampleLayer(blocks_r(x_r))                 per stage r = R, ..., 8
    h = DiscriminativeBasis(blocks_4(x_4))                   [N, 1], or [N, E] with labels
    logit = h, or <h, EmbeddingLayer(c)> with labels         the projection discriminator

Every residual block is fix-up initialized with the total number of D's blocks. The label
embedding is initialized with gain 1 / sqrt(E), so the projection starts at unit scale. The state
dict is keyed as the official ``R3GAN.Networks.Discriminator``'s; see the README for the rule.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lightning_stylegan.errors import ConfigError

from .layers import Convolution, DiscriminativeBasis, DownsampleLayer, ResidualBlock, Stage, msr_init
from .stages import embedding_dim, stage_specs

KEY = "model.discriminator.topology_options"


class R3GANDiscriminator(nn.Module):
    """R3GAN's discriminator: residual stages of grouped inverted bottlenecks, discriminative basis,
    label projection; no minibatch stddev, no growth."""

    api_version = 1
    description = "R3GAN's discriminator (Huang et al. 2024): grouped residual stages -> 4x4 basis -> projection"

    def __init__(self, img_resolution: int, img_channels: int, c_dim: int = 0, progressive: bool = False,
                 channel_base: int | None = None, channel_max: int = 512, mbstd_group_size: int | None = 4,
                 mbstd_num_channels: int = 1, mapping_layers: int = 8, conv_clamp: float | None = None,
                 WidthPerStage: list[int] | None = None, CardinalityPerStage: list[int] | None = None,
                 BlocksPerStage: list[int] | None = None, ExpansionFactor: int = 2,
                 ConditionEmbeddingDimension: int | None = None, KernelSize: int = 3,
                 ResamplingFilter: tuple[float, ...] = (1, 2, 1), FP16Stages: tuple[int, ...] = ()):
        """The StyleGAN options every discriminator plugin gets are accepted; R3GAN uses ``c_dim``
        and refuses ``progressive``. ``channel_base``, ``channel_max``, ``mbstd_group_size``,
        ``mbstd_num_channels``, ``mapping_layers`` and ``conv_clamp`` do not apply (its widths are
        ``WidthPerStage``, it has no minibatch stddev, label mapping network or clamping). R3GAN's
        own options (``model.discriminator.topology_options``) are the official ``Discriminator``'s,
        per stage from the input (R x R) down; a list left None takes the presets' rule
        (``stages``), ``ConditionEmbeddingDimension`` None is the 4x4 stage's width, as the official
        ``train.py``; ``FP16Stages`` run in bfloat16 on CUDA."""
        super().__init__()
        if progressive:
            raise ConfigError("The discriminator plugin 'r3gan' scores full-resolution images only and cannot "
                              "grow progressively; train it with model.growth none")
        self.img_resolution, self.img_channels, self.c_dim = img_resolution, img_channels, c_dim
        specs = stage_specs(img_resolution, widths=WidthPerStage, cardinalities=CardinalityPerStage,
                            blocks=BlocksPerStage, expansion=ExpansionFactor, kernel_size=KernelSize,
                            fp16_stages=FP16Stages, key=KEY, from_input=True)
        embedding = embedding_dim(c_dim, ConditionEmbeddingDimension, specs[-1].width, KEY)
        total_blocks = sum(spec.blocks for spec in specs)
        stages = []
        for i, spec in enumerate(specs):
            blocks = [ResidualBlock(spec.width, spec.cardinality, ExpansionFactor, KernelSize, total_blocks)
                      for _ in range(spec.blocks)]
            transition = (DownsampleLayer(spec.width, specs[i + 1].width, ResamplingFilter) if i + 1 < len(specs)
                          else DiscriminativeBasis(spec.width, embedding or 1))
            stages.append(Stage([*blocks, transition], spec.reduced_precision))
        self.ExtractionLayer = Convolution(img_channels, specs[0].width, 1)
        self.MainLayers = nn.ModuleList(stages)
        self.EmbeddingLayer = (msr_init(nn.Linear(c_dim, embedding, bias=False), 1 / math.sqrt(embedding))
                               if c_dim else None)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, alpha: float = 1.0) -> torch.Tensor:
        """img [N, img_channels, R, R], c [N, c_dim] (one-hot; needed when c_dim > 0) -> logits
        [N, 1] in img's dtype. ``alpha`` must be 1 (no fade-in)."""
        if alpha != 1:
            raise ValueError(f"the discriminator 'r3gan' has no progressive growing: alpha must be 1, got {alpha}")
        dtype = img.dtype
        x = self.ExtractionLayer(img.to(self.MainLayers[0].dtype(img, dtype)))
        for stage in self.MainLayers:
            x = stage(x, dtype)
        x = x.to(dtype)
        if self.EmbeddingLayer is None:
            return x
        if c is None:
            raise ValueError(f"this R3GAN discriminator is conditional (c_dim={self.c_dim}): pass labels c")
        return (x * F.linear(c.to(dtype), self.EmbeddingLayer.weight.to(dtype))).sum(dim=1, keepdim=True)

    def layers_from_input(self) -> list[tuple[str, nn.Module]]:
        """Freeze-D's order (``--model.freeze_d N``): the extraction layer, then each block and
        transition of every stage above 4x4, from the input; the 4x4 stage is never frozen."""
        layers = [("ExtractionLayer", self.ExtractionLayer)]
        for i, stage in enumerate(self.MainLayers[:-1]):
            layers += [(f"MainLayers.{i}.Layers.{j}", layer) for j, layer in enumerate(stage.Layers)]
        return layers
