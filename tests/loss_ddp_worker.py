"""One rank of the two-process RpGAN pairing test (``test_losses.py``), run as a subprocess with
torchrun's variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) on one thread. It joins a gloo
group, wraps a tiny G and an 8x8 D of the project in ``DistributedDataParallel``, takes its rank's
half of fixed latents and reals, and runs one G phase and one D phase of the ``rpgan`` loss plugin as
the training module does (G: D scores the fakes, then the reals; D: the detached fakes, then the
reals). It writes ``<out>/rank<N>.pt``: the losses and the all-reduced gradients of each phase.

    python loss_ddp_worker.py OUT

``networks``, ``batches`` and ``phases`` are also what the test's single-process reference runs.
"""
from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist
from torch import nn

from lightning_stylegan.losses.rpgan import RelativisticPairing
from lightning_stylegan.networks import build_discriminator

WORLD, PER_RANK, Z_DIM, RES = 2, 4, 8, 8  # D's minibatch-stddev groups of 2 divide a rank's 4 images


class TinyGenerator(nn.Module):
    """z [N, 8] -> a 1 x 8 x 8 image in [-1, 1]: one linear layer and tanh."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(Z_DIM, RES * RES)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(z)).reshape(len(z), 1, RES, RES)


def networks() -> tuple[nn.Module, nn.Module]:
    """(G, D), the same in every process."""
    torch.manual_seed(0)
    G = TinyGenerator()
    D = build_discriminator("residual", RES, 1, channel_base=64, channel_max=16, mbstd_group_size=2)
    return G, D


def batches() -> tuple[torch.Tensor, torch.Tensor]:
    """(z [8, 8], reals [8, 1, 8, 8]) of the whole step: rank r takes rows 4r to 4r + 3."""
    generator = torch.Generator().manual_seed(1)
    z = torch.randn(WORLD * PER_RANK, Z_DIM, generator=generator)
    reals = torch.rand(WORLD * PER_RANK, 1, RES, RES, generator=generator) * 2 - 1
    return z, reals


def phases(G, D, z, reals, loss=RelativisticPairing()) -> dict:
    """G's phase, then D's, on these latents and reals: the losses and the gradients after each
    phase's backward (G's and D's after G's, D's after D's), and the logits."""
    fake = G(z)
    fake_logits, real_logits = D(fake), D(reals)  # the module's order: the fakes, then the reals
    loss_g = loss.generator(fake_logits, real_logits).mean()  # as the module: D gets gradients both ways
    loss_g.backward()
    out = {"loss_g": loss_g.detach(), "g_fake": fake_logits.detach(), "g_real": real_logits.detach(),
           "G_grad": grads(G), "D_grad_g_phase": grads(D)}
    D.zero_grad(set_to_none=True)
    fake_logits, real_logits = D(fake.detach()), D(reals)
    loss_d = loss.discriminator(real_logits, fake_logits).mean()
    loss_d.backward()
    return out | {"loss_d": loss_d.detach(), "d_fake": fake_logits.detach(), "d_real": real_logits.detach(),
                  "D_grad": grads(D)}


def grads(network: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.detach().clone() for name, p in network.named_parameters()}


def main(out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    assert dist.get_world_size() == WORLD
    G, D = networks()
    z, reals = batches()
    part = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
    G_ddp, D_ddp = nn.parallel.DistributedDataParallel(G), nn.parallel.DistributedDataParallel(D)
    result = phases(G_ddp, D_ddp, z[part], reals[part])
    unwrapped = {key: {name.removeprefix("module."): g for name, g in value.items()}  # DDP's "module." prefix
                 for key, value in result.items() if isinstance(value, dict)}
    result |= unwrapped
    torch.save(result, os.path.join(out, f"rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
