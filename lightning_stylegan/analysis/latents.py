"""Latents for the analyses: sample k of a stream, or the image of ``--seed k``, is z =
``np.random.RandomState(k).randn(z_dim)`` (NVlabs' convention), so every sample an analysis ranks
or repairs can be regenerated from its seed; conditional generators get the class ``class_idx`` or
one drawn from the same RandomState. Noise is ``'const'`` by default (a seed is one image).
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn


def seed_inputs(G: nn.Module, seeds: Sequence[int], class_idx: int | None = None,
                device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor | None]:
    """(z [len(seeds), z_dim], one-hot c [len(seeds), c_dim] or None for an unconditional G)."""
    if G.c_dim and class_idx is not None and not 0 <= class_idx < G.c_dim:
        raise ValueError(f"class {class_idx} is out of range: this generator has classes 0..{G.c_dim - 1}")
    zs, classes = [], []
    for seed in seeds:
        state = np.random.RandomState(seed)
        zs.append(state.randn(G.z_dim))
        if G.c_dim:
            classes.append(state.randint(G.c_dim) if class_idx is None else class_idx)
    z = torch.from_numpy(np.stack(zs)).float().to(device)
    c = nn.functional.one_hot(torch.tensor(classes), G.c_dim).float().to(device) if G.c_dim else None
    return z, c


def seed_batches(G: nn.Module, num: int, batch: int, seed: int = 0, class_idx: int | None = None,
                 device: str | torch.device = "cpu") -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor | None]]:
    """The ``num`` seeds ``seed, seed + 1, ...`` in batches of at most ``batch``: (seeds, z, c)."""
    if num < 1 or batch < 1:
        raise ValueError(f"num and batch must be positive, got num={num}, batch={batch}")
    for start in range(seed, seed + num, batch):
        seeds = list(range(start, min(start + batch, seed + num)))
        yield (seeds, *seed_inputs(G, seeds, class_idx, device))


@torch.no_grad()
def seed_ws(G: nn.Module, seeds: Sequence[int], class_idx: int | None = None, truncation_psi: float = 1.0,
            device: str | torch.device = "cpu") -> torch.Tensor:
    """ws [len(seeds), num_ws, w_dim] of the seeds."""
    return G.mapping(*seed_inputs(G, seeds, class_idx, device), truncation_psi=truncation_psi)
