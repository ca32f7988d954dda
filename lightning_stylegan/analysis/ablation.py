"""Sequential Ablation (004_738a47e1aec6d700.txt Algorithm 1) and its comparisons (Table 1).

Algorithm 1 runs the layers in order; after computing f^i from the (already repaired) f^(i-1), a
layer i in M has its activated LR-neurons [f^i_{.,R}]^+ (f^i_n > 0 and R^i_n <= R) set to zero,
and the next layer continues from the edited map. One forward pass with an editing hook on every
layer of M is exactly that. Defaults: R = 0.3, M = {0, 1, 3} (Section 3.3). Comparisons:

* ``low``: Algorithm 1 (the activated LR-neurons);
* ``high``: the activated HR-neurons (R^i_n > R), Section 3.2 "Analysis for Rate";
* ``random``: as many activated neurons, chosen uniformly, as ``low`` zeroes in the same map
  (or, with ``random_fraction``, that fraction of the activated neurons: Table 1 "Random" ablates
  30%).

With only one layer in M this is the paper's "Single Ablation".
"""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

import torch

from .activation_rates import DEFAULT_RATE, ActivationRates
from .layers import SynthesisLayer, edit_features, read_features

MODES = ("low", "high", "random")
DEFAULT_LAYERS = "0,1,3"


@dataclass
class Ablation:
    """The repaired images and, per ablated layer, what each sample's map looked like when it arrived."""

    images: torch.Tensor  # [N, C, R, R]
    activated: dict[int, torch.Tensor]  # [N] activated neurons in the map
    zeroed: dict[int, torch.Tensor]  # [N] neurons set to zero
    low_rate_heatmaps: dict[int, torch.Tensor]  # [N, H, W] share of channels that are activated LR-neurons


def concat(parts: list[Ablation]) -> Ablation:
    """One ``Ablation`` of several batches, in order."""
    def merge(field: str) -> dict[int, torch.Tensor]:
        return {i: torch.cat([getattr(part, field)[i] for part in parts]) for i in getattr(parts[0], field)}
    return Ablation(torch.cat([part.images for part in parts]), merge("activated"), merge("zeroed"),
                    merge("low_rate_heatmaps"))


def low_rate_heatmap(fmap: torch.Tensor, low_rate: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, H, W]: the fraction of channels at each pixel that are activated LR-neurons
    (the heat maps of Figures 1 and 4)."""
    return ((fmap > 0) & low_rate.to(fmap.device)).float().mean(dim=1)


def _random_pick(candidates: torch.Tensor, counts: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per row of candidates [N, K], ``counts[n]`` of its True entries chosen uniformly at random."""
    scores = torch.rand(candidates.shape, generator=generator)
    scores[~candidates] = -1.0
    order = scores.argsort(dim=1, descending=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1]).expand_as(order).contiguous())
    return (ranks < counts[:, None]) & candidates


def ablation_mask(fmap: torch.Tensor, rates: ActivationRates, index: int, mode: str = "low",
                  rate: float = DEFAULT_RATE, random_fraction: float | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Boolean [N, C, H, W]: the neurons of layer ``index``'s map that ``mode`` zeroes."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    activated = fmap > 0
    low = rates.low_rate(index, rate).to(fmap.device)
    if mode == "low":
        return activated & low
    if mode == "high":
        return activated & ~low
    flat = activated.flatten(1).cpu()
    if random_fraction is None:
        counts = (activated & low).flatten(1).sum(dim=1).cpu()
    else:
        counts = (flat.sum(dim=1).double() * random_fraction).round().long()
    picked = _random_pick(flat, counts, generator or torch.Generator().manual_seed(0))
    return picked.reshape(fmap.shape).to(fmap.device)


@torch.no_grad()
def sequential_ablation(G, ws: torch.Tensor, rates: ActivationRates, layers: list[SynthesisLayer],
                        rate: float = DEFAULT_RATE, mode: str = "low", random_fraction: float | None = None,
                        seed: int = 0, noise_mode: str = "const") -> Ablation:
    """Algorithm 1 on ws [N, num_ws, w_dim] with M = ``layers``; see the module docstring for ``mode``."""
    rates.check(layers)
    generator = torch.Generator().manual_seed(seed)
    activated, zeroed, heatmaps = {}, {}, {}

    def edit(fmap, index):
        mask = ablation_mask(fmap, rates, index, mode, rate, random_fraction, generator)
        activated[index] = (fmap > 0).flatten(1).sum(dim=1).cpu()
        zeroed[index] = mask.flatten(1).sum(dim=1).cpu()
        heatmaps[index] = low_rate_heatmap(fmap, rates.low_rate(index, rate)).cpu()
        return fmap.masked_fill(mask, 0)

    with ExitStack() as stack:
        for layer in layers:
            stack.enter_context(edit_features(G, layer, lambda f, i=layer.index: edit(f, i), point="activation"))
        images = G.synthesis(ws, noise_mode=noise_mode)
    return Ablation(images, activated, zeroed, heatmaps)


@torch.no_grad()
def low_rate_heatmaps(G, ws: torch.Tensor, rates: ActivationRates, layers: list[SynthesisLayer],
                      rate: float = DEFAULT_RATE, noise_mode: str = "const") -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """The unedited images and each layer's ``low_rate_heatmap`` (Figure 4, first row)."""
    rates.check(layers)
    with read_features(G, layers, "activation") as maps:
        images = G.synthesis(ws, noise_mode=noise_mode)
    return images, {i: low_rate_heatmap(maps[i], rates.low_rate(i, rate)).cpu() for i in maps}
