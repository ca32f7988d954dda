"""The exponential moving average of the generator used for samples and metrics (PGGAN; StyleGAN2
Appendix B), with NVlabs' half-life parametrization and ramp-up.
"""
from __future__ import annotations

import torch
from torch import nn


def ema_beta(batch_size: int, images_seen: int, ema_kimg: float, ema_rampup: float | None) -> float:
    """Per-step decay: the EMA's half-life is ``ema_kimg`` thousand images, capped during ramp-up
    at ``ema_rampup * images_seen``: ``beta = 0.5 ** (batch_size / half_life_images)``."""
    half_life = ema_kimg * 1000
    if ema_rampup is not None:
        half_life = min(half_life, images_seen * ema_rampup)
    return 0.5 ** (batch_size / max(half_life, 1e-8))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """Parameters: ``ema <- beta * ema + (1 - beta) * model``; buffers (w_avg, noise maps, filters)
    are copied, not averaged."""
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)
