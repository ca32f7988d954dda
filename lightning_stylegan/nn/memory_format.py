"""The memory layout G and D run their feature maps in.

On the CPU, oneDNN's convolutions are 1.1-1.5x faster in channels_last (NHWC) than in NCHW at
StyleGAN's shapes, and the depthwise FIR up/down-sampling 5-10x faster (``benchmarks/fir.py``);
on CUDA, NVlabs runs NCHW in fp32 and channels_last for reduced precision, where the tensor cores
want it. Layout changes no value: every op is layout-agnostic.
"""
from __future__ import annotations

import torch


def preferred_memory_format(x: torch.Tensor) -> torch.memory_format:
    """channels_last on the CPU and under autocast, else NCHW."""
    if x.device.type == "cpu" or torch.is_autocast_enabled(x.device.type):
        return torch.channels_last
    return torch.contiguous_format


def to_preferred_memory_format(x: torch.Tensor) -> torch.Tensor:
    """``x`` [N, C, H, W] in the layout of ``preferred_memory_format`` (no copy if already)."""
    return x.contiguous(memory_format=preferred_memory_format(x))
