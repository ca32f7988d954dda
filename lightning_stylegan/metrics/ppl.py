"""Perceptual path length (PPL): Karras et al., "A Style-Based Generator Architecture for Generative
Adversarial Networks" (StyleGAN, CVPR 2019), Section 4.2, Eq. 2 (in Z) and Eq. 3 (in W):

    l_Z = E[ d(G(slerp(z1, z2; t)), G(slerp(z1, z2; t + eps))) / eps^2 ],   z1, z2 ~ N(0, I)
    l_W = E[ d(g(lerp(f(z1), f(z2); t)), g(lerp(f(z1), f(z2); t + eps))) / eps^2 ]

with d the LPIPS distance, eps = 1e-4 and t ~ U(0, 1) ("full" paths) or t = 0 ("end"points).
StyleGAN2 (Karras et al. 2020, Section 3 and Table 1) reports it in W at path endpoints, with the
face crop on FFHQ and without it on LSUN. Numerics follow NVlabs' stylegan2-ada-pytorch
``metrics/perceptual_path_length.py``: slerp between normalized z's, lerp between mapped ws with the
same label at both ends, the const noise maps redrawn per batch and shared by both images of a
pair, the face crop, area downsampling by ``img_resolution // 256``, and the mean of the per-pair
values between their 1st ('lower') and 99th ('higher') percentiles. Pairs are drawn per batch from
generators seeded by (seed, batch), so the batches can be split over processes (``Shards``): each
rank computes its batches and every rank takes the filtered mean of all pairs, in order.

A generator without a W space (``networks.has_w_space``) has PPL in Z only, its images ``G(z, c)``.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..networks import has_w_space, require_w_space
from .base import Metric, MetricSpec
from .shards import Shards, batch_generator

SPACES = ("z", "w")
SAMPLINGS = ("full", "end")

# NVlabs' named configurations (stylegan2-ada-pytorch metrics/metric_main.py). ppl2_wend is the
# StyleGAN2 Table 1 "path length" without the face crop; the ppl_* ones crop to the face (FFHQ).
PPL_METRICS = {
    "ppl_zfull": dict(num_samples=50000, epsilon=1e-4, space="z", sampling="full", crop=True, batch_size=2),
    "ppl_wfull": dict(num_samples=50000, epsilon=1e-4, space="w", sampling="full", crop=True, batch_size=2),
    "ppl_zend": dict(num_samples=50000, epsilon=1e-4, space="z", sampling="end", crop=True, batch_size=2),
    "ppl_wend": dict(num_samples=50000, epsilon=1e-4, space="w", sampling="end", crop=True, batch_size=2),
    "ppl2_wend": dict(num_samples=50000, epsilon=1e-4, space="w", sampling="end", crop=False, batch_size=2),
}


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation along the great circle from a/|a| towards b/|b| (StyleGAN Eq. 2):
    the unit vector at angle ``t * angle(a, b)`` from a/|a|; t broadcasts against [N, 1]."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    cos = (a * b).sum(dim=-1, keepdim=True)
    angle = t * torch.acos(cos)
    ortho = b - cos * a
    ortho = ortho / ortho.norm(dim=-1, keepdim=True)
    out = a * torch.cos(angle) + ortho * torch.sin(angle)
    return out / out.norm(dim=-1, keepdim=True)


def face_crop(images: torch.Tensor) -> torch.Tensor:
    """The FFHQ face window of StyleGAN's PPL: with c = R // 8, rows [3c, 7c) and columns [2c, 6c)."""
    if images.shape[2] != images.shape[3]:
        raise ValueError(f"The face crop needs square images, got {images.shape[2]}x{images.shape[3]}")
    c = images.shape[2] // 8
    return images[:, :, 3 * c:7 * c, 2 * c:6 * c]


def downsample(images: torch.Tensor, img_resolution: int) -> torch.Tensor:
    """Average ``f x f`` pixel blocks with f = img_resolution // 256 (the generator's resolution,
    as NVlabs' PyTorch code: a cropped 1024 image ends at 128 px); unchanged when f <= 1."""
    factor = img_resolution // 256
    if factor <= 1:
        return images
    n, ch, h, w = images.shape
    return images.reshape(n, ch, h // factor, factor, w // factor, factor).mean(dim=(3, 5))


def filtered_mean(distances: np.ndarray | torch.Tensor) -> float:
    """The mean of the values d with lo <= d <= hi, lo the 1st percentile rounded down to a sample
    ('lower') and hi the 99th rounded up ('higher'), which drops the long tail of the distribution."""
    d = np.asarray(distances, dtype=np.float64).reshape(-1)
    lo = np.percentile(d, 1, method="lower")
    hi = np.percentile(d, 99, method="higher")
    return float(d[(d >= lo) & (d <= hi)].mean())


def check_space(G: nn.Module, space: str) -> None:
    """A ``NoWSpaceError`` for PPL in W (``space='w'``) of a generator without a W space."""
    if space == "w":
        require_w_space(G, "PPL in W (ppl_wfull, ppl_wend, ppl2_wend) lerps between its ws; "
                           "measure PPL in Z instead (ppl_zfull, ppl_zend)")


def pair_distances(G: nn.Module, distance: nn.Module, z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor,
                   c: torch.Tensor | None, epsilon: float, space: str, crop: bool,
                   truncation_psi: float = 1.0) -> torch.Tensor:
    """d(image(t), image(t + eps)) / eps^2 for each pair of endpoints (StyleGAN Eqs. 2-3) -> [N].

    ``space='z'`` slerps between z0 and z1 before the mapping (or ``G(z, c)`` of a generator without
    a W space); ``space='w'`` lerps between the mapped ws (the same label ``c`` at both ends). Both
    images of a pair use the 'const' noise maps.
    """
    cc = None if c is None else torch.cat([c, c])
    if space == "w":
        w0, w1 = G.mapping(torch.cat([z0, z1]), cc, truncation_psi=truncation_psi).chunk(2)
        t = t.to(w0.dtype).reshape([-1] + [1] * (w0.ndim - 1))
        images = G.synthesis(torch.cat([w0.lerp(w1, t), w0.lerp(w1, t + epsilon)]), noise_mode="const")
    else:
        t = t.reshape(-1, 1)
        zs = torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)])
        images = G.synthesis(G.mapping(zs, cc, truncation_psi=truncation_psi), noise_mode="const") \
            if has_w_space(G) else G(zs, cc, truncation_psi=truncation_psi)
    if crop:
        images = face_crop(images)
    img0, img1 = downsample(images, G.img_resolution).chunk(2)
    return distance(img0, img1) / epsilon ** 2


def perceptual_path_length(G: nn.Module, distance: nn.Module, num_samples: int = 50000, epsilon: float = 1e-4,
                           space: str = "w", sampling: str = "end", crop: bool = False, batch_size: int = 2,
                           truncation_psi: float = 1.0, labels: torch.Tensor | np.ndarray | None = None,
                           seed: int = 0, device: str | torch.device = "cpu", progress: bool = True,
                           shards: Shards | None = None) -> float:
    """PPL of generator ``G`` (StyleGAN Section 4.2, Eq. 2 for ``space='z'``, Eq. 3 for ``'w'``).

    ``distance`` maps two image batches in [-1, 1] to a [N] tensor (an ``LPIPSDistance`` on
    ``device``). Pairs are streamed ``batch_size`` at a time; batch j draws, in this order, from
    ``batch_generator(seed, j)``: t ~ U(0, 1) [n] (multiplied by 0 for ``sampling='end'``),
    z ~ N(0, I) [2n, z_dim] split into z0 and z1, label rows (uniformly from ``labels`` [M, c_dim],
    required for conditional G, as NVlabs draws dataset labels), then every ``*noise_const`` buffer
    of (a copy of) G. ``truncation_psi`` is applied by the mapping at both ends. With ``shards``
    each rank computes its batches; every rank returns the value of all of them.
    """
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    check_space(G, space)
    if num_samples < 1 or batch_size < 1 or not epsilon > 0:
        raise ValueError(f"num_samples and batch_size must be >= 1 and epsilon > 0, got "
                         f"{num_samples}, {batch_size}, {epsilon}")
    if G.c_dim and labels is None:
        raise ValueError(f"G is conditional (c_dim={G.c_dim}): pass labels [M, {G.c_dim}] to draw from, "
                         f"such as the dataset's labels")
    if G.c_dim:
        labels = torch.as_tensor(labels, dtype=torch.float32)
        if labels.ndim != 2 or labels.shape[1] != G.c_dim or len(labels) == 0:
            raise ValueError(f"labels must have shape [M, {G.c_dim}] with M >= 1, got {tuple(labels.shape)}")
    G = copy.deepcopy(G).eval().requires_grad_(False).to(device)
    noise_buffers = [buf for name, buf in G.named_buffers() if name.endswith("noise_const")]
    shards = shards or Shards()
    mine = shards.batches(num_samples, batch_size)
    results = []
    with torch.no_grad(), shards.progress_bar(mine, progress, desc=f"ppl {space}{sampling}", unit="pair") as bar:
        for j, start, stop in shards.polled(mine, num_samples, batch_size):
            n, generator = stop - start, batch_generator(seed, j)
            t = torch.rand(n, generator=generator) * (1.0 if sampling == "full" else 0.0)
            z0, z1 = torch.randn(2 * n, G.z_dim, generator=generator).chunk(2)
            c = labels[torch.randint(len(labels), (n,), generator=generator)].to(device) if G.c_dim else None
            for buf in noise_buffers:
                buf.copy_(torch.randn(buf.shape, generator=generator))
            results.append(pair_distances(G, distance, z0.to(device), z1.to(device), t.to(device), c,
                                          epsilon, space, crop, truncation_psi).cpu())
            bar.update(n)
    return filtered_mean(shards.gather(results, num_samples, batch_size).numpy())


class PerceptualPathLength(Metric):
    """Perceptual path length (StyleGAN Section 4.2) in NVlabs' configurations: ppl_zfull,
    ppl_wfull, ppl_zend, ppl_wend, ppl2_wend (50k paths; ``num_gen`` replaces the count)."""

    api_version = 1
    forms = ", ".join(PPL_METRICS)

    def parse(self, name: str, num_gen: int | None = None) -> MetricSpec | None:
        if name not in PPL_METRICS:
            return None
        options = dict(PPL_METRICS[name])
        count = options.pop("num_samples")
        return MetricSpec(name, "ppl", num_gen or count, options=options)

    def check(self, spec, G) -> None:
        check_space(G, spec.options["space"])

    def compute(self, spec, context) -> dict[str, float]:
        return {spec.name: perceptual_path_length(
            context.G, context.lpips(), num_samples=spec.num_gen, labels=context.labels,
            seed=context.options.seed, device=context.options.device, progress=context.options.progress,
            shards=context.shards, **spec.options)}
