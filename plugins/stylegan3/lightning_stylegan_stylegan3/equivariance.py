"""StyleGAN3's equivariance metrics EQ-T, EQ-T_frac and EQ-R (Karras et al. 2021, "Alias-Free
Generative Adversarial Networks", Section 3 and Appendix E), as ``lightning_stylegan.metrics``
plugins: ``eqt50k_int``, ``eqt50k_frac``, ``eqr50k`` (any count: ``eqt5k_int``, ``eqr500``).

Each is a peak signal-to-noise ratio in dB between the generator's output transformed by an
image operator and the output of the generator whose input was transformed instead,

    PSNR = 10 log10(2^2 / MSE),   MSE = sum(mask (ref - img)^2) / sum(mask),

2 being the range of images in [-1, 1] and ``mask`` the operators' validity masks
(``eq_transforms``). The generator is transformed through ``G.synthesis.input.transform``, the
[3, 3] map of the Fourier-feature input: translation by t writes -t into its last column, rotation
by alpha writes ``rotation_matrix(-alpha)``. Per batch of 4 (NVlabs' size: the transform is drawn
once per batch), batch j from core's ``batch_generator(seed, j)``, in this order: every
``noise_const`` buffer, z [4, z_dim], the labels (for a conditional G, rows of the dataset's
labels), then t ~ U(-1/8, 1/8)^2 (EQ-T: rounded to whole pixels; EQ-T_frac: as drawn) or
alpha ~ U(-pi, pi) (EQ-R). EQ-R compares the rotated reference with the pseudo-rotated output, both
masks applied. Numerics follow NVlabs' stylegan3 ``metrics/equivariance.py`` and ``metric_main.py``.
Under several processes (the context's ``Shards``) each rank computes its batches and the batches'
sums are gathered and added in batch order on every rank.
"""
from __future__ import annotations

import copy
import math
import re

import torch
from torch import nn

from lightning_stylegan.metrics.base import Metric, MetricSpec, count_text, parse_count
from lightning_stylegan.metrics.shards import Shards, batch_generator

from .eq_transforms import fractional_rotation, fractional_translation, integer_translation, pseudo_rotation, rotation_matrix

MODES = ("eqt_int", "eqt_frac", "eqr")
BATCH_SIZE = 4  # NVlabs' metric_main: one transform per batch of 4


def input_transform(G: nn.Module) -> torch.Tensor:
    """``G.synthesis.input.transform``, the [3, 3] buffer the metrics write; a clear error without it."""
    synthesis = getattr(G, "synthesis", None)
    transform = getattr(getattr(synthesis, "input", None), "transform", None)
    if not isinstance(transform, torch.Tensor) or tuple(transform.shape) != (3, 3):
        raise ValueError(
            f"The equivariance metrics (eqt*_int, eqt*_frac, eqr*) transform the generator's input through "
            f"G.synthesis.input.transform, a [3, 3] buffer, as StyleGAN3's generators have (topology stylegan3-t "
            f"or stylegan3-r of lightning-stylegan-stylegan3); this generator's synthesis "
            f"({type(synthesis).__name__}) has none. Score it with FID and the other metrics instead.")
    return transform


def psnr(squared_error: float, count: float) -> float:
    """10 log10(2^2 / (squared_error / count)): dB for images in [-1, 1] (inf when exact)."""
    mse = squared_error / count
    return math.inf if mse == 0 else 20 * math.log10(2) - 10 * math.log10(mse)


def draw_transform(mode: str, resolution: int, generator: torch.Generator, translate_max: float = 0.125,
                   rotate_max: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(the input transform for G, the parameter of the image operator): a translation t [2] in
    image units (EQ-T rounds it to whole pixels), or an angle alpha [] in radians."""
    if mode == "eqr":
        angle = (torch.rand([], generator=generator) * 2 - 1) * (rotate_max * math.pi)
        return rotation_matrix(-angle), angle
    t = (torch.rand(2, generator=generator) * 2 - 1) * translate_max
    if mode == "eqt_int":
        t = (t * resolution).round() / resolution
    transform = torch.eye(3)
    transform[:2, 2] = -t
    return transform, t


def compare(mode: str, orig: torch.Tensor, img: torch.Tensor, parameter: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked squared error, mask): the operator applied to ``orig`` against ``img``, the output
    of the transformed generator (pseudo-rotated for EQ-R)."""
    if mode == "eqr":
        ref, ref_mask = fractional_rotation(orig, parameter)
        img, img_mask = pseudo_rotation(img, parameter)
        mask = ref_mask * img_mask
    else:
        operator = integer_translation if mode == "eqt_int" else fractional_translation
        ref, mask = operator(orig, parameter[0], parameter[1])
    return (ref - img).square() * mask, mask


@torch.no_grad()
def equivariance_psnr(G: nn.Module, mode: str, num_samples: int = 50000, labels=None, seed: int = 0,
                      device: str | torch.device = "cpu", batch_size: int = BATCH_SIZE,
                      translate_max: float = 0.125, rotate_max: float = 1.0, progress: bool = True,
                      shards: Shards | None = None) -> float:
    """The PSNR (dB) of ``mode`` (``eqt_int``, ``eqt_frac``, ``eqr``) over ``num_samples`` images of
    G. G itself is not changed: a copy (eval, on ``device``) gets the transforms and noise draws.
    With ``shards`` each rank computes its batches; every rank returns the PSNR of all of them."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if num_samples < 1 or batch_size < 1:
        raise ValueError(f"num_samples and batch_size must be >= 1, got {num_samples}, {batch_size}")
    input_transform(G)
    c_dim = getattr(G, "c_dim", 0)
    if c_dim:
        if labels is None:
            raise ValueError(f"G is conditional (c_dim={c_dim}): pass labels [M, {c_dim}] to draw from, "
                             "such as the dataset's labels")
        labels = torch.as_tensor(labels, dtype=torch.float32)
    G = copy.deepcopy(G).eval().requires_grad_(False).to(device)
    transform = input_transform(G)
    noise = [buf for name, buf in G.named_buffers() if name.endswith("noise_const")]
    shards = shards or Shards()
    mine = shards.batches(num_samples, batch_size)
    sums = []  # per batch: [masked squared error, mask]
    with shards.progress_bar(mine, progress, desc=mode, unit="img") as bar:
        for j, start, stop in mine:
            n, generator = stop - start, batch_generator(seed, j)
            for buf in noise:
                buf.copy_(torch.randn(buf.shape, generator=generator))
            z = torch.randn(n, G.z_dim, generator=generator).to(device)
            c = labels[torch.randint(len(labels), (n,), generator=generator)].to(device) if c_dim else None
            ws = G.mapping(z, c)
            transform.copy_(torch.eye(3))
            orig = G.synthesis(ws, noise_mode="const").float()
            matrix, parameter = draw_transform(mode, G.img_resolution, generator, translate_max, rotate_max)
            transform.copy_(matrix)
            img = G.synthesis(ws, noise_mode="const").float()
            error, mask = compare(mode, orig, img, parameter.to(device))
            sums.append(torch.stack([error.double().sum(), mask.double().sum()]).cpu())
            bar.update(n)
    total = torch.zeros(2, dtype=torch.float64)
    for batch_sums in shards.gather_batches(sums, num_samples, batch_size):  # added in batch order
        total += batch_sums
    return psnr(float(total[0]), float(total[1]))


class Equivariance(Metric):
    """Base of the three equivariance plugins; ``mode`` picks the operator."""

    mode = ""
    suffix = ""  # the name is eqt<count>_int, eqt<count>_frac or eqr<count>

    def parse(self, name: str, num_gen: int | None = None) -> MetricSpec | None:
        stem, end = self.mode.split("_")[0], f"_{self.suffix}" if self.suffix else ""
        match = re.fullmatch(rf"{stem}(\d+(?:\.\d+)?)(k?){end}", name)
        if not match:
            return None
        count = parse_count(match[1], match[2], name)  # checked even when num_gen replaces it
        count = num_gen or count
        return MetricSpec(f"{stem}{count_text(count)}{end}", self.mode, count)

    def compute(self, spec: MetricSpec, context) -> dict[str, float]:
        options = context.options
        return {spec.name: equivariance_psnr(context.G, self.mode, spec.num_gen, labels=context.labels,
                                             seed=options.seed, device=options.device, progress=options.progress,
                                             shards=context.shards)}


class IntegerTranslation(Equivariance):
    """EQ-T (StyleGAN3): PSNR in dB of integer translations of the input vs the output."""

    api_version = 1
    mode, suffix = "eqt_int", "int"
    forms = "eqt50k_int (any count: eqt5k_int, eqt500_int)"


class FractionalTranslation(Equivariance):
    """EQ-T_frac (StyleGAN3): PSNR in dB of subpixel translations (Lanczos-3) of input vs output."""

    api_version = 1
    mode, suffix = "eqt_frac", "frac"
    forms = "eqt50k_frac (any count)"


class Rotation(Equivariance):
    """EQ-R (StyleGAN3): PSNR in dB of rotations of the input vs the (band-limited) output."""

    api_version = 1
    mode = "eqr"
    forms = "eqr50k (any count)"
