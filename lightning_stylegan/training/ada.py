"""The adaptive augmentation controller of StyleGAN2-ADA as a Lightning callback (group ``ada``).

Karras et al. 2020, *Training Generative Adversarial Networks with Limited Data*, Section 3
(003_22a7711458f25a1a.txt Section 1.0.2): D overfits when its outputs on the training reals drift
positive; the heuristic r_t = E[sign(D_train)] measures it. Every ``interval`` batches the
augmentation probability moves by

    p <- clamp(p + sign(r_t - target) * batch * interval / (kimg * 1000), 0, 1)

so p can go from 0 to 1 in ``kimg`` thousand images; r_t is averaged over the interval's batches
and over all DDP ranks, so every rank steps p alike (a checkpoint holds the signs summed over the
ranks). As NVlabs' training loop, the signs of D main and D reg passes are counted, and the first
update comes after the first batch.

Like the regularizer callbacks, this one owns the policy and the state (the signs gathered since
the last update); the LightningModule runs the forwards and calls ``record`` and ``update``.
"""
from __future__ import annotations

import torch
from lightning.pytorch.callbacks import Callback

from ..errors import ConfigError
from . import ranks

DEFAULT_KIMG = 500
TRANSFER_KIMG = 100  # NVlabs' --resume: "make ADA react faster at the beginning"


class AdaController(Callback):
    """Tune the augmentation's ``p`` toward ``E[sign(D(real))] = target``.

    Args:
        target: the r_t to hold (the paper's 0.6); null keeps p fixed.
        interval: batches between updates of p (NVlabs: 4).
        kimg: thousands of images for p to go from 0 to 1 at the full rate; null = 500, or 100
            when the run starts from other weights (``model.init_from``), as NVlabs' ``--resume``.
    """

    group = "ada"

    def __init__(self, target: float | None = 0.6, interval: int = 4, kimg: float | None = None):
        if target is not None and not 0 <= target <= 1:
            raise ConfigError(f"--ada.target must be in [0, 1] (the paper's 0.6), or null for a fixed p; got {target}")
        if interval < 1:
            raise ConfigError(f"--ada.interval must be >= 1 batch, got {interval}")
        if kimg is not None and not kimg > 0:
            raise ConfigError(f"--ada.kimg must be > 0 (thousands of images for p to go from 0 to 1), got {kimg}")
        self.target, self.interval, self.kimg = target, interval, kimg
        self.signs = torch.zeros(2, dtype=torch.float64)  # sum of sign(D(real)) and count, this rank

    @property
    def enabled(self) -> bool:
        return self.target is not None

    def rate_kimg(self, transfer: bool) -> float:
        return self.kimg if self.kimg is not None else (TRANSFER_KIMG if transfer else DEFAULT_KIMG)

    def record(self, real_logits: torch.Tensor) -> None:
        """Gather the signs of one pass of D on (augmented) reals."""
        signs = real_logits.detach().float().sign()
        total = torch.stack([signs.sum().double(), torch.tensor(float(signs.numel()), dtype=torch.float64,
                                                                  device=signs.device)])
        self.signs = self.signs.to(total.device) + total

    def due(self, step: int) -> bool:
        """Whether p is updated after the batch of this step (counted from 0): steps 0, k, 2k, ..."""
        return self.enabled and step % self.interval == 0

    def update(self, p: torch.Tensor, strategy, global_batch: int, transfer: bool) -> float:
        """Step ``p`` in place from the signs gathered on all ranks since the last update; returns r_t."""
        totals = strategy.reduce(self.signs.clone(), reduce_op="sum")
        self.signs = torch.zeros_like(self.signs)
        r_t = float(totals[0] / totals[1]) if float(totals[1]) > 0 else 0.0
        adjust = (1 if r_t > self.target else -1 if r_t < self.target else 0) * \
            global_batch * self.interval / (self.rate_kimg(transfer) * 1000)
        p.copy_((p + adjust).clamp(0, 1))
        return r_t

    def state_dict(self) -> dict:
        """The signs gathered since the last update, summed over the ranks: the update reads only
        that sum (sums of +-1 and counts in float64: exact in any order)."""
        return {"signs": [sum(column) for column in zip(*ranks.every_rank(self.signs.cpu().tolist()))]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Rank 0 resumes with the sum of every rank's signs, the others with none: the next update's
        r_t is the uninterrupted run's, with any number of ranks."""
        rank, _ = ranks.rank_and_world()
        self.signs = torch.tensor(state_dict["signs"], dtype=torch.float64) * (rank == 0)
