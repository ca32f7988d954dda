"""Modulated convolution with optional weight demodulation (StyleGAN2 Section 2.2, Eqs. 1-3).

Eq. 1 modulates the weights per sample, ``w'_ijk = s_i * w_ijk``; Eq. 3 demodulates them,
``w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps)``. Two numerically equivalent execution paths:

* fused (Appendix B): bake the per-sample weights and run one grouped convolution, the batch
  becoming the groups;
* non-fused: scale the activations by ``s`` before a shared convolution and by the demodulation
  coefficients after it, which is faster to train when the batch is large.
"""
from __future__ import annotations

import torch

from .filters import conv2d_resample

DEMOD_EPS = 1e-8


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     noise: torch.Tensor | None = None, up: int = 1, down: int = 1, padding: int = 0,
                     resample_filter: torch.Tensor | None = None, demodulate: bool = True,
                     fused: bool = True) -> torch.Tensor:
    """Convolve ``x`` [N, I, H, W] with ``weight`` [O, I, k, k] modulated by ``styles`` [N, I].

    ``noise`` (broadcastable to the output) is added after demodulation, before any bias.
    """
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if styles.shape != (batch_size, in_channels):
        raise ValueError(f"styles must have shape {(batch_size, in_channels)}, got {tuple(styles.shape)}")

    dcoefs = None
    if demodulate:
        # 1 / sigma_j of Eqs. 2-3 without forming the per-sample weights:
        # sum_{i,k} (s_i w_jik)^2 = sum_i s_i^2 sum_k w_jik^2, one [N, I] x [I, O] product.
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + DEMOD_EPS).rsqrt()  # [N, O]

    if not fused:
        x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, down=down, padding=padding)
        if demodulate:
            dcoefs = dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
            # x * dcoefs + noise in one pass
            return torch.addcmul(noise.to(x.dtype), x, dcoefs) if noise is not None else x * dcoefs
        return x + noise.to(x.dtype) if noise is not None else x

    w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, -1, 1, 1)  # Eq. 1, [N, O, I, k, k]
    if demodulate:
        w = w * dcoefs.reshape(batch_size, -1, 1, 1, 1)  # Eq. 3
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw).to(x.dtype)
    x = conv2d_resample(x, w, resample_filter, up=up, down=down, padding=padding, groups=batch_size)
    x = x.reshape(batch_size, -1, *x.shape[2:])
    return x + noise.to(x.dtype) if noise is not None else x
