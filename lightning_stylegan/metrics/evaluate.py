"""Compute named metrics of a generator against a dataset, sharing work between them.

Generated images are streamed in batches through each feature extractor once per sample count,
real statistics are cached per dataset, resolution and extractor (``feature_stats``), and every
metric that needs the same features reuses them. Feature extractors: ``features="auto"`` uses
``inception`` for FID, KID and IS and ``vgg16`` for precision/recall and the realism score, as
NVlabs does; any other name (an installed ``lightning_stylegan.feature_extractors`` plugin) is used
for all of them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .catalog import MetricSpec
from .feature_stats import FeatureStats, dataset_stats, generator_stats
from .features import load_extractor
from .frechet import frechet_distance
from .inception_score import inception_score
from .kid import kernel_inception_distance
from .ppl import perceptual_path_length
from .precision_recall import precision_recall, realism_score

NVLABS_EXTRACTORS = {"fid": "inception", "kid": "inception", "is": "inception", "pr": "vgg16",
                     "realism": "vgg16"}


@dataclass
class MetricOptions:
    """How to compute: extractor names and weights, LPIPS backbone, batch size, device, cache."""

    features: str = "auto"
    feature_weights: str | None = None
    lpips_backbone: str | None = None
    batch_size: int = 32
    device: str = "cpu"
    cache_dir: str | None = None
    seed: int = 0
    progress: bool = True


def weights_for(name: str, options: MetricOptions) -> str | None:
    """The local weights file of extractor ``name``: ``feature_weights`` is one path (for the one
    extractor named by ``features``, or Inception with ``auto``) or ``name=path`` pairs separated by
    commas (``inception=pt_inception.pth,vgg16=vgg16.pth``)."""
    given = options.feature_weights
    if not given:
        return None
    if "=" not in given:
        single = "inception" if options.features == "auto" else options.features
        return given if name == single else None
    pairs = dict(item.split("=", 1) for item in given.split(",") if item.strip())
    return pairs.get(name)


def extractor_name(spec: MetricSpec, features: str) -> str:
    return NVLABS_EXTRACTORS[spec.kind] if features == "auto" else features


def compute_metrics(specs: list[MetricSpec], G: torch.nn.Module, dataset=None,
                    options: MetricOptions | None = None, distance: torch.nn.Module | None = None,
                    ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Results ``{name: value}`` (precision/recall give ``<name>_precision`` and ``<name>_recall``,
    IS ``<name>_mean`` and ``<name>_std``) and per-image arrays (``<name>`` -> realism scores of the
    generated images, in sample order). ``dataset`` (an ``ImageDataset``) is needed for metrics
    that compare with reals; ``distance`` replaces the LPIPS network of PPL (tests)."""
    options = options or MetricOptions()
    labels = dataset.labels if dataset is not None and getattr(G, "c_dim", 0) else None
    if getattr(G, "c_dim", 0) and labels is None:
        raise ValueError("The generator is conditional: give the labelled dataset it was trained on "
                         "(with use_labels) so generated images get labels drawn from it, as NVlabs does.")
    results: dict[str, float] = {}
    per_image: dict[str, np.ndarray] = {}
    extractors: dict[str, torch.nn.Module] = {}
    fakes: dict[tuple[str, int], FeatureStats] = {}
    reals: dict[tuple[str, int | None], FeatureStats] = {}

    def extractor(name: str):
        if name not in extractors:
            extractors[name] = load_extractor(name, weights=weights_for(name, options), device=options.device)
        return extractors[name]

    for spec in specs:
        if spec.kind == "ppl":
            if distance is None:
                from .lpips_distance import load_lpips
                distance = load_lpips("vgg", backbone_weights=options.lpips_backbone, device=options.device)
            results[spec.name] = perceptual_path_length(
                G, distance, num_samples=spec.num_gen, labels=labels, seed=options.seed,
                device=options.device, progress=options.progress, **spec.ppl)
            continue
        name = extractor_name(spec, options.features)
        keep = any(s.needs_features and extractor_name(s, options.features) == name
                   and s.num_gen == spec.num_gen for s in specs)
        key = (name, spec.num_gen)
        if key not in fakes:
            fakes[key] = generator_stats(G, extractor(name), spec.num_gen, batch_size=options.batch_size,
                                         labels=labels, seed=options.seed, device=options.device,
                                         keep_features=keep, progress=options.progress)
        fake = fakes[key]
        if spec.kind == "is":
            mean, std = inception_score(fake.logits())
            results[f"{spec.name}_mean"], results[f"{spec.name}_std"] = float(mean), float(std)
            continue
        if dataset is None:
            raise ValueError(f"{spec.name} compares with real images: give the dataset (--data)")
        real_key = (name, spec.num_real)
        if real_key not in reals:
            keep_real = any(s.needs_features and extractor_name(s, options.features) == name
                            and s.num_real == spec.num_real for s in specs)
            reals[real_key] = dataset_stats(dataset, extractor(name), max_images=spec.num_real,
                                            batch_size=options.batch_size, cache_dir=options.cache_dir,
                                            device=options.device, keep_features=keep_real,
                                            progress=options.progress)
        real = reals[real_key]
        if spec.kind == "fid":
            results[spec.name] = float(frechet_distance(*real.mean_cov(), *fake.mean_cov()))
        elif spec.kind == "kid":
            results[spec.name] = float(kernel_inception_distance(real.features(), fake.features(),
                                                                 seed=options.seed))
        elif spec.kind == "pr":
            precision, recall = precision_recall(real.features(), fake.features(), k=spec.k,
                                                 device=options.device)
            results[f"{spec.name}_precision"], results[f"{spec.name}_recall"] = float(precision), float(recall)
        elif spec.kind == "realism":
            scores = realism_score(real.features(), fake.features(), k=spec.k, device=options.device)
            per_image[spec.name] = np.asarray(scores, dtype=np.float64)
            results[spec.name] = float(per_image[spec.name].mean())
    return results, per_image
