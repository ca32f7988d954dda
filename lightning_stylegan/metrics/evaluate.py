"""Compute named metrics of a generator against a dataset, sharing work between them.

Each spec is computed by the metric plugin that parsed it (``catalog``, ``base.Metric``), given a
``MetricContext``: generated images are streamed in batches through each feature extractor once
per sample count, real statistics are cached per dataset, resolution and extractor
(``feature_stats``), and every metric that needs the same statistics reuses them; the raw
feature rows are kept when any metric of the run reads them (``Metric.raw_features``).
Under ``torch.distributed``, ``shards`` (``Shards.from_process_group()``) splits the work: every rank
calls ``compute_metrics``, computes its share of the batches, and returns the same values.
Feature extractors: ``features="auto"`` lets each metric choose (NVlabs' ``inception`` for FID,
KID and IS, ``vgg16`` for precision/recall and the realism score); any other name (an installed
``lightning_stylegan.feature_extractors`` plugin) is used for all of them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import registry
from .base import MetricSpec
from .feature_stats import FeatureStats, dataset_stats, generator_stats
from .features import load_extractor
from .shards import Shards


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


class MetricContext:
    """What the metrics of one run share, handed to every plugin's ``compute(spec, context)``.

    Attributes: ``G`` (the generator, on ``options.device``), ``dataset`` (an ``ImageDataset`` or
    None), ``labels`` (the dataset's labels [M, c_dim] for a conditional G, else None; draw the
    labels of generated images from them, as NVlabs does), ``options`` (``MetricOptions``),
    ``specs`` (every spec of the run) and ``shards`` (the ``Shards`` of the processes computing
    them together: ``generator_stats`` and ``dataset_stats`` split their batches over them, and a
    plugin may split its own work the same way).
    """

    def __init__(self, specs: list[MetricSpec], G: torch.nn.Module, dataset=None,
                 options: MetricOptions | None = None, distance: torch.nn.Module | None = None,
                 shards: Shards | None = None):
        self.specs, self.G, self.dataset = list(specs), G, dataset
        self.options = options or MetricOptions()
        self.shards = shards or Shards()
        self.labels = dataset.labels if dataset is not None and getattr(G, "c_dim", 0) else None
        if getattr(G, "c_dim", 0) and self.labels is None:
            raise ValueError("The generator is conditional: give the labelled dataset it was trained on "
                             "(with use_labels) so generated images get labels drawn from it, as NVlabs does.")
        self._distance = distance
        self._extractors: dict[str, torch.nn.Module] = {}
        self._fakes: dict[tuple[str, int], FeatureStats] = {}
        self._reals: dict[tuple[str, int | None], FeatureStats] = {}
        self._current: MetricSpec | None = None
        self.plugins = [plugin_of(spec) for spec in self.specs]  # one instance per spec, in order
        check_metrics(self.specs, G, self.plugins)
        self._raw: set[tuple] = set()  # the statistics some metric reads the raw rows of
        for spec, plugin in zip(self.specs, self.plugins):
            declared = plugin.raw_features(spec, self) if hasattr(plugin, "raw_features") else []
            self._raw.update(tuple(key) for key in declared)

    def extractor_name(self, auto: str) -> str:
        """The extractor named by ``options.features``, or ``auto`` (the metric's own choice) when
        that is ``"auto"``."""
        return auto if self.options.features == "auto" else self.options.features

    def extractor(self, name: str) -> torch.nn.Module:
        """The feature extractor plugin ``name``, loaded once per run with its weights file."""
        if name not in self._extractors:
            self._extractors[name] = load_extractor(name, weights=weights_for(name, self.options),
                                                    device=self.options.device)
        return self._extractors[name]

    def generator_stats(self, extractor: str, num_gen: int, keep_features: bool = False) -> FeatureStats:
        """Statistics of ``num_gen`` generated images (seeded by ``options.seed``), computed once per
        extractor and count; the raw rows are kept when asked or declared by any metric of the run."""
        keep = keep_features or ("generated", extractor, num_gen) in self._raw
        key = (extractor, num_gen)
        if key not in self._fakes or (keep and not self._fakes[key].keep_features):
            self._fakes[key] = generator_stats(
                self.G, self.extractor(extractor), num_gen, batch_size=self.options.batch_size, labels=self.labels,
                seed=self.options.seed, device=self.options.device, keep_features=keep,
                progress=self.options.progress, shards=self.shards)
        return self._fakes[key]

    def dataset_stats(self, extractor: str, num_real: int | None, keep_features: bool = False) -> FeatureStats:
        """Statistics of the first ``num_real`` real images (all when None), computed once per
        extractor and count and cached on disk (``options.cache_dir``)."""
        if self.dataset is None:
            what = self._current.name if self._current is not None else "This metric"
            raise ValueError(f"{what} compares with real images: give the dataset (--data)")
        keep = keep_features or ("real", extractor, num_real) in self._raw
        key = (extractor, num_real)
        if key not in self._reals or (keep and not self._reals[key].keep_features):
            self._reals[key] = dataset_stats(
                self.dataset, self.extractor(extractor), max_images=num_real, batch_size=self.options.batch_size,
                cache_dir=self.options.cache_dir, device=self.options.device, keep_features=keep,
                progress=self.options.progress, shards=self.shards)
        return self._reals[key]

    def lpips(self) -> torch.nn.Module:
        """The LPIPS distance (VGG, ``options.lpips_backbone``), loaded once; tests pass their own."""
        if self._distance is None:
            from .lpips_distance import load_lpips
            self._distance = load_lpips("vgg", backbone_weights=self.options.lpips_backbone,
                                        device=self.options.device)
        return self._distance


def plugin_of(spec: MetricSpec):
    """The metric plugin that computes ``spec`` (an instance of the class registered as ``spec.plugin``)."""
    if not spec.plugin:
        raise ValueError(f"The spec {spec.name!r} names no metric plugin: make specs with catalog.parse_metric")
    return registry.load("metric", spec.plugin)()


def check_metrics(specs: list[MetricSpec], G: torch.nn.Module, plugins: list | None = None) -> None:
    """Each spec checked by its plugin's optional ``check(spec, G)`` (``plugins``: their instances,
    in order, when the caller has them): a ``ValueError`` for one that ``G`` cannot be scored with."""
    for spec, plugin in zip(specs, plugins or [plugin_of(spec) for spec in specs]):
        if hasattr(plugin, "check"):
            plugin.check(spec, G)


def compute_metrics(specs: list[MetricSpec], G: torch.nn.Module, dataset=None,
                    options: MetricOptions | None = None, distance: torch.nn.Module | None = None,
                    shards: Shards | None = None) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Results ``{name: value}`` (precision/recall give ``<name>_precision`` and ``<name>_recall``,
    IS ``<name>_mean`` and ``<name>_std``) and per-image arrays (``<name>`` -> realism scores of the
    generated images, in sample order). ``dataset`` (an ``ImageDataset``) is needed for metrics
    that compare with reals; ``distance`` replaces the LPIPS network of PPL (tests). With
    ``shards`` of several processes, every one of them must call this with the same arguments;
    each computes a share and all return the same results."""
    context = MetricContext(specs, G, dataset, options, distance, shards)
    results: dict[str, float] = {}
    per_image: dict[str, np.ndarray] = {}
    for spec, plugin in zip(context.specs, context.plugins):
        context._current = spec
        values = plugin.compute(spec, context)
        arrays = {}
        if isinstance(values, tuple) and len(values) == 2:
            values, arrays = values
        if not isinstance(values, dict) or not isinstance(arrays, dict):
            raise ValueError(f"The metric plugin {spec.plugin!r} returned {type(values).__name__} for {spec.name}: "
                             "compute must return {name: float} or ({name: float}, {name: array})")
        results.update({name: float(value) for name, value in values.items()})
        per_image.update({name: np.asarray(array) for name, array in arrays.items()})
    context._current = None
    return results, per_image
