"""``lightning-stylegan project``: find the latent w whose image matches a target (StyleGAN2,
002_0a18e98dc55024d1.txt Section 5 and Appendix D).

    lightning-stylegan project --ckpt last.ckpt --target face.png --outdir proj [--steps 1000] [--w-plus]

Appendix D: w starts at the W average mu_w (over 10 000 mapped z's) and is optimised with Adam
(default betas) together with all noise maps n_i (started at N(0, I)) for 1000 steps. The learning
rate ramps up linearly from 0 to 0.1 over the first 50 steps and down to 0 with a cosine over the
last 250. While evaluating the loss, w gets Gaussian noise of standard deviation 0.05 sigma_w t^2,
t going from 1 to 0 over the first 750 steps (sigma_w^2 = E||f(z) - mu_w||^2). The loss is the LPIPS
distance between target and synthesized image, both downsampled to 256x256 when larger, plus
alpha = 1e5 times the noise regularizer ``noise_regularization``; after every step each noise map is
renormalised to zero mean and unit variance. Numerics (the w statistics from
``np.random.RandomState(123)``, the learning-rate formula, area downsampling, the target's center
crop and LANCZOS resize) follow NVlabs' stylegan2-ada-pytorch ``projector.py``. ``--w-plus``
optimises one w per style (W+, Section 5's extended space) instead of one w for all.

Writes ``projected_w.npz`` (``w`` [num_ws, w_dim], ``distance``, the noise maps ``noise:<buffer>``),
``target.png``, ``proj.png``, ``side_by_side.png`` (target | projection) and, with
``--progress-frames N``, N frames of the optimisation (with the final noise maps) and
``progress.gif``. Prints the final LPIPS distance.

A generator without a W space (``networks.has_w_space``) has no w to find: it is refused with one line.
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import sys
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..images import save_png, to_uint8
from ..networks import require_w_space
from .generate import class_labels, save_gif
from .projected_w import noise_buffers, save_projected_w, with_noise

LPIPS_RESOLUTION = 256
W_STATS_SEED = 123  # NVlabs projector.py draws the z's of the W statistics from this fixed seed
PROJECT_NEEDS_W = ("`project` searches W (and the noise maps) for the latent whose image matches the target; "
                   "there is no W to search")


def noise_regularization(noise_maps: Iterable[torch.Tensor]) -> torch.Tensor:
    """StyleGAN2 Appendix D: ``sum_{i,j} L_{i,j}`` with

        L_{i,j} = (1/r^2 sum_{x,y} n_{i,j}(x, y) n_{i,j}(x - 1, y))^2 + (1/r^2 sum_{x,y} n_{i,j}(x, y) n_{i,j}(x, y - 1))^2,

    the maps wrapping at the edges; ``n_{i,0}`` is noise map i and ``n_{i,j+1}`` averages 2x2
    neighbourhoods of ``n_{i,j}`` and multiplies by 2 (keeping unit variance), down to 8x8.
    (NVlabs' projector.py averages without the factor 2; we follow the paper.)"""
    total = 0.0
    for noise in noise_maps:
        noise = noise[None, None]
        while True:
            total = total + (noise * torch.roll(noise, shifts=1, dims=3)).mean() ** 2 \
                          + (noise * torch.roll(noise, shifts=1, dims=2)).mean() ** 2
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2) * 2
    return torch.as_tensor(total)


def learning_rate(step: int, num_steps: int, initial_lr: float = 0.1, rampdown_length: float = 0.25,
                  rampup_length: float = 0.05) -> float:
    """Appendix D's schedule at ``step``: linear ramp-up from 0 over the first ``rampup_length`` of
    the steps, cosine ramp-down to 0 over the last ``rampdown_length`` (NVlabs' formula)."""
    t = step / num_steps
    ramp = 0.5 - 0.5 * math.cos(min(1.0, (1.0 - t) / rampdown_length) * math.pi)
    return initial_lr * ramp * min(1.0, t / rampup_length)


@torch.no_grad()
def w_statistics(G, num_samples: int = 10000, class_idx: int | None = None,
                 batch_size: int = 1000) -> tuple[torch.Tensor, float]:
    """mu_w [w_dim] and sigma_w = sqrt(E||f(z) - mu_w||^2) over ``num_samples`` mapped z's (Appendix D)."""
    device = next(G.parameters()).device
    z = torch.from_numpy(np.random.RandomState(W_STATS_SEED).randn(num_samples, G.z_dim)).to(torch.float32)
    ws = torch.cat([G.mapping(chunk.to(device), class_labels(G, class_idx, len(chunk), device))[:, 0]
                    for chunk in z.split(batch_size)])
    w_avg = ws.mean(dim=0)
    return w_avg, float((ws - w_avg).square().sum(dim=1).mean().sqrt())


def _lpips_size(images: torch.Tensor) -> torch.Tensor:
    if images.shape[2] > LPIPS_RESOLUTION:
        images = F.interpolate(images, size=(LPIPS_RESOLUTION, LPIPS_RESOLUTION), mode="area")
    return images


class Projection(NamedTuple):
    ws: torch.Tensor               # [num_ws, w_dim], the final projection
    distance: float                # LPIPS(target, g(ws, noise)) at the end
    ws_per_step: torch.Tensor      # [num_steps, num_ws, w_dim], ws after every step
    noise: dict[str, torch.Tensor]  # the optimised noise maps by buffer name


def project(G, target: torch.Tensor, distance: torch.nn.Module, num_steps: int = 1000, w_avg_samples: int = 10000,
            initial_lr: float = 0.1, initial_noise_factor: float = 0.05, lr_rampdown_length: float = 0.25,
            lr_rampup_length: float = 0.05, noise_ramp_length: float = 0.75, regularize_noise_weight: float = 1e5,
            w_plus: bool = False, class_idx: int | None = None, seed: int = 0, progress: bool = True) -> Projection:
    """Project the uint8 image ``target`` [C, R, R] (G's channels and resolution) into W (or W+).

    ``distance(img0, img1) -> [N]`` compares images in [-1, 1] (``metrics.lpips_distance``). The
    noise maps and the noise on w come from a torch generator seeded with ``seed``. G is not
    modified (the optimisation runs on a copy)."""
    require_w_space(G, PROJECT_NEEDS_W)
    expected = (G.img_channels, G.img_resolution, G.img_resolution)
    if tuple(target.shape) != expected or target.dtype != torch.uint8:
        raise ValueError(f"The target must be a uint8 image of shape {expected} (the generator's channels and "
                         f"resolution), got {target.dtype} {tuple(target.shape)}; load it with load_target()")
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    G = copy.deepcopy(G).eval().requires_grad_(False)
    device = next(G.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    w_avg, w_std = w_statistics(G, w_avg_samples, class_idx)
    target_images = _lpips_size(target[None].to(device, torch.float32) / 127.5 - 1)

    w_opt = w_avg[None].repeat(G.num_ws if w_plus else 1, 1).requires_grad_(True)  # [1 or num_ws, w_dim]
    noise = noise_buffers(G)
    for buf in noise.values():
        buf.copy_(torch.randn(buf.shape, generator=generator, device=device))
        buf.requires_grad_(True)
    optimizer = torch.optim.Adam([w_opt, *noise.values()], lr=initial_lr, betas=(0.9, 0.999))
    ws_per_step = torch.zeros(num_steps, G.num_ws, G.w_dim)
    report_every = max(1, num_steps // 20)
    for step in range(num_steps):
        t = step / num_steps
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, num_steps, initial_lr, lr_rampdown_length, lr_rampup_length)
        w_noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2
        w_noisy = w_opt + torch.randn(w_opt.shape, generator=generator, device=device) * w_noise_scale
        images = G.synthesis(w_noisy.expand(G.num_ws, -1)[None], noise_mode="const")
        dist = distance(target_images, _lpips_size(images)).sum()
        loss = dist + regularize_noise_weight * noise_regularization(noise.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        ws_per_step[step] = w_opt.detach().expand(G.num_ws, -1).cpu()
        with torch.no_grad():
            for buf in noise.values():
                buf -= buf.mean()
                buf *= buf.square().mean().rsqrt()
        if progress and ((step + 1) % report_every == 0 or step + 1 == num_steps):
            print(f"step {step + 1:>{len(str(num_steps))}}/{num_steps}: lpips {float(dist.detach()):.4f} loss {float(loss.detach()):.4f}",
                  flush=True)

    final = ws_per_step[-1]
    with torch.no_grad():
        images = G.synthesis(final[None].to(device), noise_mode="const")
        final_distance = float(distance(target_images, _lpips_size(images)).sum())
    return Projection(final, final_distance, ws_per_step, {k: v.detach().cpu().clone() for k, v in noise.items()})


def load_target(path: str | os.PathLike, resolution: int, channels: int) -> torch.Tensor:
    """The image file as uint8 [channels, resolution, resolution]: center-cropped to a square and
    resized with LANCZOS (NVlabs' projector.py); gray for 1 channel, RGBA for 4."""
    try:
        image = Image.open(path)
        image.load()
    except (OSError, ValueError) as error:
        raise ValueError(f"--target {path}: cannot read it as an image ({error})") from error
    image = image.convert({1: "L", 3: "RGB", 4: "RGBA"}[channels])
    w, h = image.size
    s = min(w, h)
    image = image.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
    image = image.resize((resolution, resolution), Image.LANCZOS)
    array = np.asarray(image).reshape(resolution, resolution, channels)
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightning-stylegan project", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="checkpoint (.ckpt) or exported generator (.pt); "
                                                      "its EMA generator is used")
    parser.add_argument("--target", required=True, help="image file to project")
    parser.add_argument("--outdir", required=True, help="folder for the results (created if missing)")
    parser.add_argument("--steps", type=int, default=1000, help="optimisation steps")
    parser.add_argument("--w-plus", action="store_true", help="optimise one w per style (W+)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial noise maps and the noise on w")
    parser.add_argument("--w-avg-samples", type=int, default=10000, help="z's for the W average and scale")
    parser.add_argument("--class", dest="class_idx", type=int, help="class of a conditional network")
    parser.add_argument("--progress-frames", type=int, default=0,
                        help="save N frames of the optimisation and progress.gif")
    parser.add_argument("--duration", type=int, default=40, help="progress.gif milliseconds per frame")
    parser.add_argument("--lpips-net", choices=("vgg", "alex", "squeeze"), default="vgg", help="LPIPS backbone")
    parser.add_argument("--lpips-backbone", help="local ImageNet weights of the LPIPS backbone "
                                                 "(torchvision state dict, e.g. vgg16-397923af.pth)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from ..metrics.lpips_distance import LPIPSWeightsError, load_lpips
    from ..network_files import load_generator

    try:
        if args.progress_frames < 0:
            raise ValueError(f"--progress-frames must be 0 or more, got {args.progress_frames}")
        G = load_generator(args.ckpt).to(args.device)
        require_w_space(G, PROJECT_NEEDS_W)  # before LPIPS is loaded
        target = load_target(args.target, G.img_resolution, G.img_channels)
        distance = load_lpips(args.lpips_net, args.lpips_backbone, args.device)
        result = project(G, target, distance, num_steps=args.steps, w_avg_samples=args.w_avg_samples,
                         w_plus=args.w_plus, class_idx=args.class_idx, seed=args.seed)
    except (LPIPSWeightsError, ValueError, RuntimeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    outdir = Path(args.outdir)
    G = with_noise(G, result.noise)
    with torch.no_grad():
        projection = to_uint8(G.synthesis(result.ws[None].to(args.device), noise_mode="const"))[0].cpu()
    save_png(target, outdir / "target.png")
    save_png(projection, outdir / "proj.png")
    save_png(torch.cat([target, projection], dim=2), outdir / "side_by_side.png")
    save_projected_w(outdir / "projected_w.npz", result.ws, result.distance, result.noise)
    if args.progress_frames:
        steps = np.unique(np.linspace(0, args.steps - 1, args.progress_frames).round().astype(int))
        with torch.no_grad():
            frames = torch.cat([to_uint8(G.synthesis(result.ws_per_step[step][None].to(args.device),
                                                     noise_mode="const")).cpu() for step in steps])
        for index, frame in enumerate(frames):
            save_png(frame, outdir / "progress" / f"frame{index:04d}.png")
        save_gif(frames, outdir / "progress.gif", args.duration)
    print(f"final LPIPS distance {result.distance:.6f}; wrote {outdir / 'projected_w.npz'} and "
          f"{outdir / 'side_by_side.png'}")
    return 0
