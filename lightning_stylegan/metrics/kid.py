"""Kernel Inception Distance (KID) of Binkowski et al., "Demystifying MMD GANs" (ICLR 2018).

KID is the squared maximum mean discrepancy between real and generated features with the cubic
polynomial kernel ``k(x, y) = (x . y / d + 1)^3`` (d = feature dimension), estimated without bias
(the U-statistic within each set, Eq. 2 of Gretton et al. 2012) and averaged over ``num_subsets``
random subsets of ``m = min(n_real, n_fake, max_subset_size)`` items drawn without replacement:

    MMD^2_u = sum_{i != j} [k(x_i, x_j) + k(y_i, y_j)] / (m (m - 1)) - 2 sum_{i, j} k(x_i, y_j) / m^2

The subsets are drawn as NVlabs' ``metrics/kernel_inception_distance.py`` and torch-fidelity draw
them (generated then real, from ``np.random.RandomState(seed)``); sums are in float64.
"""
from __future__ import annotations

import numpy as np
import torch


def _as_array(features) -> np.ndarray:
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    return np.asarray(features, dtype=np.float64)


def kernel_inception_distance(real_features, fake_features, num_subsets: int = 100,
                              max_subset_size: int = 1000, seed: int = 0) -> float:
    """Mean unbiased MMD^2 over random subsets; features are [N, D] tensors or arrays."""
    real, fake = _as_array(real_features), _as_array(fake_features)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"KID needs two feature matrices [N, D] of one D, got {real.shape} and {fake.shape}")
    m = min(real.shape[0], fake.shape[0], max_subset_size)
    if m < 2:
        raise ValueError(f"KID needs at least 2 real and 2 generated samples, got {real.shape[0]} and {fake.shape[0]}")
    d = real.shape[1]
    rng = np.random.RandomState(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = fake[rng.choice(fake.shape[0], m, replace=False)]
        y = real[rng.choice(real.shape[0], m, replace=False)]
        within = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        between = (x @ y.T / d + 1) ** 3
        total += (within.sum() - np.trace(within)) / (m * (m - 1)) - 2 * between.sum() / (m * m)
    return float(total / num_subsets)
