"""Activation rates of neurons (004_738a47e1aec6d700.txt Section 3.1, Definitions 1-2, Eq. 1).

A neuron is one element (c, h, w) of a layer's feature map f^i (the paper's layer outputs are
512x4x4, 512x8x8, 512x16x16 neurons and its heat maps show LR-neurons per pixel); it is activated
for z when f^i_n(z) > 0. Its activation rate over N sampled latents is

    R^i_n = 1/N sum_k I(f^i_n(z_k) > 0)                                           (Eq. 1)

(N = 30K in the paper). LR-neurons have R^i_n <= R, HR-neurons R^i_n > R. The map is tapped right
after the non-linearity (``activation``: the output of a StyleGAN2 layer, the input of the
normalization of a StyleGAN v1 layer). Counts are accumulated batch by batch, so N is not limited
by memory, and each forward pass stops after the last layer asked for. ``save`` writes
``<path>.npz`` (counts per layer) and ``<path>.json`` (a summary).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .latents import seed_batches
from .layers import SynthesisLayer, forward_until, read_features, synthesis_layers
from .outputs import write_json

DEFAULT_NUM = 30000
DEFAULT_RATE = 0.3


@dataclass
class ActivationRates:
    """Per layer index: how many of ``num`` latents activated each neuron ([C, H, W] counts)."""

    counts: dict[int, torch.Tensor]
    num: int
    names: dict[int, str]
    settings: dict = field(default_factory=dict)

    def rate(self, index: int) -> torch.Tensor:
        """R^i [C, H, W] of layer ``index`` (Eq. 1)."""
        if index not in self.counts:
            raise ValueError(f"No activation rates for layer {index}; these rates cover layers "
                             f"{sorted(self.counts)}. Compute them with `analyze rates --layers ...`")
        return self.counts[index].double() / self.num

    def low_rate(self, index: int, rate: float = DEFAULT_RATE) -> torch.Tensor:
        """Boolean [C, H, W]: the LR-neurons, R^i_n <= rate."""
        return self.rate(index) <= rate

    def high_rate(self, index: int, rate: float = DEFAULT_RATE) -> torch.Tensor:
        """Boolean [C, H, W]: the HR-neurons, R^i_n > rate."""
        return self.rate(index) > rate

    def check(self, layers: list[SynthesisLayer]) -> None:
        """Raise if these rates were not computed on a generator with these layers."""
        for layer in layers:
            name = self.names.get(layer.index)
            shape = tuple(self.counts[layer.index].shape) if layer.index in self.counts else None
            if name != layer.name or shape != (layer.channels, layer.resolution, layer.resolution):
                raise ValueError(f"The activation rates do not fit layer {layer.describe()} (they have "
                                 f"{name} of shape {shape}); compute them for this generator with `analyze rates`")

    def summary(self, thresholds=(0.1, 0.3, 0.5, 0.7)) -> dict:
        layers = {}
        for index in sorted(self.counts):
            r = self.rate(index)
            layers[str(index)] = {"name": self.names[index], "shape": list(r.shape), "mean_rate": float(r.mean()),
                                  "never_activated": float((r == 0).double().mean()),
                                  "always_activated": float((r == 1).double().mean()),
                                  "low_rate_fraction": {str(t): float((r <= t).double().mean()) for t in thresholds}}
        return {"num": self.num, "settings": self.settings, "layers": layers}

    def save(self, path: str | os.PathLike) -> Path:
        """``<path>.npz`` with ``counts_<i>`` arrays and a JSON ``meta`` string, plus ``<path>.json``."""
        path = Path(path).with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"num": self.num, "names": {str(k): v for k, v in self.names.items()},
                           "settings": self.settings})
        arrays = {f"counts_{index}": counts.cpu().numpy().astype(np.int64) for index, counts in self.counts.items()}
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as handle:
            np.savez(handle, meta=np.array(meta), **arrays)
        os.replace(tmp, path)
        write_json(path.with_suffix(".json"), self.summary())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> ActivationRates:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No activation rates at {path}; write them with "
                                    "`lightning-stylegan analyze rates --ckpt ... --outdir DIR` (DIR/rates.npz)")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                counts = {int(key.split("_", 1)[1]): torch.from_numpy(data[key]) for key in data.files
                          if key.startswith("counts_")}
        except (ValueError, KeyError, OSError) as error:
            raise ValueError(f"{path} is not an activation-rates file written by `analyze rates` ({error})") from error
        return cls(counts, int(meta["num"]), {int(k): v for k, v in meta["names"].items()}, meta["settings"])


@torch.no_grad()
def activation_rates(G, num: int = DEFAULT_NUM, layers: list[SynthesisLayer] | None = None, batch: int = 64,
                     seed: int = 0, truncation_psi: float = 1.0, noise_mode: str = "const",
                     class_idx: int | None = None, device: str | torch.device = "cpu",
                     progress: bool = False) -> ActivationRates:
    """Eq. 1 over the ``num`` latents of seeds ``seed .. seed + num - 1`` (no truncation by default,
    as in the paper)."""
    layers = layers if layers is not None else synthesis_layers(G)
    counts = {layer.index: torch.zeros(layer.channels, layer.resolution, layer.resolution, dtype=torch.long,
                                       device=device) for layer in layers}
    last = max(layers, key=lambda layer: layer.index)
    done = 0
    with read_features(G, layers, "activation") as maps:
        for _, z, c in seed_batches(G, num, batch, seed, class_idx, device):
            forward_until(G, last, G.mapping(z, c, truncation_psi=truncation_psi), noise_mode)
            for index, fmap in maps.items():
                counts[index] += (fmap > 0).sum(dim=0)
            done += z.shape[0]
            if progress:
                print(f"\ractivation rates: {done}/{num} latents", end="", flush=True)
    if progress:
        print()
    settings = {"seed": seed, "truncation_psi": truncation_psi, "noise_mode": noise_mode, "class": class_idx,
                "point": "activation", "batch": batch}
    return ActivationRates({k: v.cpu() for k, v in counts.items()}, num,
                           {layer.index: layer.name for layer in layers}, settings)
