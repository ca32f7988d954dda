"""GANDissect-style unit ablation (000_2d004fc061d5976e.txt Claim 2, Figures 6, 7, 9 and 10).

A unit is one channel of a layer's output; ablating it sets the whole feature map of that channel
to zero (Bau et al. 2018). The paper ablates "the convolutional units with maximum activation at
the artifact region" (``strongest_unit``), repeats that on the new artifact (Figures 6 and 9:
``iterative_unit_ablation``), ablates the same unit for several latents (Figure 7) and ablates all
but one unit of a layer (Figure 10: ``keep_only=True``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .feature_maps import ARTIFACT_FACTOR, artifact_region, pixel_magnitude
from .layers import SynthesisLayer, edit_features, read_features


def _check_units(layer: SynthesisLayer, units: Sequence[int]) -> None:
    bad = [u for u in units if not 0 <= u < layer.channels]
    if bad:
        raise ValueError(f"Units {bad} do not exist: layer {layer.describe()} has units 0..{layer.channels - 1}")


def zero_units(fmap: torch.Tensor, units: Sequence[int], keep_only: bool = False) -> torch.Tensor:
    """[N, C, H, W] with the channels ``units`` set to zero (or all others, with ``keep_only``)."""
    keep = torch.ones(fmap.shape[1], dtype=torch.bool, device=fmap.device)
    keep[list(units)] = False
    if keep_only:
        keep = ~keep
    return fmap * keep.to(fmap.dtype).reshape(1, -1, 1, 1)


@torch.no_grad()
def ablate_units(G, ws: torch.Tensor, layer: SynthesisLayer, units: Sequence[int], keep_only: bool = False,
                 point: str = "output", noise_mode: str = "const") -> torch.Tensor:
    """Images [N, C, R, R] with ``units`` of ``layer`` zeroed at ``point``."""
    _check_units(layer, units)
    with edit_features(G, layer, lambda f: zero_units(f, units, keep_only), point=point):
        return G.synthesis(ws, noise_mode=noise_mode)


def strongest_unit(fmap: torch.Tensor, factor: float = ARTIFACT_FACTOR, exclude: Sequence[int] = ()) -> int:
    """The channel of [C, H, W] with the highest mean activation in the artifact region (the peak
    pixel if no region stands out by ``factor``), skipping ``exclude``."""
    magnitude = pixel_magnitude(fmap)
    region = artifact_region(magnitude, factor)
    if not bool(region.any()):
        region = magnitude == magnitude.max()
    strength = fmap[:, region].mean(dim=1)
    strength[list(exclude)] = -torch.inf
    return int(strength.argmax())


@dataclass
class UnitStep:
    units: list[int]  # ablated so far
    images: torch.Tensor  # [1, C, R, R]


@torch.no_grad()
def iterative_unit_ablation(G, ws: torch.Tensor, layer: SynthesisLayer, steps: int,
                            factor: float = ARTIFACT_FACTOR, point: str = "output",
                            noise_mode: str = "const") -> list[UnitStep]:
    """For one latent (ws [1, ...]): ``steps`` times, add the strongest unit of the artifact region
    of the current (already ablated) map to the ablated set and regenerate."""
    if not 1 <= steps <= layer.channels:
        raise ValueError(f"steps must be between 1 and {layer.channels} (the units of {layer.name}), got {steps}")
    units: list[int] = []
    result = []
    for _ in range(steps):
        with edit_features(G, layer, lambda f: zero_units(f, units), point=point), \
                read_features(G, [layer], point) as maps:
            G.synthesis(ws, noise_mode=noise_mode)
        units = units + [strongest_unit(maps[layer.index][0], factor, exclude=units)]
        result.append(UnitStep(list(units), ablate_units(G, ws, layer, units, point=point, noise_mode=noise_mode)))
    return result
