"""Inception Score of Salimans et al., "Improved Techniques for Training GANs" (NeurIPS 2016):

    IS = exp(E_x KL(p(y|x) || p(y))),  p(y) = E_x p(y|x),

from classifier logits (softmax gives p(y|x)), computed on ``num_splits`` consecutive equal
splits of the samples and reported as mean and standard deviation over the splits, as NVlabs'
``metrics/inception_score.py`` and torch-fidelity do (no shuffling, population std). Log
probabilities come from ``log_softmax`` in float64, so confident predictions do not give 0 * log 0.
"""
from __future__ import annotations

import numpy as np
import torch


def inception_score(logits, num_splits: int = 10) -> tuple[float, float]:
    """(mean, std) of the Inception Score over ``num_splits`` splits of ``logits`` [N, classes]."""
    logits = torch.as_tensor(logits).detach().to("cpu", torch.float64)
    if logits.ndim != 2 or logits.shape[0] < num_splits or num_splits < 1:
        raise ValueError(f"inception_score needs logits [N, classes] with N >= num_splits = {num_splits}, "
                         f"got shape {tuple(logits.shape)}")
    n = logits.shape[0]
    scores = []
    for i in range(num_splits):
        log_p = torch.log_softmax(logits[i * n // num_splits:(i + 1) * n // num_splits], dim=1)
        log_marginal = torch.logsumexp(log_p, dim=0) - np.log(log_p.shape[0])
        kl = (log_p.exp() * (log_p - log_marginal)).sum(dim=1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))
