"""``lightning-stylegan generate``: images, style-mixing grids and interpolations from a generator.

    lightning-stylegan generate --ckpt last.ckpt --outdir out --seeds 0-15 [--trunc 0.7]
    lightning-stylegan generate --ckpt last.ckpt --outdir out --style-mix --rows 0-4 --cols 5-9 --styles 0-6
    lightning-stylegan generate --ckpt last.ckpt --outdir out --interpolate --seeds 0,1,2 --frames 60 [--slerp]
    lightning-stylegan generate --ckpt last.ckpt --interpolate --seeds 0-15 --loop --grid 4x2 --video walk.mp4

Seeds become latents exactly as NVlabs' stylegan2-ada-pytorch ``generate.py`` does,
``z = np.random.RandomState(seed).randn(1, z_dim)``, and images are quantized the same way,
``(x * 127.5 + 128).clamp(0, 255)`` to uint8, so a converted official network gives the same PNG
for the same seed (with ``--batch 1``, the default: larger batches are faster but can change the
last float bits of an image, now and then one pixel level). ``--noise-mode random`` is deterministic
too: each image is synthesized alone with torch's random generator seeded by its seed (by its
row seed in a style-mixing cell, by its frame index in an interpolation).

``--video PATH.mp4`` writes the interpolation as an H.264 MP4 (``lightning_stylegan.video``, with the
optional ``imageio-ffmpeg``) instead of the PNG frames and GIF of ``--outdir``. ``--grid WxH``
plays W x H walks side by side as NVlabs' stylegan3 ``gen_video.py --grid WxH``: the seeds are cut
into W * H consecutive runs, one per tile, row by row, and each tile walks through its own run
(``--loop`` returns each to its first seed, for a video that loops seamlessly as NVlabs' do).

``--translate TX,TY`` and ``--rotate DEG`` move and turn the output image as NVlabs' stylegan3
``gen_images.py`` does: the forward map ``output_transform`` of the image plane (units of the image
size, the center at the origin, x right and y down) goes to the synthesis network's optional hook
``set_transform(matrix)``, which StyleGAN3's generators implement (they sample their Fourier input
through its inverse). A generator without the hook refuses both options. Write a negative
translation as ``--translate=-0.5,0``.

A generator without a W space (``networks.has_w_space``: no mapping network, styles, truncation or
noise) makes the images of seeds and of interpolations in Z (``--slerp`` too) as ``G(z, c)``;
``--trunc`` other than 1, ``--trunc-cutoff``, ``--style-mix``, ``--projected-w`` and ``--space w``
are refused with one line naming what it lacks.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from ..images import image_grid, save_png, to_uint8
from ..networks import has_w_space, require_w_space
from ..nn.noise import NOISE_MODES
from ..video import VideoError, grid_seeds, parse_grid, tile_frames, write_mp4
from .projected_w import load_projected_w, with_noise

MAX_SEED = 2 ** 32 - 1  # numpy RandomState seeds


def parse_range(text: str) -> list[int]:
    """``'0-3,7'`` -> [0, 1, 2, 3, 7]: comma-separated integers and inclusive ranges ``a-b``."""
    values = []
    for part in str(text).split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise ValueError(f"{text!r} is not a list of non-negative integers; write a range like 0-15, "
                             f"a list like 0,3,7, or both: 0-3,7")
        start = int(match.group(1))
        stop = int(match.group(2)) if match.group(2) is not None else start
        if stop < start:
            raise ValueError(f"{text!r}: the range {part.strip()} runs backwards; write {stop}-{start}")
        values.extend(range(start, stop + 1))
    return values


def seed_to_z(seed: int, z_dim: int) -> torch.Tensor:
    """[1, z_dim] float64 latent of ``seed``: ``np.random.RandomState(seed).randn(1, z_dim)`` (NVlabs)."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed {seed} is out of range: seeds are integers from 0 to {MAX_SEED}")
    return torch.from_numpy(np.random.RandomState(seed).randn(1, z_dim))


def output_transform(translate: tuple[float, float] = (0.0, 0.0), rotate: float = 0.0) -> torch.Tensor:
    """[3, 3] float64 affine map of the image plane, in homogeneous coordinates (x right, y down, in
    units of the image size): rotation by ``rotate`` degrees, counterclockwise as the image is seen,
    then translation by ``translate`` (NVlabs stylegan3 ``gen_images.py``'s ``make_transform``:
    rows (cos, sin, tx), (-sin, cos, ty), (0, 0, 1))."""
    angle = math.radians(rotate)
    cos, sin = math.cos(angle), math.sin(angle)
    return torch.tensor([[cos, sin, float(translate[0])], [-sin, cos, float(translate[1])], [0.0, 0.0, 1.0]],
                        dtype=torch.float64)


def set_output_transform(G, translate: tuple[float, float] | None, rotate: float | None) -> None:
    """Give ``output_transform(translate, rotate)`` to ``G.synthesis.set_transform`` (the optional hook of
    generator plugins whose image can be moved and turned, e.g. StyleGAN3's); nothing when both are
    None; a ``ValueError`` naming the options and the generator when it has no such hook."""
    if translate is None and rotate is None:
        return
    hook = getattr(G.synthesis, "set_transform", None)
    if not callable(hook):
        topology = getattr(G, "topology", type(G.synthesis).__name__)
        raise ValueError(f"--translate/--rotate: the {topology!r} generator ({type(G.synthesis).__name__}) cannot "
                         "move or turn its output image: its synthesis network has no set_transform(matrix) hook "
                         "(StyleGAN3's stylegan3-t and stylegan3-r have it). Leave --translate and --rotate out.")
    hook(output_transform(translate or (0.0, 0.0), rotate or 0.0))


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical linear interpolation (Shoemake 1985; White, "Sampling Generative Networks", 2016):
    ``sin((1 - t) W) / sin W * a + sin(t W) / sin W * b`` with W the angle between a and b.

    For a and b of equal norm this is the constant-speed great-circle path of the perceptual path
    length's ``slerp(z1, z2; t)`` (StyleGAN Eq. 2, quoted in 003_22a7711458f25a1a.txt), staying on
    their sphere; t = 0 and t = 1 give a and b exactly. Vectors along the last axis; ``t`` is a
    number or a tensor that broadcasts against them like ``torch.lerp``'s weight (e.g. [N, 1]).
    (Anti)parallel a and b, where the angle gives no plane, fall back to lerp.
    """
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    cos = (a / a.norm(dim=-1, keepdim=True) * b / b.norm(dim=-1, keepdim=True)).sum(-1, keepdim=True)
    angle = torch.acos(cos.clamp(-1, 1))
    sin = torch.sin(angle)
    spherical = torch.sin((1 - t) * angle) / sin * a + torch.sin(t * angle) / sin * b
    return torch.where(sin > 1e-6, spherical, torch.lerp(a, b, t))


def class_labels(G: torch.nn.Module, class_idx: int | None, count: int, device: torch.device) -> torch.Tensor | None:
    """One-hot labels [count, c_dim] of class ``class_idx`` (None for an unconditional network)."""
    if G.c_dim == 0:
        if class_idx is not None:
            raise ValueError(f"--class {class_idx}: this network is unconditional (c_dim = 0); leave --class out")
        return None
    if class_idx is None:
        raise ValueError(f"This network is conditional ({G.c_dim} classes): pick one with --class C, "
                         f"0 <= C < {G.c_dim}")
    if not 0 <= class_idx < G.c_dim:
        raise ValueError(f"--class {class_idx} is out of range: this network has classes 0 to {G.c_dim - 1}")
    labels = torch.zeros(count, G.c_dim, device=device)
    labels[:, class_idx] = 1
    return labels


def _device(G: torch.nn.Module) -> torch.device:
    return next(G.parameters()).device


@torch.no_grad()
def map_latents(G, z: torch.Tensor, truncation_psi: float = 1, truncation_cutoff: int | None = None,
                class_idx: int | None = None, batch_size: int = 1) -> torch.Tensor:
    """z [N, z_dim] -> ws [N, num_ws, w_dim] through the mapping network, ``batch_size`` at a time."""
    require_w_space(G, "it has no ws to map z to; make its images with latent_images(G, z)")
    device = _device(G)
    ws = []
    for chunk in z.split(batch_size):
        c = class_labels(G, class_idx, len(chunk), device)
        ws.append(G.mapping(chunk.to(device, torch.float32), c, truncation_psi=truncation_psi,
                            truncation_cutoff=truncation_cutoff))
    return torch.cat(ws)


@torch.no_grad()
def latent_images(G, z: torch.Tensor, truncation_psi: float = 1, truncation_cutoff: int | None = None,
                  class_idx: int | None = None, batch_size: int = 1) -> torch.Tensor:
    """z [N, z_dim] -> uint8 images [N, C, H, W] on the CPU as ``G(z, c)``, ``batch_size`` at a time: how a
    generator without a W space makes its images (it has no noise, and no truncation: ``truncation_psi``
    other than 1 or a ``truncation_cutoff`` is an error)."""
    if truncation_psi != 1 or truncation_cutoff is not None:
        require_w_space(G, "--trunc and --trunc-cutoff pull w towards the average w; leave them out")
    device = _device(G)
    return torch.cat([to_uint8(G(chunk.to(device, torch.float32), class_labels(G, class_idx, len(chunk), device))).cpu()
                      for chunk in z.split(batch_size)])


@torch.no_grad()
def synthesize(G, ws: torch.Tensor, noise_mode: str = "const", noise_seeds: list[int] | None = None,
               batch_size: int = 1) -> torch.Tensor:
    """ws [N, num_ws, w_dim] -> uint8 images [N, C, H, W] on the CPU.

    With ``noise_mode='random'`` image i is synthesized alone, torch's generator seeded with
    ``noise_seeds[i]`` (default i; the global random state is restored afterwards)."""
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
    images = []
    if noise_mode == "random":
        noise_seeds = range(len(ws)) if noise_seeds is None else noise_seeds
        device = ws.device
        devices = [device.index if device.index is not None else torch.cuda.current_device()] \
            if device.type == "cuda" else []
        for w, seed in zip(ws, noise_seeds, strict=True):
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                images.append(to_uint8(G.synthesis(w[None], noise_mode="random")).cpu())
    else:
        for chunk in ws.split(batch_size):
            images.append(to_uint8(G.synthesis(chunk, noise_mode=noise_mode)).cpu())
    return torch.cat(images)


def seeds_to_ws(G, seeds: list[int], truncation_psi: float = 1, truncation_cutoff: int | None = None,
                class_idx: int | None = None, batch_size: int = 1) -> torch.Tensor:
    """ws [len(seeds), num_ws, w_dim] of the seeds' NVlabs latents."""
    z = torch.cat([seed_to_z(seed, G.z_dim) for seed in seeds])
    return map_latents(G, z, truncation_psi, truncation_cutoff, class_idx, batch_size)


def generate_images(G, seeds: list[int], truncation_psi: float = 1, truncation_cutoff: int | None = None,
                    class_idx: int | None = None, noise_mode: str = "const", batch_size: int = 1) -> torch.Tensor:
    """uint8 images [len(seeds), C, H, W], one per seed, as NVlabs' generate.py makes them."""
    if not has_w_space(G):
        z = torch.cat([seed_to_z(seed, G.z_dim) for seed in seeds])
        return latent_images(G, z, truncation_psi, truncation_cutoff, class_idx, batch_size)
    ws = seeds_to_ws(G, seeds, truncation_psi, truncation_cutoff, class_idx, batch_size)
    return synthesize(G, ws, noise_mode, seeds, batch_size)


def style_mix_ws(row_ws: torch.Tensor, col_ws: torch.Tensor, styles: list[int]) -> torch.Tensor:
    """[R, C, num_ws, w_dim]: cell (r, c) is row r's ws with the styles ``styles`` replaced by
    column c's (NVlabs' style_mixing.py; StyleGAN Figure 3 copies a subset of styles from one
    source into the other)."""
    mixed = row_ws[:, None].repeat(1, col_ws.shape[0], 1, 1)
    mixed[:, :, styles] = col_ws[None, :, styles]
    return mixed


class StyleMix(NamedTuple):
    grid: torch.Tensor    # uint8 [C, (R + 1) H, (K + 1) W]: empty corner, column images on top, row images left
    rows: torch.Tensor    # uint8 [R, C, H, W], the row seeds' own images
    cols: torch.Tensor    # uint8 [K, C, H, W], the column seeds' own images
    cells: torch.Tensor   # uint8 [R, K, C, H, W], the mixed images
    ws: torch.Tensor      # [R, K, num_ws, w_dim], the ws the cells were synthesized from


def style_mix_grid(G, row_seeds: list[int], col_seeds: list[int], styles: list[int], truncation_psi: float = 1,
                   truncation_cutoff: int | None = None, class_idx: int | None = None, noise_mode: str = "const",
                   batch_size: int = 1) -> StyleMix:
    """The style-mixing grid of StyleGAN (Figure 3) as NVlabs' style_mixing.py lays it out: cell
    (r, c) takes the styles listed in ``styles`` (e.g. the coarse ones, 0-6) from column seed c and
    all other styles from row seed r."""
    require_w_space(G, "--style-mix swaps styles between the ws of two seeds; make images of --seeds instead")
    bad = [s for s in styles if not 0 <= s < G.num_ws]
    if bad:
        raise ValueError(f"--styles {bad}: this generator has {G.num_ws} styles, indices 0 to {G.num_ws - 1}")
    row_ws = seeds_to_ws(G, row_seeds, truncation_psi, truncation_cutoff, class_idx, batch_size)
    col_ws = seeds_to_ws(G, col_seeds, truncation_psi, truncation_cutoff, class_idx, batch_size)
    mixed = style_mix_ws(row_ws, col_ws, styles)
    rows = synthesize(G, row_ws, noise_mode, row_seeds, batch_size)
    cols = synthesize(G, col_ws, noise_mode, col_seeds, batch_size)
    cell_seeds = [seed for seed in row_seeds for _ in col_seeds]
    cells = synthesize(G, mixed.flatten(0, 1), noise_mode, cell_seeds, batch_size)
    cells = cells.reshape(len(row_seeds), len(col_seeds), *cells.shape[1:])
    tiles = [torch.zeros_like(rows[0]), *cols]
    for r in range(len(row_seeds)):
        tiles += [rows[r], *cells[r]]
    grid = image_grid(torch.stack(tiles), columns=len(col_seeds) + 1)
    return StyleMix(grid, rows, cols, cells, mixed)


def iter_interpolation_frames(G, seeds: list[int], frames: int = 60, space: str = "z", spherical: bool = False,
                              loop: bool = False, truncation_psi: float = 1, truncation_cutoff: int | None = None,
                              class_idx: int | None = None, noise_mode: str = "const",
                              batch_size: int = 1) -> Iterator[torch.Tensor]:
    """uint8 frames [C, H, W] along the path through the seeds' latents, one at a time (``batch_size``
    synthesized together); the arguments are checked at the call, before the first frame.

    ``frames`` frames per pair of consecutive seeds, at t = 0, 1/frames, ...; the path ends on the
    last seed (F = frames * (len(seeds) - 1) + 1), or with ``loop`` returns to the first seed
    (F = frames * len(seeds), the first frame not repeated, for a seamless loop). In Z (``space='z'``)
    it lerps or, with ``spherical``, slerps between the z's and maps each point; in W it lerps
    between the mapped ws (truncation applies before). The first frame is the first seed's image.
    """
    if len(seeds) < 2:
        raise ValueError(f"Interpolation needs at least two seeds, got {seeds}; e.g. --seeds 0,1,2")
    if frames < 1:
        raise ValueError(f"--frames must be at least 1, got {frames}")
    if space not in ("z", "w"):
        raise ValueError(f"--space must be 'z' or 'w', got {space!r}")
    if spherical and space == "w":
        raise ValueError("--slerp interpolates in Z (W is not Gaussian: there it is a plain lerp); "
                         "use --space z with --slerp, or leave --slerp out")
    if space == "w":
        require_w_space(G, "--space w lerps between the ws of the seeds; interpolate in Z (--space z, --slerp)")
    keys = seeds + seeds[:1] if loop else seeds
    if space == "z":
        points = torch.cat([seed_to_z(seed, G.z_dim) for seed in keys])
    else:
        points = seeds_to_ws(G, keys, truncation_psi, truncation_cutoff, class_idx, batch_size).cpu()
    t = torch.arange(frames, dtype=points.dtype) / frames
    t = t.reshape(-1, *[1] * (points.ndim - 1))
    blend = slerp if spherical else torch.lerp
    path = [blend(a.expand(frames, *a.shape), b.expand(frames, *b.shape), t)
            for a, b in zip(points[:-1], points[1:])]
    if not loop:
        path.append(points[-1:])
    return _render_path(G, torch.cat(path), space, truncation_psi, truncation_cutoff, class_idx, noise_mode,
                        batch_size)


def _render_path(G, path: torch.Tensor, space: str, truncation_psi: float, truncation_cutoff: int | None,
                 class_idx: int | None, noise_mode: str, batch_size: int) -> Iterator[torch.Tensor]:
    """The frames of ``iter_interpolation_frames``' z's or ws, ``batch_size`` latents at a time
    (frame i's random noise seeded by i)."""
    for start in range(0, len(path), batch_size):
        chunk = path[start:start + batch_size]
        if not has_w_space(G):
            yield from latent_images(G, chunk, truncation_psi, truncation_cutoff, class_idx, batch_size)
        else:
            ws = map_latents(G, chunk, truncation_psi, truncation_cutoff, class_idx, batch_size) if space == "z" \
                else chunk.to(_device(G))
            yield from synthesize(G, ws, noise_mode, list(range(start, start + len(chunk))), batch_size)


def interpolation_frames(G, seeds: list[int], frames: int = 60, space: str = "z", spherical: bool = False,
                         loop: bool = False, truncation_psi: float = 1, truncation_cutoff: int | None = None,
                         class_idx: int | None = None, noise_mode: str = "const", batch_size: int = 1) -> torch.Tensor:
    """uint8 frames [F, C, H, W]: ``iter_interpolation_frames`` gathered in one tensor."""
    return torch.stack(list(iter_interpolation_frames(G, seeds, frames, space, spherical, loop, truncation_psi,
                                                      truncation_cutoff, class_idx, noise_mode, batch_size)))


def save_gif(frames: torch.Tensor, path: str | os.PathLike, duration: int) -> Path:
    """Write uint8 frames [F, C, H, W] as an endlessly looping GIF, ``duration`` ms per frame
    (written atomically; RGBA frames lose their alpha, which GIF cannot hold)."""
    path = Path(path)
    pictures = []
    for frame in frames:
        array = frame.numpy().transpose(1, 2, 0)
        picture = Image.fromarray(np.ascontiguousarray(array[:, :, 0] if array.shape[2] == 1 else array))
        pictures.append(picture.convert("RGB") if picture.mode == "RGBA" else picture)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pictures[0].save(tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=duration, loop=0)
    os.replace(tmp, path)
    return path


def vec2_arg(text: str) -> tuple[float, float]:
    """``'0.3,-1'`` -> (0.3, -1.0)."""
    parts = str(text).split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not two numbers X,Y; write e.g. 0.3,1 (or =-0.5,0 for a "
                                         "negative first number)") from None


def grid_arg(text: str) -> tuple[int, int]:
    try:
        return parse_grid(text)
    except VideoError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def range_arg(text: str) -> list[int]:
    try:
        return parse_range(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightning-stylegan generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="checkpoint (.ckpt) or exported generator (.pt); "
                                                      "its EMA generator is used")
    parser.add_argument("--outdir", help="folder for the PNGs (created if missing); required except with --video")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--style-mix", action="store_true", help="style-mixing grid of --rows x --cols")
    mode.add_argument("--interpolate", action="store_true", help="frames and a GIF (or --video) through --seeds")
    mode.add_argument("--projected-w", metavar="NPZ",
                      help="render the w of `lightning-stylegan project` (projected_w.npz, with its noise maps)")
    parser.add_argument("--seeds", type=range_arg, help="seeds, e.g. 0-15 or 0-3,7 (default 0-15)")
    parser.add_argument("--trunc", type=float, default=1.0, help="truncation psi (1: none)")
    parser.add_argument("--trunc-cutoff", type=int, help="truncate only the first N styles")
    parser.add_argument("--class", dest="class_idx", type=int, help="class of a conditional network")
    parser.add_argument("--noise-mode", choices=NOISE_MODES, default="const")
    parser.add_argument("--translate", type=vec2_arg, metavar="TX,TY",
                        help="move the image by TX widths right and TY heights down (generators with "
                             "set_transform, e.g. StyleGAN3; NVlabs gen_images.py)")
    parser.add_argument("--rotate", type=float, metavar="DEG",
                        help="turn the image counterclockwise by DEG degrees (generators with set_transform, "
                             "e.g. StyleGAN3; NVlabs gen_images.py)")
    parser.add_argument("--rows", type=range_arg, default="0-4", help="style mix: row seeds (default 0-4)")
    parser.add_argument("--cols", type=range_arg, default="5-9", help="style mix: column seeds (default 5-9)")
    parser.add_argument("--styles", type=range_arg, default="0-6",
                        help="style mix: style indices each cell takes from its column seed (default 0-6)")
    parser.add_argument("--frames", type=int, default=60, help="interpolate: frames per pair of seeds")
    parser.add_argument("--space", choices=("z", "w"), default="z", help="interpolate: latent space")
    parser.add_argument("--slerp", action="store_true", help="interpolate: spherical interpolation in Z")
    parser.add_argument("--loop", action="store_true", help="interpolate: return to the first seed")
    parser.add_argument("--duration", type=int, default=40, help="interpolate: GIF milliseconds per frame")
    parser.add_argument("--video", metavar="PATH.mp4", help="interpolate: write an MP4 instead of the frames and GIF "
                                                            "(needs imageio-ffmpeg: the [video] extra)")
    parser.add_argument("--fps", type=float, default=30, help="interpolate: MP4 frames per second (default 30)")
    parser.add_argument("--grid", type=grid_arg, default=(1, 1), metavar="WxH",
                        help="interpolate: W x H walks side by side, each through its own run of the seeds "
                             "(NVlabs gen_video.py; default 1x1)")
    parser.add_argument("--batch", type=int, default=1, help="images per forward pass")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    return parser


def render_projected_w(G, path: str) -> torch.Tensor:
    """uint8 [1, C, H, W] of a ``projected_w.npz`` with its optimised noise maps, constant noise."""
    require_w_space(G, "--projected-w renders a w found by `lightning-stylegan project`; make images of --seeds")
    device = next(G.parameters()).device
    w, noise = load_projected_w(path, G.num_ws, G.w_dim)
    if noise:
        G = with_noise(G, {name: value.to(device) for name, value in noise.items()})
    return synthesize(G, w.to(device), noise_mode="const")


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.outdir is None and args.video is None:
        parser.error("the following arguments are required: --outdir (or --interpolate --video PATH.mp4)")
    from ..network_files import load_generator

    try:
        if args.batch < 1:
            raise ValueError(f"--batch must be at least 1, got {args.batch}")
        if args.video and not args.interpolate:
            raise VideoError(f"--video {args.video} records an interpolation: add --interpolate --seeds ...")
        if args.video and args.outdir:
            raise VideoError("--video writes the MP4 alone, without the frames and GIF of --outdir: leave one out")
        tiles = grid_seeds(args.seeds or [], *args.grid) if args.interpolate else None
        G = load_generator(args.ckpt).to(args.device)
        set_output_transform(G, args.translate, args.rotate)
        options = dict(truncation_psi=args.trunc, truncation_cutoff=args.trunc_cutoff, class_idx=args.class_idx,
                       noise_mode=args.noise_mode, batch_size=args.batch)
        outdir = Path(args.outdir) if args.outdir else None  # None with --video, which writes its file alone
        if args.style_mix:
            mix = style_mix_grid(G, args.rows, args.cols, args.styles, **options)
            for seed, image in [*zip(args.rows, mix.rows), *zip(args.cols, mix.cols)]:
                save_png(image, outdir / f"{seed}-{seed}.png")
            for r, row_seed in enumerate(args.rows):
                for c, col_seed in enumerate(args.cols):
                    save_png(mix.cells[r, c], outdir / f"{row_seed}-{col_seed}.png")
            save_png(mix.grid, outdir / "grid.png")
            print(f"wrote {len(args.rows)}x{len(args.cols)} style-mixed images and {outdir / 'grid.png'}")
        elif args.projected_w:
            image = render_projected_w(G, args.projected_w)
            save_png(image[0], outdir / "proj.png")
            print(f"wrote {outdir / 'proj.png'}")
        elif args.interpolate:
            walks = [iter_interpolation_frames(G, seeds, args.frames, args.space, args.slerp, args.loop, **options)
                     for seeds in tiles]
            frames = tile_frames(walks, columns=args.grid[0])
            if args.video:
                count = write_mp4(frames, args.video, args.fps)
                print(f"wrote {args.video}: {count} frames at {args.fps:g} fps")
            else:
                frames = torch.stack(list(frames))
                for index, frame in enumerate(frames):
                    save_png(frame, outdir / f"frame{index:04d}.png")
                save_gif(frames, outdir / "interpolation.gif", args.duration)
                print(f"wrote {len(frames)} frames and {outdir / 'interpolation.gif'}")
        else:
            seeds = args.seeds or parse_range("0-15")
            images = generate_images(G, seeds, **options)
            for seed, image in zip(seeds, images):
                save_png(image, outdir / f"seed{seed:04d}.png")
            save_png(image_grid(images), outdir / "grid.png")
            print(f"wrote {len(seeds)} images and {outdir / 'grid.png'}")
    except (ValueError, RuntimeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
