"""The layer schedule of the StyleGAN3 synthesis network (Karras et al. 2021, Section 3.2 and
Figure 4; NVlabs' ``networks_stylegan3.SynthesisNetwork``).

Layer i of N (0 = the first layer after the Fourier features, N = the to-RGB layer) has a cutoff
f_c and a minimum stop-band f_t on geometric progressions from (f_c0, f_t0) to the last layers'
(R / 2, R / 2 * last_stopband_rel), reaching them at layer N - num_critical; the last layers are
critically sampled. Its sampling rate is the smallest power of two >= 2 f_t (at most R), its
transition half-width f_h = max(f_t, s / 2) - f_c, its size s + 2 margin pixels (R for the last
two), and its channels min(channel_base / 2 / f_c, channel_max).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LayerSpec:
    """One synthesis layer's band and size."""

    index: int
    cutoff: float  # f_c
    stopband: float  # f_t
    sampling_rate: int  # s
    half_width: float  # f_h
    size: int
    channels: int
    critically_sampled: bool

    @property
    def name(self) -> str:
        """NVlabs' attribute name of the layer, ``L{index}_{size}_{channels}``."""
        return f"L{self.index}_{self.size}_{self.channels}"


def layer_schedule(img_resolution: int, img_channels: int, channel_base: int = 32768, channel_max: int = 512,
                   num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2,
                   first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3,
                   margin_size: int = 10) -> list[LayerSpec]:
    """The ``num_layers + 1`` layers (the last is to-RGB), with NVlabs' defaults for stylegan3-t
    (stylegan3-r doubles ``channel_base``)."""
    if not 0 <= num_critical < num_layers:
        raise ValueError(f"num_critical must be in [0, num_layers), got {num_critical} of {num_layers}")
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    layers = []
    for i in range(num_layers + 1):
        t = min(i / (num_layers - num_critical), 1)
        cutoff = first_cutoff * (last_cutoff / first_cutoff) ** t
        stopband = first_stopband * (last_stopband / first_stopband) ** t
        sampling_rate = 2 ** math.ceil(math.log2(min(stopband * 2, img_resolution)))
        half_width = max(stopband, sampling_rate / 2) - cutoff
        size = img_resolution if i >= num_layers - 1 else sampling_rate + 2 * margin_size
        channels = img_channels if i == num_layers else round(min(channel_base / 2 / cutoff, channel_max))
        layers.append(LayerSpec(i, cutoff, stopband, sampling_rate, half_width, size, channels,
                                i >= num_layers - num_critical))
    return layers
