"""Fréchet distance between two Gaussians, the Fréchet Inception Distance (FID) of Heusel et al.,
"GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium" (NeurIPS 2017):

    FID = ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))

computed as NVlabs' ``metrics/frechet_inception_distance.py`` does: ``scipy.linalg.sqrtm`` of the
product, and the real part of the result (round-off can leave tiny imaginary parts in the square
root of a product of two covariance matrices).
"""
from __future__ import annotations

import numpy as np


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """FID of two Gaussians given by mean vectors [D] and covariance matrices [D, D]."""
    import scipy.linalg  # here, not at the top: `lightning-stylegan plugins` imports the metric plugins

    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    sigma1, sigma2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    d = mu1.shape[0] if mu1.ndim == 1 else -1
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"frechet_distance needs means [D] and covariances [D, D] of one D, got "
                         f"{mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}")
    root = scipy.linalg.sqrtm(sigma1 @ sigma2)
    distance = np.real(np.square(mu1 - mu2).sum() + np.trace(sigma1 + sigma2 - 2 * root))
    if not np.isfinite(distance):
        raise ValueError("frechet_distance is not finite: the covariance matrices contain inf/nan values")
    return float(distance)
