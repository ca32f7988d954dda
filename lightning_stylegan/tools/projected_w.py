"""``projected_w.npz``, the file ``lightning-stylegan project`` writes and ``generate --projected-w``
renders: ``w`` [num_ws, w_dim] (NVlabs writes [1, num_ws, w_dim]; both are read), ``distance``
(the final LPIPS distance) and the optimised constant noise maps as ``noise:<buffer name>``.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import torch

NOISE_PREFIX = "noise:"


def noise_buffers(G: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The synthesis layers' constant noise maps ``noise_const`` [r_i, r_i] by buffer name."""
    return {name: buf for name, buf in G.named_buffers() if name.endswith("noise_const")}


def with_noise(G: torch.nn.Module, noise: dict[str, torch.Tensor]) -> torch.nn.Module:
    """A copy of ``G`` whose constant noise maps are ``noise`` (G itself is left unchanged)."""
    G = copy.deepcopy(G)
    buffers = noise_buffers(G)
    with torch.no_grad():
        for name, value in noise.items():
            buffers[name].copy_(value)
    return G


def save_projected_w(path: Path, ws: torch.Tensor, distance: float, noise: dict[str, torch.Tensor]) -> Path:
    """Write ``projected_w.npz`` atomically."""
    tmp = path.with_name(path.name + ".tmp")
    arrays = {f"{NOISE_PREFIX}{name}": value.numpy() for name, value in noise.items()}
    with open(tmp, "wb") as file:
        np.savez(file, w=ws.numpy(), distance=np.float64(distance), **arrays)
    os.replace(tmp, path)
    return path


def load_projected_w(path: str | os.PathLike, num_ws: int, w_dim: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(w [1, num_ws, w_dim], noise maps by buffer name) of a ``projected_w.npz``, for a generator
    with ``num_ws`` styles of ``w_dim``."""
    with np.load(path, allow_pickle=False) as data:
        if "w" not in data:
            raise ValueError(f"{path} has no 'w' array; give a projected_w.npz written by `lightning-stylegan project`")
        w = torch.from_numpy(data["w"]).float()
        noise = {key[len(NOISE_PREFIX):]: torch.from_numpy(data[key]) for key in data if key.startswith(NOISE_PREFIX)}
    w = w.reshape(-1, *w.shape[-2:])[:1]
    if tuple(w.shape[1:]) != (num_ws, w_dim):
        raise ValueError(f"{path}: w has shape {tuple(w.shape[1:])}, this generator needs ({num_ws}, {w_dim})")
    return w, noise
