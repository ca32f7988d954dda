"""R3GAN's G and D in float64 written from the paper's description (Huang et al. 2024, Section 3,
Config E) with explicit operations, independent of the plugin's modules: the weights are read by
name from a state dict, 1x1 convolutions are sums over channels (einsum), a grouped convolution is
a dense convolution with the block-diagonal kernel built here, the resamplers zero-insert / pad /
filter with the [1, 3, 3, 1] kernel built here, the activation is ``where``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SLOPE = 0.2


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, x, SLOPE * x)


def conv1x1(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """sum_i W[o, i] x[n, i, h, w]."""
    return torch.einsum("oi,nihw->nohw", weight[:, :, 0, 0], x)


def grouped_conv(x: torch.Tensor, weight: torch.Tensor, groups: int) -> torch.Tensor:
    """A ``groups``-grouped kxk convolution (zero padding, same size) as one dense convolution whose
    kernel is block diagonal: output channel o of group g reads only the inputs of group g."""
    out_channels, per_group, k, _ = weight.shape
    dense = torch.zeros(out_channels, per_group * groups, k, k, dtype=weight.dtype)
    out_per_group = out_channels // groups
    for o in range(out_channels):
        g = o // out_per_group
        dense[o, g * per_group:(g + 1) * per_group] = weight[o]
    return F.conv2d(x, dense, padding=k // 2)


def interpolation_filter(taps=(1, 2, 1)) -> torch.Tensor:
    """The 1-D filter of the resamplers: the taps convolved with [1, 1], normalized to sum 1."""
    f = np.convolve(np.asarray(taps, dtype=np.float64), [1.0, 1.0])
    return torch.from_numpy(f / f.sum())


def depthwise_filter(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Every channel correlated (the filter is symmetric: = convolved) with the 2-D outer(f, f), no padding."""
    channels = x.shape[1]
    kernel = torch.outer(f, f)[None, None].expand(channels, 1, len(f), len(f))
    return F.conv2d(x, kernel, groups=channels)


def upsample(x: torch.Tensor) -> torch.Tensor:
    """2x: zeros inserted after every pixel, padded 2 before and 1 after, filtered by 2 f per axis."""
    n, c, h, w = x.shape
    spread = torch.zeros(n, c, 2 * h, 2 * w, dtype=x.dtype)
    spread[:, :, ::2, ::2] = x
    return depthwise_filter(F.pad(spread, [2, 1, 2, 1]), 2 * interpolation_filter())


def downsample(x: torch.Tensor) -> torch.Tensor:
    """2x: padded 1 on each side, filtered by f per axis, every second pixel kept."""
    return depthwise_filter(F.pad(x, [1, 1, 1, 1]), interpolation_filter())[:, :, ::2, ::2]


def residual_block(x: torch.Tensor, p: dict, prefix: str, cardinality: int) -> torch.Tensor:
    """x + W3 * lrelu(b2 + W2 (*) lrelu(b1 + W1 * x)), the middle convolution grouped."""
    y = lrelu(conv1x1(x, p[f"{prefix}.LinearLayer1.Layer.weight"]) + p[f"{prefix}.NonLinearity1.Bias"][:, None, None])
    y = grouped_conv(y, p[f"{prefix}.LinearLayer2.Layer.weight"], cardinality)
    y = lrelu(y + p[f"{prefix}.NonLinearity2.Bias"][:, None, None])
    return x + conv1x1(y, p[f"{prefix}.LinearLayer3.Layer.weight"])


def generator(p: dict, z: torch.Tensor, c: torch.Tensor | None, cardinalities, blocks) -> torch.Tensor:
    """images = Aggregation(stages(basis([z, E c]))), stage 0 at 4x4, each next one 2x up."""
    p = {k: v.double() for k, v in p.items()}
    x = z if c is None else torch.cat([z, c @ p["EmbeddingLayer.weight"].T], dim=1)
    for i, (cardinality, count) in enumerate(zip(cardinalities, blocks)):
        if i == 0:
            scale = x @ p["MainLayers.0.Layers.0.LinearLayer.weight"].T  # [N, C]
            x = p["MainLayers.0.Layers.0.Basis"][None] * scale[:, :, None, None]
        else:
            key = f"MainLayers.{i}.Layers.0.LinearLayer.Layer.weight"
            x = upsample(conv1x1(x, p[key]) if key in p else x)
        for j in range(1, count + 1):
            x = residual_block(x, p, f"MainLayers.{i}.Layers.{j}", cardinality)
    return conv1x1(x, p["AggregationLayer.Layer.weight"])


def discriminator(p: dict, img: torch.Tensor, c: torch.Tensor | None, cardinalities, blocks) -> torch.Tensor:
    """logits [N, 1]: Extraction, stages from the input down, the 4x4 basis, then the projection."""
    p = {k: v.double() for k, v in p.items()}
    x = conv1x1(img, p["ExtractionLayer.Layer.weight"])
    last = len(blocks) - 1
    for i, (cardinality, count) in enumerate(zip(cardinalities, blocks)):
        for j in range(count):
            x = residual_block(x, p, f"MainLayers.{i}.Layers.{j}", cardinality)
        if i < last:
            key = f"MainLayers.{i}.Layers.{count}.LinearLayer.Layer.weight"
            x = downsample(x)
            x = conv1x1(x, p[key]) if key in p else x
    basis = p[f"MainLayers.{last}.Layers.{blocks[-1]}.Basis.weight"][:, 0]  # [C, 4, 4]
    h = torch.einsum("nchw,chw->nc", x, basis) @ p[f"MainLayers.{last}.Layers.{blocks[-1]}.LinearLayer.weight"].T
    if c is None:
        return h
    return (h * (c @ p["EmbeddingLayer.weight"].T)).sum(dim=1, keepdim=True)
