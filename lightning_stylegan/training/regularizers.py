"""Lazy regularization as Lightning callbacks (002_0a18e98dc55024d1.txt Section 3.1, Appendix B).

A callback owns the *policy and state* of one regularizer: its interval k, its weight, and (for
path length) the running target ``pl_mean``. The LightningModule asks which regularizers are due
and runs every forward and backward inside ``training_step``, which keeps DDP correct.

With k > 1 the regularizer runs as its own pass every k steps of its network, its loss multiplied
by k, and the shared Adam optimizer uses ``lr * c`` and ``beta ** c`` with ``c = k / (k + 1)``.
With k = 1 it is the non-lazy baseline (config B): added to the main loss in the same pass, with
no adjustment.
"""
from __future__ import annotations

import torch
from lightning.pytorch.callbacks import Callback

from ..errors import ConfigError
from .losses import gamma_pl


class LazyRegularizer(Callback):
    """Interval bookkeeping shared by ``R1`` (on D) and ``PathLength`` (on G)."""

    network = ""  # "G" or "D": whose optimizer the regularizer shares
    group = ""  # its options' group on the command line: --r1.*, --path_length.*

    def __init__(self, interval: int):
        if interval < 1:
            raise ConfigError(f"--{self.group}.interval must be >= 1 (1 = not lazy), got {interval}")
        self.interval = interval

    @property
    def enabled(self) -> bool:
        raise NotImplementedError

    @property
    def lazy(self) -> bool:
        """Whether the regularizer has its own pass (k > 1) rather than joining the main loss."""
        return self.enabled and self.interval > 1

    def due(self, step: int) -> bool:
        """Whether the regularizer runs at this step of its network (counted from 0)."""
        return self.enabled and step % self.interval == 0

    @property
    def loss_scale(self) -> int:
        """Multiplier of the regularization loss: k for a lazy pass, 1 inside the main pass."""
        return self.interval if self.lazy else 1

    @property
    def adam_ratio(self) -> float:
        """c = k / (k + 1) for the shared Adam's lr and betas; 1 for k = 1. Like NVlabs' code, it
        depends on the interval alone, so it holds with the weight 0 too (config C's G)."""
        return self.interval / (self.interval + 1) if self.interval > 1 else 1.0


class R1(LazyRegularizer):
    """R1 on reals, ``gamma / 2 * ||grad_x D(x)||^2``, every ``interval`` D steps (paper: gamma 10,
    k 16; small datasets and resolutions want far smaller gamma, e.g. 0.01-1 at 32x32)."""

    network = "D"
    group = "r1"

    def __init__(self, gamma: float = 10.0, interval: int = 16):
        super().__init__(interval)
        if gamma < 0:
            raise ConfigError(f"--r1.gamma must be >= 0 (0 disables R1), got {gamma}")
        self.gamma = gamma

    @property
    def enabled(self) -> bool:
        return self.gamma > 0

    def loss(self, penalty: torch.Tensor) -> torch.Tensor:
        """The per-sample loss for the per-sample penalties."""
        return penalty * (self.gamma / 2)


class PathLength(LazyRegularizer):
    """Path length regularization (Eq. 4), ``weight * (||J_w^T y|| - a)^2``, every ``interval``
    G steps on ``batch / batch_shrink`` samples, the target ``a`` (``pl_mean``) an exponential
    moving average of the lengths with decay 0.99 (``decay`` 0.01 is its complement).

    ``weight`` is NVlabs' 2.0 by default, or ``"paper"`` for Eq. 5 (``num_ws * r^2 * gamma_pl`` in
    the lengths this project measures, see ``weight_at``), which is 2.0 for the StyleGAN2 layouts.
    The paper's interval is 8; stylegan2-ada-pytorch uses 4.
    """

    network = "G"
    group = "path_length"

    def __init__(self, weight: float | str = 2.0, interval: int = 4, decay: float = 0.01,
                 batch_shrink: int = 2):
        super().__init__(interval)
        if not (weight == "paper" or (isinstance(weight, (int, float)) and weight >= 0)):
            raise ConfigError(f"--path_length.weight must be a number >= 0 or 'paper', got {weight!r}")
        if batch_shrink < 1:
            raise ConfigError(f"--path_length.batch_shrink must be >= 1, got {batch_shrink}")
        self.weight, self.decay, self.batch_shrink = weight, decay, batch_shrink
        self.pl_mean = torch.zeros([])

    @property
    def enabled(self) -> bool:
        return self.weight == "paper" or self.weight > 0

    def weight_at(self, resolution: int, num_ws: int) -> float:
        """The weight of the penalty for a generator of ``resolution`` with ``num_ws`` styles.

        Eq. 5's gamma_pl is for y ~ N(0, I) and one w. ``losses.path_lengths`` draws y / r (which
        divides the squared lengths by r^2) and averages the squared lengths over the ``num_ws``
        layers' w, where the paper's shared w sums them (dividing by about num_ws), so ``paper``
        is ``num_ws * r^2 * gamma_pl``: with num_ws = 2 log2 r - 2, exactly NVlabs' 2."""
        if self.weight == "paper":
            return num_ws * resolution ** 2 * gamma_pl(resolution)
        return float(self.weight)

    def penalty(self, lengths: torch.Tensor) -> torch.Tensor:
        """Update the target ``a`` with this batch and return ``(lengths - a)^2`` per sample."""
        pl_mean = self.pl_mean.to(lengths.device).lerp(lengths.mean(), self.decay)
        self.pl_mean = pl_mean.detach()
        return (lengths - pl_mean).square()

    def state_dict(self) -> dict:
        return {"pl_mean": float(self.pl_mean)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.pl_mean = torch.tensor(float(state_dict["pl_mean"]))
