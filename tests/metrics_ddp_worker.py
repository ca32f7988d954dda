"""One rank of the two-process metric test (test_metrics_ddp.py), run as a subprocess with torchrun's
variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and tests/ and the test's plugin site on
PYTHONPATH. It joins a gloo group and computes the metrics of a tiny checkpoint three times: with
the real statistics not cached yet, cached, and with this rank pretending not to see the cache
(``--hide-cache-on``). It writes ``<out>/rank<N>.json``: each run's values, the batch sizes this
rank ran through the feature extractor, the statistics files it saved and loaded, the realism
scores, and precision/recall and realism of fixed features with small row blocks.

    python metrics_ddp_worker.py OUT CKPT CACHE_DIR METRICS NUM_GEN BATCH [--hide-cache-on RANK]
"""
from __future__ import annotations

import json
import pathlib
import sys

import torch
import torch.distributed as dist
from metric_plugins import TinyDistance

from lightning_stylegan.data.dataset import ImageDataset
from lightning_stylegan.metrics.catalog import parse_metrics
from lightning_stylegan.metrics.evaluate import MetricOptions, compute_metrics
from lightning_stylegan.metrics.feature_stats import FeatureStats
from lightning_stylegan.metrics.precision_recall import precision_recall, realism_score
from lightning_stylegan.metrics.shards import Shards
from lightning_stylegan.network_files import load_generator

REALS = 30  # fashion-mnist images: 8 batches of 4, the last one of 2


def fixed_features() -> tuple[torch.Tensor, torch.Tensor]:
    """(real [37, 5], fake [29, 5]) features, the same in every process."""
    generator = torch.Generator().manual_seed(7)
    return torch.randn(37, 5, generator=generator), torch.randn(29, 5, generator=generator) + 0.3


def noisy_generator(ckpt: str) -> torch.nn.Module:
    """The checkpoint's G with its noise strengths at 0.5 (they start at 0), so that the per-batch
    noise seeds matter."""
    G = load_generator(ckpt)
    with torch.no_grad():
        for name, parameter in G.named_parameters():
            if name.endswith("noise_strength"):
                parameter.fill_(0.5)
    return G


def reals(ckpt: str) -> ImageDataset:
    """The first REALS fashion-mnist images at the checkpoint's resolution and channels."""
    G = load_generator(ckpt)
    return ImageDataset("fashion-mnist", G.img_resolution, G.img_channels, max_images=REALS)


def record_calls() -> dict:
    """Note, in the returned dict's ``"run"`` record, the batch sizes the extractor sees and the
    statistics files saved and loaded."""
    import lsg_test_features  # the tiny extractor of metric_plugins.py, installed in the test's site

    current = {}
    extract, save, load = lsg_test_features.TinyFeatures.extract, FeatureStats.save, FeatureStats.load.__func__

    def counted_extract(self, rgb):
        current["run"]["batches"].append(len(rgb))
        return extract(self, rgb)

    def noted_save(self, path):
        current["run"]["saved"].append(pathlib.Path(path).name)
        return save(self, path)

    def noted_load(cls, path):
        current["run"]["loaded"].append(pathlib.Path(path).name)
        return load(cls, path)

    lsg_test_features.TinyFeatures.extract = counted_extract
    FeatureStats.save = noted_save
    FeatureStats.load = classmethod(noted_load)
    return current


def main(out: str, ckpt: str, cache: str, metrics: str, num_gen: str, batch: str, *hide: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    shards = Shards.from_process_group()
    G, dataset = noisy_generator(ckpt), reals(ckpt)
    options = MetricOptions(features="tiny", batch_size=int(batch), cache_dir=cache, progress=False)
    specs = parse_metrics(metrics, int(num_gen))
    runs, current = [], record_calls()
    for run in ("uncached", "cached", "hidden"):
        record = current["run"] = {"batches": [], "saved": [], "loaded": []}
        is_file = pathlib.Path.is_file
        if run == "hidden" and hide and int(hide[1]) == shards.rank:
            pathlib.Path.is_file = lambda path: False if path.suffix == ".npz" else is_file(path)
        results, per_image = compute_metrics(specs, G, dataset, options, distance=TinyDistance(), shards=shards)
        pathlib.Path.is_file = is_file
        record.update(results=results, per_image={name: array.tolist() for name, array in per_image.items()})
        runs.append(record)
    real, fake = fixed_features()
    blocks = dict(k=3, row_batch=4, col_batch=8, shards=shards)
    small_blocks = {"pr": list(precision_recall(real, fake, **blocks)),
                    "realism": realism_score(real, fake, **blocks).tolist()}
    path = pathlib.Path(out) / f"rank{shards.rank}.json"
    path.write_text(json.dumps({"rank": shards.rank, "world_size": shards.world_size, "runs": runs,
                                "small_blocks": small_blocks}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
