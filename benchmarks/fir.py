"""FIR up/down-sampling (``upfirdn2d``) and 3x3 convolution timings by memory layout.

For each shape: milliseconds of forward, forward + backward, and the R1-style double backward
(``grad(create_graph=True)`` then backward), in NCHW and channels_last, for
``upsample2d`` / ``downsample2d`` (the depthwise-convolution ``_UpFirDn2d`` with its own adjoint)
and, for comparison, the same depthwise convolution differentiated by torch itself; plus the 3x3
convolution of a synthesis layer. Median of ``--repeats``; these are the figures behind
``lightning_stylegan/nn/memory_format.py`` and ``nn/filters.py``.

    python benchmarks/fir.py [--threads 2] [--repeats 20] [--dtype float32|bfloat16] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from lightning_stylegan.nn.filters import downsample2d, setup_filter, upsample2d

SHAPES = [(8, 128, 32, 32), (8, 128, 16, 16), (32, 512, 8, 8), (8, 3, 64, 64)]


def median_ms(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(sorted(times)[len(times) // 2] * 1e3, 3)


def torch_autograd_down(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """The same depthwise down-sampling left to torch's convolution backward."""
    channels = x.shape[1]
    return F.conv2d(x, f.flip([0, 1]).to(x.dtype)[None, None].expand(channels, 1, *f.shape), stride=2, padding=1,
                    groups=channels)


def timings(op, x: torch.Tensor, repeats: int) -> dict[str, float]:
    def forward_backward():
        op(x).backward(torch.ones_like(op(x)))

    def double_backward():
        (grad,) = torch.autograd.grad(op(x).square().sum(), x, create_graph=True)
        grad.square().sum().backward()

    with torch.no_grad():
        forward = median_ms(lambda: op(x), repeats)
    return {"forward": forward, "forward_backward": median_ms(forward_backward, repeats),
            "double_backward": median_ms(double_backward, repeats)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    f = setup_filter()
    rows = []
    for shape in SHAPES:
        for layout in ("nchw", "channels_last"):
            x = torch.randn(shape, dtype=getattr(torch, args.dtype))
            if layout == "channels_last":
                x = x.contiguous(memory_format=torch.channels_last)
            x.requires_grad_(True)
            weight = torch.randn(shape[1], shape[1], 3, 3, dtype=x.dtype)
            ops = {"upsample2d": lambda t: upsample2d(t, f), "downsample2d": lambda t: downsample2d(t, f),
                   "downsample_torch_autograd": lambda t: torch_autograd_down(t, f),
                   "conv3x3": lambda t: F.conv2d(t, weight, padding=1)}
            for name, op in ops.items():
                row = {"shape": list(shape), "layout": layout, "op": name, **timings(op, x, args.repeats)}
                rows.append(row)
                print(f"{str(shape):18s} {layout:13s} {name:26s} fwd {row['forward']:8.3f} ms  "
                      f"fwd+bwd {row['forward_backward']:8.3f} ms  double bwd {row['double_backward']:8.3f} ms")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"rows": rows, "dtype": args.dtype, "threads": torch.get_num_threads(), "torch": torch.__version__}, out, indent=2)


if __name__ == "__main__":
    main()
