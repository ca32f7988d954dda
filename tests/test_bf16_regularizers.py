"""R1 and path length stay correct under ``bf16-mixed`` on the CPU (issue 13): the penalties and
the gradients they give D and G, computed under CPU autocast in bfloat16, match the float32 values
within bfloat16's precision (8 significant bits: about 0.4% per op, a few percent through a
network). The tolerances are about three times the errors seen over seeds: per-sample R1 within
1-3% (its mean within 1.3%) and D's R1 gradient at cosine 0.94-0.97 to float32's; path lengths
within 0.6-1% and G's gradient at cosine 0.985-0.996."""
from __future__ import annotations

import torch

from lightning_stylegan.training.penalties import gradient_penalty, path_lengths
from tiny_networks import tiny_module


def _autocast(enabled: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _r1(module, reals: torch.Tensor, bf16: bool):
    module.D.zero_grad(set_to_none=True)
    real_in = reals.clone().requires_grad_(True)
    with _autocast(bf16):
        penalty = gradient_penalty(module.D(real_in), real_in)
    penalty.float().mean().backward()
    grads = torch.cat([p.grad.flatten() for p in module.D.parameters() if p.grad is not None])
    return penalty.detach().float(), grads


def _path_length(module, z: torch.Tensor, noise_seed: int, bf16: bool):
    module.G.zero_grad(set_to_none=True)
    with _autocast(bf16):
        ws = module.G.mapping(z, None)
        images = module.G.synthesis(ws, noise_mode="const")
        torch.manual_seed(noise_seed)  # the same projection y for both precisions
        lengths = path_lengths(images.float(), ws)
    lengths.mean().backward()
    grads = torch.cat([p.grad.flatten() for p in module.G.synthesis.parameters() if p.grad is not None])
    return lengths.detach().float(), grads


def test_r1_penalty_and_its_gradient_match_float32_under_bf16():
    module = tiny_module(resolution=16, seed=3)
    reals = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(4)) * 2 - 1
    penalty32, grads32 = _r1(module, reals, bf16=False)
    penalty16, grads16 = _r1(module, reals, bf16=True)
    assert torch.isfinite(penalty16).all() and penalty32.min() > 0
    assert _relative(penalty16, penalty32) < 0.1
    assert abs(float(penalty16.mean() / penalty32.mean()) - 1) < 0.05
    assert torch.nn.functional.cosine_similarity(grads16, grads32, dim=0) > 0.85


def test_path_lengths_and_their_gradient_match_float32_under_bf16():
    module = tiny_module(resolution=16, seed=5)
    z = torch.randn(4, module.G.z_dim, generator=torch.Generator().manual_seed(6))
    lengths32, grads32 = _path_length(module, z, 7, bf16=False)
    lengths16, grads16 = _path_length(module, z, 7, bf16=True)
    assert torch.isfinite(lengths16).all() and lengths32.min() > 0
    assert _relative(lengths16, lengths32) < 0.03
    assert torch.nn.functional.cosine_similarity(grads16, grads32, dim=0) > 0.95
