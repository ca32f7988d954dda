"""The built-in metrics on feature-extractor statistics, one plugin per kind, with NVlabs' names
(stylegan2-ada-pytorch ``metrics/metric_main.py``):

``<kind><count>[<k>][_full]``: ``fid50k_full`` (FID of 50k generated images against every real
image), ``fid50k`` (against 50k reals), ``kid50k_full``, ``pr50k3_full`` (precision and recall with
k = 3), ``is50k``, ``realism1k3_full`` (mean realism score, k = 3, with the per-image scores saved).
``count`` is ``50k``, ``10k``, ``500``, ``0.5k``, ... A ``num_gen`` given by the user replaces the
count, and the reported name says so (``fid50k_full`` with ``num_gen=1000`` -> ``fid1k_full``).

Feature extractors: with ``features="auto"`` FID, KID and IS use ``inception`` and precision/recall
and the realism score ``vgg16``, as NVlabs does; any other name is used for all of them. Generated
and real statistics come from the ``MetricContext``, so metrics of one run on the same extractor
and count share them. Under several processes (``context.shards``) the statistics arrive merged on
every rank; precision/recall and the realism score split their distance rows over the ranks; FID,
KID and IS, cheap next to the images, are computed whole on every rank from the gathered rows.
"""
from __future__ import annotations

import re

import numpy as np

from .base import ALL_REALS, Metric, MetricSpec, count_text, parse_count
from .frechet import frechet_distance
from .inception_score import inception_score
from .kid import kernel_inception_distance
from .precision_recall import precision_recall, realism_score

_COUNT = r"(\d+(?:\.\d+)?)"


class FeatureMetric(Metric):
    """A metric of generated-image features against real-image features (or, for IS, of the
    generated images' logits alone)."""

    api_version = 1
    kind = ""
    auto_extractor = "inception"  # the extractor of ``features="auto"``
    raw = False  # whether the raw feature rows are read, not only their mean and covariance
    with_k = False  # whether the name carries a neighbourhood size (pr50k3_full)
    with_full = True  # whether the name may end in _full (every real image)

    def parse(self, name: str, num_gen: int | None = None) -> MetricSpec | None:
        k = r"k(\d+)" if self.with_k else r"(k?)"
        full = r"(_full)?" if self.with_full else r"()"
        match = re.fullmatch(rf"{self.kind}{_COUNT}{k}{full}", name)
        if not match:
            return None
        digits, tail, suffix = match.groups()
        thousands = "k" if self.with_k else tail
        count = parse_count(digits, thousands, name)  # checked even when num_gen replaces it
        count = num_gen or count
        k_text = tail if self.with_k else ""
        reported = f"{self.kind}{count_text(count, fractional=self.with_k)}{k_text}{suffix or ''}"
        if not self.with_full:
            return MetricSpec(reported, self.kind, count)
        return MetricSpec(reported, self.kind, count, num_real=ALL_REALS if suffix else count,
                          k=int(k_text) if k_text else 3, uses_reals=True)

    def raw_features(self, spec: MetricSpec, context) -> list[tuple[str, str, int | None]]:
        if not self.raw:
            return []
        name = context.extractor_name(self.auto_extractor)
        return [("generated", name, spec.num_gen), ("real", name, spec.num_real)]

    def compute(self, spec: MetricSpec, context):
        name = context.extractor_name(self.auto_extractor)
        real = context.dataset_stats(name, spec.num_real, keep_features=self.raw) if spec.uses_reals else None
        fake = context.generator_stats(name, spec.num_gen, keep_features=self.raw)
        return self.score(spec, real, fake, context)

    def score(self, spec: MetricSpec, real, fake, context):
        raise NotImplementedError


class FID(FeatureMetric):
    """Frechet Inception Distance (Heusel et al. 2017): fid50k_full, fid50k, fid10k_full, ..."""

    api_version = 1
    kind = "fid"
    forms = "fid50k_full, fid50k (any count: fid10k_full, fid500_full, ...)"

    def score(self, spec, real, fake, context):
        return {spec.name: float(frechet_distance(*real.mean_cov(), *fake.mean_cov()))}


class KID(FeatureMetric):
    """Kernel Inception Distance (Binkowski et al. 2018): kid50k_full, kid50k, ..."""

    api_version = 1
    kind = "kid"
    raw = True
    forms = "kid50k_full, kid50k"

    def score(self, spec, real, fake, context):
        return {spec.name: float(kernel_inception_distance(real.features(), fake.features(),
                                                           seed=context.options.seed))}


class PrecisionRecall(FeatureMetric):
    """Improved precision and recall (Kynkaanniemi et al. 2019): pr50k3_full, pr10k5, ..."""

    api_version = 1
    kind = "pr"
    auto_extractor = "vgg16"
    raw = True
    with_k = True
    forms = "pr50k3_full, pr50k3 (k = 3; any count and k: pr5k3_full, pr0.5k5_full)"

    def score(self, spec, real, fake, context):
        precision, recall = precision_recall(real.features(), fake.features(), k=spec.k,
                                             device=context.options.device, shards=context.shards)
        return {f"{spec.name}_precision": float(precision), f"{spec.name}_recall": float(recall)}


class InceptionScore(FeatureMetric):
    """Inception Score (Salimans et al. 2016) of generated images: is50k, is10k, ..."""

    api_version = 1
    kind = "is"
    with_full = False
    forms = "is50k"

    def score(self, spec, real, fake, context):
        mean, std = inception_score(fake.logits())
        return {f"{spec.name}_mean": float(mean), f"{spec.name}_std": float(std)}


class Realism(FeatureMetric):
    """Realism score (Kynkaanniemi et al. 2019), its mean and the per-image scores: realism1k3_full."""

    api_version = 1
    kind = "realism"
    auto_extractor = "vgg16"
    raw = True
    with_k = True
    forms = "realism1k3_full"

    def score(self, spec, real, fake, context):
        scores = np.asarray(realism_score(real.features(), fake.features(), k=spec.k,
                                          device=context.options.device, shards=context.shards), dtype=np.float64)
        return {spec.name: float(scores.mean())}, {spec.name: scores}
