"""Feature maps after the normalization, their per-pixel magnitude and the artifact region
(000_2d004fc061d5976e.txt "A Case Study", Figures 3 and 4).

The paper plots, at selected pixels, the feature intensity over all channels and finds the
artifact region "on average one-order higher" than the face and background regions, which are
"in the same order". Here the magnitude of a pixel is the mean absolute value over the C channels,
``m_hw = 1/C sum_c |x_chw|``; the artifact region is the set of pixels with ``m_hw`` above
``factor`` times the median magnitude of the map (the typical face/background level, since the
artifact is small), ``factor = 10`` for "one order"; the magnitude ratio of a layer is the mean
magnitude inside the region over the mean outside it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .layers import SynthesisLayer, read_features

ARTIFACT_FACTOR = 10.0  # "one-order higher" (Figure 4)


def pixel_magnitude(fmap: torch.Tensor) -> torch.Tensor:
    """[C, H, W] (or [N, C, H, W]) -> [H, W]: mean over channels of |x|."""
    return fmap.abs().mean(dim=-3)


def artifact_region(magnitude: torch.Tensor, factor: float = ARTIFACT_FACTOR) -> torch.Tensor:
    """Boolean [H, W]: pixels whose magnitude exceeds ``factor`` x the median magnitude."""
    if factor <= 0:
        raise ValueError(f"factor must be positive, got {factor}")
    return magnitude > factor * magnitude.flatten().median()


def magnitude_ratio(magnitude: torch.Tensor, region: torch.Tensor) -> float | None:
    """Mean magnitude in the region over the mean outside it (None if either part is empty)."""
    inside, outside = magnitude[region], magnitude[~region]
    if inside.numel() == 0 or outside.numel() == 0 or float(outside.mean()) == 0:
        return None
    return float(inside.mean() / outside.mean())


@dataclass
class LayerMagnitude:
    """The magnitude analysis of one layer's map for one image."""

    layer: SynthesisLayer
    point: str
    fmap: torch.Tensor  # [C, H, W]
    magnitude: torch.Tensor  # [H, W]
    region: torch.Tensor  # bool [H, W]

    def summary(self) -> dict:
        flat = self.magnitude.flatten()
        peak = int(flat.argmax())
        return {"layer": self.layer.index, "name": self.layer.name, "resolution": self.layer.resolution,
                "channels": self.layer.channels, "point": self.point,
                "median_magnitude": float(flat.median()), "max_magnitude": float(flat.max()),
                "peak_over_median": float(flat.max() / flat.median()) if float(flat.median()) else None,
                "peak_pixel": [peak // self.magnitude.shape[1], peak % self.magnitude.shape[1]],
                "region_pixels": int(self.region.sum()), "region_fraction": float(self.region.float().mean()),
                "magnitude_ratio": magnitude_ratio(self.magnitude, self.region)}


def default_point(layer: SynthesisLayer) -> str:
    """Figure 3's tap: after the normalization where there is one, else the layer's output."""
    return "normalized" if "normalized" in layer.points else "output"


@torch.no_grad()
def layer_magnitudes(G, ws: torch.Tensor, layers: list[SynthesisLayer], point: str | None = None,
                     factor: float = ARTIFACT_FACTOR, noise_mode: str = "const"
                     ) -> tuple[torch.Tensor, list[LayerMagnitude]]:
    """One image (ws [1, num_ws, w_dim]) and the magnitude analysis of each layer at ``point``
    (default: ``default_point`` per layer)."""
    results, image = [], None
    by_point: dict[str, list[SynthesisLayer]] = {}
    for layer in layers:
        by_point.setdefault(point or default_point(layer), []).append(layer)
    maps: dict[tuple[str, int], torch.Tensor] = {}
    for tap, group in by_point.items():
        with read_features(G, group, tap) as found:
            image = G.synthesis(ws, noise_mode=noise_mode)
        maps.update({(tap, index): fmap for index, fmap in found.items()})
    for layer in layers:
        tap = point or default_point(layer)
        fmap = maps[(tap, layer.index)][0].float().cpu()
        magnitude = pixel_magnitude(fmap)
        results.append(LayerMagnitude(layer, tap, fmap, magnitude, artifact_region(magnitude, factor)))
    return image, results


def strongest_channels(result: LayerMagnitude, count: int) -> list[int]:
    """The channels with the largest mean |x| in the artifact region (the whole map if empty)."""
    where = result.region if bool(result.region.any()) else torch.ones_like(result.region)
    strength = result.fmap.abs()[:, where].mean(dim=1)
    return strength.argsort(descending=True)[:count].tolist()
