"""The layers R3GAN's networks are built from (Huang et al. 2024, Section 3, Configs D and E of the
roadmap from StyleGAN2), with the attribute names of the official code so that its state dicts load
one to one (README, "Parameter names").

* ``Convolution``: a bias-free convolution, weights ~ N(0, gain^2 / fan_in) (He et al. 2015's
  MSR initialization; ``gain`` 1 unless given).
* ``BiasedActivation``: ``leaky_relu(x + b, 0.2)``, no output gain. Its gain
  ``sqrt(2 / (1 + 0.2^2))`` enters the initialization of the layer before it instead.
* ``ResidualBlock``: ``x + conv1x1(act(conv_kxk_grouped(act(conv1x1(x)))))``: the inverted bottleneck
  (widened by the expansion factor) with a grouped middle convolution (ResNeXt's cardinality),
  Config E. Fix-up initialization (Zhang et al. 2019, Fixup, Section 3: branch layers scaled by
  L^(-1/(2m-2)) for L residual branches of m layers, the last layer zero): L is the number of blocks
  in the whole network and m = 3, so every block starts as the identity.
* ``UpsampleLayer`` / ``DownsampleLayer``: the transition between stages: a 1x1 convolution where the
  width changes (at the lower resolution) and interpolative (bilinear) resampling with the filter
  ``taps`` convolved with the box ``[1, 1]``: ``[1, 2, 1]`` gives the separable ``[1, 3, 3, 1] / 8``
  of StyleGAN2's up/down-sampling.
* ``GenerativeBasis``: G's 4x4 input, a learned basis ``[C, 4, 4]`` scaled per channel by a linear
  map of z. ``DiscriminativeBasis``: D's 4x4 output, a depthwise 4x4 convolution to ``[N, C]`` then a
  linear map.
* ``Stage``: the layers of one resolution, run in the precision the stage asks for.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lightning_stylegan.nn.filters import downsample2d, setup_filter, upsample2d
from lightning_stylegan.nn.layers import bias_act

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2 / (1 + LRELU_SLOPE ** 2))
LAYERS_PER_BLOCK = 3


def msr_init(layer: nn.Conv2d | nn.Linear, gain: float = 1.0) -> nn.Conv2d | nn.Linear:
    """``layer.weight`` ~ N(0, gain^2 / fan_in), fan_in = input units per output unit (per group)."""
    fan_in = layer.weight[0].numel()
    with torch.no_grad():
        layer.weight.normal_(0, gain / math.sqrt(fan_in))
    return layer


class Convolution(nn.Module):
    """Bias-free ``kernel_size`` x ``kernel_size`` convolution, same size out, in the input's dtype."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, groups: int = 1, gain: float = 1.0):
        super().__init__()
        self.Layer = msr_init(nn.Conv2d(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2,
                                        groups=groups, bias=False), gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.Layer.weight.to(x.dtype), padding=self.Layer.padding, groups=self.Layer.groups)


class BiasedActivation(nn.Module):
    """``leaky_relu(x + Bias, 0.2)`` per channel; the bias starts at zero."""

    def __init__(self, channels: int):
        super().__init__()
        self.Bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bias_act(x, self.Bias, "lrelu", gain=1)


class ResidualBlock(nn.Module):
    """``x + LinearLayer3(act(LinearLayer2(act(LinearLayer1(x)))))`` at ``channels`` wide, widened to
    ``channels * expansion`` inside, the kxk convolution in ``cardinality`` groups."""

    def __init__(self, channels: int, cardinality: int, expansion: int, kernel_size: int, total_blocks: int):
        super().__init__()
        wide = channels * expansion
        gain = LRELU_GAIN * total_blocks ** (-1 / (2 * LAYERS_PER_BLOCK - 2))  # Fixup's L^(-1/(2m-2))
        self.LinearLayer1 = Convolution(channels, wide, 1, gain=gain)
        self.LinearLayer2 = Convolution(wide, wide, kernel_size, groups=cardinality, gain=gain)
        self.LinearLayer3 = Convolution(wide, channels, 1, gain=0)  # the branch starts at zero
        self.NonLinearity1 = BiasedActivation(wide)
        self.NonLinearity2 = BiasedActivation(wide)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.NonLinearity1(self.LinearLayer1(x))
        y = self.NonLinearity2(self.LinearLayer2(y))
        return x + self.LinearLayer3(y)


def interpolation_kernel(taps: Sequence[float]) -> torch.Tensor:
    """The resamplers' 2-D filter: ``taps`` convolved with ``[1, 1]``, outer product, sum 1."""
    taps = [float(t) for t in taps]
    return setup_filter([a + b for a, b in zip([0.0, *taps], [*taps, 0.0])])


class Resampler(nn.Module):
    """2x up- (``up=True``, gain 4) or down-sampling with the FIR filter ``Kernel`` (a buffer)."""

    def __init__(self, taps: Sequence[float], up: bool):
        super().__init__()
        self.up = up
        self.register_buffer("Kernel", interpolation_kernel(taps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample2d(x, self.Kernel) if self.up else downsample2d(x, self.Kernel)


class UpsampleLayer(nn.Module):
    """A 1x1 convolution where the width changes, then 2x interpolative up-sampling."""

    def __init__(self, in_channels: int, out_channels: int, taps: Sequence[float]):
        super().__init__()
        self.Resampler = Resampler(taps, up=True)
        self.LinearLayer = Convolution(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.Resampler(x if self.LinearLayer is None else self.LinearLayer(x))


class DownsampleLayer(nn.Module):
    """2x interpolative down-sampling, then a 1x1 convolution where the width changes."""

    def __init__(self, in_channels: int, out_channels: int, taps: Sequence[float]):
        super().__init__()
        self.Resampler = Resampler(taps, up=False)
        self.LinearLayer = Convolution(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Resampler(x)
        return x if self.LinearLayer is None else self.LinearLayer(x)


class GenerativeBasis(nn.Module):
    """``[N, in_features] -> [N, channels, 4, 4]``: the basis ``Basis`` (~ N(0, 1)) times, per sample
    and channel, a linear map of the input."""

    def __init__(self, in_features: int, channels: int):
        super().__init__()
        self.Basis = nn.Parameter(torch.randn(channels, 4, 4))
        self.LinearLayer = msr_init(nn.Linear(in_features, channels, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = F.linear(x, self.LinearLayer.weight.to(x.dtype))
        return self.Basis.to(x.dtype)[None] * scale[:, :, None, None]


class DiscriminativeBasis(nn.Module):
    """``[N, channels, 4, 4] -> [N, out_features]``: a depthwise 4x4 convolution (one 4x4 filter per
    channel, no padding), then a linear map."""

    def __init__(self, channels: int, out_features: int):
        super().__init__()
        self.Basis = msr_init(nn.Conv2d(channels, channels, 4, groups=channels, bias=False))
        self.LinearLayer = msr_init(nn.Linear(channels, out_features, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.Basis.weight.to(x.dtype), groups=self.Basis.groups).flatten(1)
        return F.linear(x, self.LinearLayer.weight.to(x.dtype))


class Stage(nn.Module):
    """The layers of one resolution, applied in order. A stage of ``FP16Stages`` runs in bfloat16
    (the official code's choice) on CUDA; elsewhere, and for the other stages, in ``dtype``, the
    network's input dtype (float32 in training)."""

    def __init__(self, layers: list[nn.Module], reduced_precision: bool):
        super().__init__()
        self.Layers = nn.ModuleList(layers)
        self.reduced_precision = reduced_precision

    def dtype(self, x: torch.Tensor, dtype: torch.dtype) -> torch.dtype:
        return torch.bfloat16 if self.reduced_precision and x.is_cuda else dtype

    def forward(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        x = x.to(self.dtype(x, dtype))
        for layer in self.Layers:
            x = layer(x)
        return x
