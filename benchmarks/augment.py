"""Throughput of the ``ada`` augmentation pipeline (``bgc``), and of NVlabs' ``AugmentPipe`` side by side.

    python benchmarks/augment.py [--nvlabs-dir /somewhere/stylegan2-ada-pytorch] [--preset bgc]
        [--p 1.0 0.6] [--sizes 32:32 256:8 32:8] [--repeats 4] [--threads 2] [--json out.json]

For every ``resolution:batch`` of ``--sizes`` and every ``--p``: images per second of the forward
alone (no grad) and of forward + backward to the input images (``(aug(x) * w).sum()``), 3 channels,
and the milliseconds per batch. Every repetition reseeds torch, and both implementations get the
same seeds, hence the same random draws and the same padding: the same work. The default ``32:8``
row is the augmentation's cost in one D input of a ``benchmarks/train_step.py`` batch (D sees an
augmented batch in G main, in D main twice, and in D reg). ``--nvlabs-dir`` imports NVlabs'
``training/augment.py`` from that checkout at run time; nothing of it is part of this project (on
the CPU its CUDA ops fall back to their reference code).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import torch

from lightning_stylegan.augmentations.ada import PRESETS, AdaptiveAugment


def timed(augment, x: torch.Tensor, backward: bool, repeats: int) -> float:
    """Seconds per batch, after one warm-up call; repetition r uses seed r."""
    weight = torch.randn_like(x)
    times = []
    for r in range(repeats + 1):
        inputs = x.detach().requires_grad_(backward)
        torch.manual_seed(r)
        start = time.perf_counter()
        with torch.set_grad_enabled(backward):
            out = augment(inputs)
            if backward:
                (out * weight).sum().backward()
        times.append(time.perf_counter() - start)
    return sum(times[1:]) / repeats


def measure(augment, sizes, ps, repeats: int) -> list[dict]:
    rows = []
    for resolution, batch in sizes:
        x = torch.rand(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(0)) * 2 - 1
        for p in ps:
            augment.p.fill_(p)
            row = {"resolution": resolution, "batch": batch, "p": p}
            for name, backward in (("forward", False), ("forward_backward", True)):
                seconds = timed(augment, x, backward, repeats)
                row[f"{name}_img_per_s"] = round(batch / seconds, 1)
                row[f"{name}_ms_per_batch"] = round(1000 * seconds, 1)
            rows.append(row)
            print(f"  {resolution:4d} px  batch {batch:3d}  p {p:.2f}:  "
                  f"forward {row['forward_img_per_s']:8.1f} img/s ({row['forward_ms_per_batch']:7.1f} ms)   "
                  f"forward+backward {row['forward_backward_img_per_s']:8.1f} img/s "
                  f"({row['forward_backward_ms_per_batch']:7.1f} ms)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nvlabs-dir", help="a stylegan2-ada-pytorch checkout, to time its AugmentPipe too")
    parser.add_argument("--preset", default="bgc", choices=list(PRESETS))
    parser.add_argument("--p", type=float, nargs="+", default=[1.0, 0.6])
    parser.add_argument("--sizes", nargs="+", default=["32:32", "256:8", "32:8"], help="resolution:batch")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    sizes = [tuple(int(v) for v in size.split(":")) for size in args.sizes]
    result = {"config": {k: v for k, v in vars(args).items() if k != "json"},
              "torch": torch.__version__, "threads": torch.get_num_threads()}
    print(f"ours: AdaptiveAugment({args.preset!r})")
    result["ours"] = measure(AdaptiveAugment(args.preset), sizes, args.p, args.repeats)
    if args.nvlabs_dir:
        sys.path.insert(0, args.nvlabs_dir)
        from training.augment import AugmentPipe
        print(f"NVlabs: AugmentPipe(**augpipe_specs[{args.preset!r}])")
        nvlabs = AugmentPipe(**{op: 1 for op in PRESETS[args.preset]})
        result["nvlabs"] = measure(nvlabs, sizes, args.p, args.repeats)
        for ours, theirs in zip(result["ours"], result["nvlabs"]):
            ours["speedup_vs_nvlabs"] = {key: round(ours[key] / theirs[key], 2)
                                         for key in ("forward_img_per_s", "forward_backward_img_per_s")}
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)


if __name__ == "__main__":
    main()
