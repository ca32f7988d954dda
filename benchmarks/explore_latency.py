"""Latency of one explorer image on this machine: the quickstart generator (32 px) and a config F
generator at 256 px (random weights; the time does not depend on them), through the explorer's
render worker as the page's requests reach it (a new seed each time), median and 95th percentile
in milliseconds, for a plain image and for the layer view.

    python benchmarks/explore_latency.py [--requests 40] [--threads N] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics

import torch

from lightning_stylegan.explore.render import network
from lightning_stylegan.explore.server import Explorer
from lightning_stylegan.networks import Generator

CONFIGS = {
    "quickstart-32px": dict(img_resolution=32, img_channels=1, z_dim=128, w_dim=128, mapping_layers=2,
                            channel_base=1024, channel_max=64, topology="skip", normalization="demod"),
    "config-f-256px": dict(img_resolution=256, img_channels=3, z_dim=512, w_dim=512, mapping_layers=8,
                           channel_base=32768, channel_max=512, topology="skip", normalization="demod"),
}


def latencies(explorer: Explorer, count: int, **extra) -> dict:
    times = []
    for seed in range(count + 1):
        explorer.newest = seed + 1
        answer = explorer.render(seed + 1, {"checkpoints": ["G"], "seed": seed} | extra)
        times.append(answer["seconds"] * 1000)
    times = sorted(times[1:])  # the first warms up
    return {"median_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[min(len(times) - 1, round(0.95 * (len(times) - 1)))], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {}
    for name, config in CONFIGS.items():
        torch.manual_seed(0)
        explorer = Explorer([network("G", Generator(**config))])
        results[name] = {"image": latencies(explorer, args.requests),
                         "layer_view": latencies(explorer, args.requests, layer=2)}
        print(name, results[name], flush=True)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=1)


if __name__ == "__main__":
    main()
