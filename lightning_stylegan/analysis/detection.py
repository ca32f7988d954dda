"""Low-fidelity detection by counting activated LR-neurons (004_738a47e1aec6d700.txt Section 4.1,
"Low fidelity detection in image generations", Table 2).

Every generated sample gets the number of activated LR-neurons (R = 0.3) in the early layers,
sum_i |[f^i_{.,R}(z)]^+| over i in M = {0, 1, 3} for StyleGAN2; samples are sorted by it in
decreasing order, and the top K (many LR-neurons: diverse, often defective) and the bottom K (few:
high fidelity, little diversity) are compared with the real images by precision, recall and the
realism score with k = 3 (Kynkaanniemi et al. 2019; the paper uses 50K samples, K = 2K and 10K
real images).
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..images import to_uint8
from .activation_rates import DEFAULT_RATE, ActivationRates
from .latents import seed_batches, seed_inputs
from .layers import SynthesisLayer, forward_until, read_features

NEIGHBORS = 3


@torch.no_grad()
def count_low_rate_activations(G, rates: ActivationRates, layers: list[SynthesisLayer], num: int,
                               rate: float = DEFAULT_RATE, batch: int = 64, seed: int = 0,
                               truncation_psi: float = 1.0, noise_mode: str = "const",
                               class_idx: int | None = None, device: str | torch.device = "cpu"
                               ) -> tuple[list[int], torch.Tensor]:
    """(seeds, counts [num]): the activated LR-neurons of each of the samples ``seed .. seed + num - 1``."""
    rates.check(layers)
    low = {layer.index: rates.low_rate(layer.index, rate).to(device) for layer in layers}
    last = max(layers, key=lambda layer: layer.index)
    seeds, counts = [], []
    with read_features(G, layers, "activation") as maps:
        for batch_seeds, z, c in seed_batches(G, num, batch, seed, class_idx, device):
            forward_until(G, last, G.mapping(z, c, truncation_psi=truncation_psi), noise_mode)
            counts.append(sum(((maps[i] > 0) & low[i]).flatten(1).sum(dim=1) for i in low).cpu())
            seeds += batch_seeds
    return seeds, torch.cat(counts)


def rank(counts: torch.Tensor) -> torch.Tensor:
    """Sample positions by decreasing count (ties: the lower seed first)."""
    return torch.sort(counts, descending=True, stable=True).indices


@torch.no_grad()
def seed_images(G, seeds: Sequence[int], batch: int = 64, truncation_psi: float = 1.0, noise_mode: str = "const",
                class_idx: int | None = None, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 images [len(seeds), C, R, R] of the seeds, on the CPU."""
    images = []
    for start in range(0, len(seeds), batch):
        z, c = seed_inputs(G, seeds[start:start + batch], class_idx, device)
        images.append(to_uint8(G(z, c, truncation_psi=truncation_psi, noise_mode=noise_mode)).cpu())
    return torch.cat(images)


@torch.no_grad()
def image_features(extractor, images: torch.Tensor, batch: int = 64, device: str | torch.device = "cpu") -> torch.Tensor:
    """Features [N, D] of uint8 images [N, C, H, W]."""
    return torch.cat([extractor(images[i:i + batch].to(device))[0].cpu() for i in range(0, len(images), batch)])


def group_scores(real_features: torch.Tensor, fake_features: torch.Tensor, k: int = NEIGHBORS) -> dict:
    """Precision, recall, and the realism score's mean and std of one group (Table 2's columns)."""
    from ..metrics.precision_recall import precision_recall, realism_score

    precision, recall = precision_recall(real_features, fake_features, k=k)
    realism = realism_score(real_features, fake_features, k=k).double()
    return {"precision": precision, "recall": recall, "realism_mean": float(realism.mean()),
            "realism_std": float(realism.std(unbiased=False)), "k": k, "num_fake": len(fake_features),
            "num_real": len(real_features)}
