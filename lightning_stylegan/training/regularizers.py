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
from . import ranks
from .penalties import gamma_pl
from .schedules import Schedule, as_scheduled, bounds, value_at


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


class GradientPenalty(LazyRegularizer):
    """A zero-centred gradient penalty on D, ``gamma / 2 * ||grad_x D(x)||^2``, every ``interval`` D
    steps; ``gamma`` a number or a ``Schedule`` in images seen."""

    network = "D"

    def __init__(self, gamma: float | Schedule, interval: int):
        super().__init__(interval)
        self.gamma = as_scheduled(gamma, f"--{self.group}.gamma")
        if bounds(self.gamma)[0] < 0:
            raise ConfigError(f"--{self.group}.gamma must be >= 0 (0 disables it), got {gamma}")

    @property
    def enabled(self) -> bool:
        return bounds(self.gamma)[1] > 0

    def loss(self, penalty: torch.Tensor, images_seen: int) -> torch.Tensor:
        """The per-sample loss for the per-sample penalties, with gamma after ``images_seen`` images."""
        return penalty * (value_at(self.gamma, images_seen) / 2)


class R1(GradientPenalty):
    """R1 on reals (Mescheder et al. 2018), ``gamma / 2 * ||grad_x D(x)||^2``, every ``interval`` D
    steps (paper: gamma 10, k 16; small datasets and resolutions want far smaller gamma, e.g.
    0.01-1 at 32x32)."""

    group = "r1"

    def __init__(self, gamma: float | Schedule = 10.0, interval: int = 16):
        super().__init__(gamma, interval)


class R2(GradientPenalty):
    """R2 on fakes (Roth et al. 2017; R3GAN, Huang et al. 2024, Eq. 3), ``gamma / 2 *
    ||grad_x D(x)||^2`` at G's images (the gradient in the un-augmented fakes), every ``interval`` D
    steps; off by default. With R1 it shares D's regularization pass (both lazy: the same interval)
    or D's main pass (both with interval 1), as R3GAN's official code does."""

    group = "r2"

    def __init__(self, gamma: float | Schedule = 0.0, interval: int = 16):
        super().__init__(gamma, interval)


class PathLength(LazyRegularizer):
    """Path length regularization (Eq. 4), ``weight * (||J_w^T y|| - a)^2``, every ``interval``
    G steps on ``batch / batch_shrink`` samples, the target ``a`` (``pl_mean``) an exponential
    moving average of the lengths with decay 0.99 (``decay`` 0.01 is its complement).

    ``weight`` is NVlabs' 2.0 by default, or ``"paper"`` for Eq. 5 (``num_ws * r^2 * gamma_pl`` in
    the lengths this project measures, see ``weight_at``), which is 2.0 for the StyleGAN2 layouts.
    The paper's interval is 8; stylegan2-ada-pytorch uses 4. A generator without a W space has no
    path length: left unset (null) the regularizer is then off, with no lazy-regularization
    adjustment of G's Adam (``use_for``, ``StyleGAN2._adam_ratio``); a weight set for it is an error.
    """

    network = "G"
    group = "path_length"

    def __init__(self, weight: float | str | None = None, interval: int = 4, decay: float = 0.01,
                 batch_shrink: int = 2):
        super().__init__(interval)
        if not (weight is None or weight == "paper" or (isinstance(weight, (int, float)) and weight >= 0)):
            raise ConfigError(f"--path_length.weight must be a number >= 0 or 'paper', got {weight!r}")
        self.requested = weight is not None
        weight = 2.0 if weight is None else weight
        if batch_shrink < 1:
            raise ConfigError(f"--path_length.batch_shrink must be >= 1, got {batch_shrink}")
        self.weight, self.decay, self.batch_shrink = weight, decay, batch_shrink
        self.pl_mean = torch.zeros([])

    @property
    def enabled(self) -> bool:
        return self.weight == "paper" or self.weight > 0

    def use_for(self, generator_name: str, w_space: bool) -> None:
        """Bind to the run's generator: one without a W space turns path length off, unless a
        weight > 0 was asked for, which is an error naming the generator."""
        if w_space:
            return
        if self.requested and self.enabled:
            raise ConfigError(f"--path_length.weight {self.weight}: the generator {generator_name!r} has no W "
                              f"space, so it has no path length; drop --path_length.weight")
        self.weight = 0.0

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
        """``pl_mean`` of every rank (each updates its own, as NVlabs' GPUs do), so that a resumed DDP
        run continues exactly; ``pl_mean`` itself is rank 0's (what older versions saved)."""
        return {"pl_mean": float(self.pl_mean), "pl_mean_per_rank": ranks.every_rank(float(self.pl_mean))}

    def load_state_dict(self, state_dict: dict) -> None:
        """This rank's saved target; with another world size than the run that saved it, the mean
        of the saved ranks' targets (each estimates the same expected length)."""
        per_rank = state_dict.get("pl_mean_per_rank")
        own = ranks.this_ranks(per_rank)
        if own is None:
            own = sum(per_rank) / len(per_rank) if per_rank else state_dict["pl_mean"]
        self.pl_mean = torch.tensor(float(own))
