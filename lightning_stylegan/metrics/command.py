"""``lightning-stylegan metrics``: score a checkpoint (or exported generator) with named metrics.

    lightning-stylegan metrics --ckpt runs/x/checkpoints/last.ckpt --metrics fid50k_full,pr50k3_full,ppl_wend

Prints a table and merges the results into ``<checkpoint>.metrics.json`` next to the checkpoint;
per-image realism scores go to ``<checkpoint>.<metric>.npy``. The real images are those the
checkpoint was trained on (recorded in it) unless ``--data`` names others.

On several GPUs (or CPU processes), start it with torchrun; each process computes a share of the
images and rank 0 prints and writes the files (the values equal one process's):

    torchrun --nproc_per_node 8 -m lightning_stylegan.cli metrics --ckpt last.ckpt --device cuda --metrics fid50k_full

With torchrun's WORLD_SIZE > 1 it joins the process group (nccl with ``--device cuda``, each rank
on cuda:LOCAL_RANK; gloo on the CPU).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ..data.dataset import ImageDataset
from ..network_files import NetworkFileError, load_networks
from .catalog import EXAMPLES, parse_metrics
from .evaluate import MetricOptions, compute_metrics
from .shards import Shards


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightning-stylegan metrics", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="checkpoint (.ckpt) or exported generator (.pt)")
    parser.add_argument("--metrics", default="fid50k_full",
                        help=f"comma-separated names: {EXAMPLES}, or those of installed metric plugins "
                             "(lightning-stylegan plugins --kind metric)")
    parser.add_argument("--data", help="real images (folder, zip, or 'fashion-mnist'); default: the "
                                       "checkpoint's training data")
    parser.add_argument("--use-labels", action="store_true", help="with --data: read dataset.json labels")
    parser.add_argument("--num-gen", type=int, help="generated images per metric (replaces the name's count)")
    parser.add_argument("--batch", type=int, default=32, help="images per batch")
    parser.add_argument("--features", default="auto",
                        help="feature extractor plugin; auto = inception (FID/KID/IS) and vgg16 (PR)")
    parser.add_argument("--feature-weights", help="local weights file of the feature extractor (with --features auto: of inception; "
                             "or name=path pairs: inception=A.pth,vgg16=B.pth)")
    parser.add_argument("--lpips-backbone", help="local ImageNet weights of the LPIPS backbone (PPL)")
    parser.add_argument("--cache-dir", help="cache of real-image statistics")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (under torchrun: cuda:LOCAL_RANK)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="JSON file (default: <ckpt>.metrics.json)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def _dataset(args, networks) -> ImageDataset:
    G = networks.G_ema
    if args.data is not None:
        return ImageDataset(args.data, G.img_resolution, G.img_channels, use_labels=args.use_labels)
    if networks.data is None:
        raise ValueError(f"{args.ckpt} does not record its training data; give the real images with --data")
    data = networks.data
    return ImageDataset(data.get("path"), G.img_resolution, G.img_channels, resize=data.get("resize", "center-crop"),
                        use_labels=data.get("use_labels", False), max_images=data.get("max_images"))


def join_process_group(device: str) -> str:
    """Join torchrun's default process group (its ``MASTER_ADDR``, ``MASTER_PORT``, ``RANK`` and
    ``WORLD_SIZE``): nccl for a CUDA ``device``, with this rank on ``cuda:LOCAL_RANK``, else gloo.
    Returns this rank's device."""
    if torch.device(device).type == "cuda":
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return device


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        args.device = join_process_group(args.device)
        try:
            return run(args, Shards.from_process_group())
        finally:
            dist.destroy_process_group()
    return run(args, Shards.from_process_group())


def run(args: argparse.Namespace, shards: Shards) -> int:
    """Compute, each process its share; rank 0 prints the table and writes the files."""
    rank = f"rank {shards.rank}: " if shards.world_size > 1 else ""
    try:
        specs = parse_metrics(args.metrics, args.num_gen)
        networks = load_networks(args.ckpt, generator_only=True)
        needs_reals = any(spec.uses_reals for spec in specs) or networks.G_ema.c_dim
        dataset = _dataset(args, networks) if needs_reals else None
        options = MetricOptions(features=args.features, feature_weights=args.feature_weights,
                                lpips_backbone=args.lpips_backbone, batch_size=args.batch, device=args.device,
                                cache_dir=args.cache_dir, seed=args.seed, progress=not args.no_progress)
        start = time.time()
        results, per_image = compute_metrics(specs, networks.G_ema.to(args.device), dataset, options,
                                             shards=shards)
    except (ValueError, NetworkFileError, RuntimeError) as error:
        print(f"{rank}error: {error}", file=sys.stderr)
        return 2
    if not shards.is_main:
        return 0
    width = max(len(name) for name in results)
    print(f"{'METRIC'.ljust(width)}  VALUE")
    for name, value in results.items():
        print(f"{name.ljust(width)}  {value:.6g}")
    out = Path(args.out) if args.out else Path(f"{args.ckpt}.metrics.json")
    record = json.loads(out.read_text()) if out.is_file() else {}
    record.setdefault("results", {}).update(results)
    record.setdefault("runs", []).append({
        "time": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": round(time.time() - start, 1),
        "checkpoint": str(args.ckpt), "data": dataset.source if dataset is not None else None,
        "metrics": {spec.name: {"num_gen": spec.num_gen, "num_real": spec.num_real} for spec in specs},
        "features": args.features, "seed": args.seed, "processes": shards.world_size, "results": results})
    _atomic(out, lambda file: file.write((json.dumps(record, indent=2) + "\n").encode()))
    for name, scores in per_image.items():
        _atomic(Path(f"{args.ckpt}.{name}.npy"), lambda file: np.save(file, scores))
    print(f"wrote {out}")
    return 0


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as file:
        write(file)
    os.replace(tmp, path)
