"""Throughput of the metric pipeline on this machine, to plan a ``fid50k_full`` run.

* generate + Inception: EMA images of a StyleGAN2 generator streamed through the FID Inception
  (torch-fidelity's ``inception-v3-compat``, random weights of the right architecture when no
  weights file is given: the cost is the same), in images per second;
* Fréchet distance of two 2048-d statistics (``scipy.linalg.sqrtm``), in seconds;
* precision/recall (k = 3) of two sets of ``--pr-count`` 4096-d features, in seconds.

    python benchmarks/metrics.py [--resolution 32] [--count 256] [--batch 32] [--pr-count 5000]
        [--inception-weights PATH] [--device cpu] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from lightning_stylegan.metrics.feature_stats import generator_stats
from lightning_stylegan.metrics.features import load_extractor
from lightning_stylegan.metrics.frechet import frechet_distance
from lightning_stylegan.metrics.precision_recall import precision_recall
from lightning_stylegan.networks import Generator


def random_inception_weights(folder: Path) -> Path:
    """torch-fidelity's Inception architecture with random weights, saved as a state dict."""
    from torch_fidelity import feature_extractor_inceptionv3 as module

    with mock.patch.object(module, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(module.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None):
        network = module.FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"])
    path = folder / "random-inception.pth"
    torch.save(network.state_dict(), path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--count", type=int, default=256, help="generated images to time")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--pr-count", type=int, default=5000)
    parser.add_argument("--inception-weights")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.manual_seed(0)
    G = Generator(args.resolution, 3, z_dim=512, w_dim=512, channel_base=4096, channel_max=128).eval()
    with tempfile.TemporaryDirectory() as folder:
        weights = args.inception_weights or random_inception_weights(Path(folder))
        extractor = load_extractor("inception", weights=weights, device=args.device)
        generator_stats(G, extractor, args.batch, batch_size=args.batch, device=args.device, progress=False)  # warm-up
        start = time.perf_counter()
        generator_stats(G, extractor, args.count, batch_size=args.batch, device=args.device, progress=False)
        images_per_second = args.count / (time.perf_counter() - start)

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 4096, 2048))
    start = time.perf_counter()
    frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    fid_seconds = time.perf_counter() - start

    real = torch.randn(args.pr_count, 4096)
    fake = torch.randn(args.pr_count, 4096)
    start = time.perf_counter()
    precision_recall(real, fake, k=3, device=args.device)
    pr_seconds = time.perf_counter() - start

    result = {"generate_inception_img_per_s": round(images_per_second, 2),
              "fid50k_generation_minutes": round(50000 / images_per_second / 60, 1),
              "frechet_seconds": round(fid_seconds, 2), f"pr{args.pr_count}_seconds": round(pr_seconds, 2),
              "resolution": args.resolution, "device": args.device, "threads": torch.get_num_threads()}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
