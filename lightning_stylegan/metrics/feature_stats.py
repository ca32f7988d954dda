"""Feature statistics of generated and real images, computed by streaming batches.

``FeatureStats`` accumulates the mean and covariance of features batch by batch in float64 (sums
of the features and of their outer products, shifted by the first batch's mean so that features
far from the origin lose no precision; nothing is stacked when only FID's Gaussian is needed)
and, on request, keeps the raw features (KID, precision/recall, realism score) and logits
(Inception Score). The covariance is the maximum likelihood one (divided by N), as NVlabs'
``metric_utils.FeatureStats.get_mean_cov``.

``generator_stats`` draws latents seeded per batch (and, for a conditional generator, labels drawn
from the dataset's labels, as NVlabs does), quantizes images to uint8 as NVlabs does (``to_uint8``)
and runs the feature extractor, one batch at a time. ``dataset_stats`` does the same for the images
of an ``ImageDataset`` (the first ``max_images`` items; mirrored copies count as items when the
dataset has ``xflip``) and caches the result per dataset, resolution, channels and extractor.
Both split their batches over the ranks of a ``Shards`` and merge the ranks' statistics exactly
(``FeatureStats.merge``, ``FeatureStats.gather``).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from ..data.workers import ignore_stop_signals
from ..images import to_uint8
from .shards import NOISE, Shards, batch_generator, batch_seed

CACHE_ENV = "LIGHTNING_STYLEGAN_CACHE"
STATS_FORMAT = 2  # part of the cache key: bump it when the arrays ``FeatureStats.save`` writes change


class FeatureStats:
    """Running mean/covariance of features [N, D], optionally the features and logits themselves.

    ``max_items`` caps the number of items taken (the rest of a batch that would exceed it is
    ignored, as NVlabs does); ``keep_features`` / ``keep_logits`` keep the raw rows (float32, CPU).
    """

    def __init__(self, max_items: int | None = None, keep_features: bool = False, keep_logits: bool = False):
        self.max_items, self.keep_features, self.keep_logits = max_items, keep_features, keep_logits
        self.num_items = 0
        self._shift: torch.Tensor | None = None  # float64 [D], the first batch's mean
        self._sum: torch.Tensor | None = None  # float64 [D], sum of (x - shift)
        self._sum2: torch.Tensor | None = None  # float64 [D, D], sum of (x - shift)^T (x - shift)
        self._features: list[torch.Tensor] = []
        self._logits: list[torch.Tensor] = []

    @property
    def is_full(self) -> bool:
        return self.max_items is not None and self.num_items >= self.max_items

    def append(self, features: torch.Tensor, logits: torch.Tensor | None = None) -> None:
        """Add a batch: features [B, D] (and logits [B, L] when logits are kept)."""
        features = torch.as_tensor(features).detach()
        if features.ndim != 2 or (self._shift is not None and features.shape[1] != self._shift.shape[0]):
            raise ValueError(f"FeatureStats.append needs features [B, D] with the D of earlier batches, got "
                             f"{tuple(features.shape)}")
        if self.keep_logits and (logits is None or logits.ndim != 2 or logits.shape[0] != features.shape[0]):
            raise ValueError(f"keep_logits needs logits [B, L] for the {features.shape[0]} features, got "
                             f"{None if logits is None else tuple(logits.shape)}")
        if self.max_items is not None:
            features = features[:max(self.max_items - self.num_items, 0)]
        b = features.shape[0]
        if b == 0:
            return
        x = features.to(torch.float64)
        if self._shift is None:
            self._shift = x.mean(dim=0)
            self._sum = torch.zeros_like(self._shift)
            self._sum2 = x.new_zeros(x.shape[1], x.shape[1])
        y = x.to(self._shift.device) - self._shift
        self._sum += y.sum(dim=0)
        self._sum2.addmm_(y.T, y)
        self.num_items += b
        if self.keep_features:
            self._features.append(features.to("cpu", torch.float32))
        if self.keep_logits:
            self._logits.append(logits.detach()[:b].to("cpu", torch.float32))

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean [D], covariance [D, D]) in float64; the covariance divides by N (NVlabs)."""
        if self.num_items == 0:
            raise ValueError("FeatureStats holds no items yet; append features first")
        offset = self._sum / self.num_items
        cov = self._sum2 / self.num_items - torch.outer(offset, offset)
        return (self._shift + offset).cpu().numpy(), cov.cpu().numpy()

    def features(self) -> torch.Tensor:
        """All kept features [N, D] (float32)."""
        if not self.keep_features:
            raise ValueError("These statistics did not keep the features; compute them with keep_features=True")
        return torch.cat(self._features) if self._features else torch.zeros(0, 0)

    def logits(self) -> torch.Tensor:
        """All kept logits [N, L] (float32)."""
        if not self.keep_logits:
            raise ValueError("These statistics did not keep logits (the feature extractor gives none, or "
                             "keep_logits was False)")
        return torch.cat(self._logits) if self._logits else torch.zeros(0, 0)

    @classmethod
    def merge(cls, parts: list[FeatureStats], max_items: int | None = None) -> FeatureStats:
        """The statistics of the items of all ``parts`` together (kept rows and logits concatenated
        in part order, when every part kept them). Each part's sums are moved to the first
        non-empty part's shift ``s``, exactly in float64 algebra: with ``d = s_p - s``,

            sum (x - s)              = S_p + n_p d
            sum (x - s) (x - s)^T    = Q_p + S_p d^T + d S_p^T + n_p d d^T

        (``S_p``, ``Q_p``: the part's sums about its own shift ``s_p``), then added in part order.
        """
        merged = cls(max_items, keep_features=all(p.keep_features for p in parts),
                     keep_logits=all(p.keep_logits for p in parts))
        for part in parts:
            if merged.keep_features:
                merged._features += part._features
            if merged.keep_logits:
                merged._logits += part._logits
            if part.num_items == 0:
                continue
            shift, total, total2 = (t.to("cpu", torch.float64) for t in (part._shift, part._sum, part._sum2))
            if merged._shift is None:
                merged._shift = shift.clone()
                merged._sum, merged._sum2 = torch.zeros_like(total), torch.zeros_like(total2)
            d = shift - merged._shift
            merged._sum += total + part.num_items * d
            merged._sum2 += total2 + torch.outer(total, d) + torch.outer(d, total) + part.num_items * torch.outer(d, d)
            merged.num_items += part.num_items
        return merged

    def gather(self, shards: Shards, batch_size: int) -> FeatureStats:
        """The statistics of every rank's batches (``shards.batches`` of ``batch_size``, one
        ``append`` per batch), on every rank: the sums of the ranks merged in rank order
        (``merge``), kept rows and logits in item order. ``self`` for a single process."""
        if shards.world_size == 1:
            return self
        counts = [int(n) for n in shards.all_gather(torch.tensor([self.num_items]))]
        moments = shards.all_gather(None if self.num_items == 0 else torch.cat(
            [self._shift[None], self._sum[None], self._sum2]))
        parts = []
        for count, packed in zip(counts, moments):
            part = FeatureStats()
            if count:
                part.num_items, part._shift, part._sum, part._sum2 = count, packed[0], packed[1], packed[2:]
            parts.append(part)
        merged = FeatureStats.merge(parts, self.max_items)
        merged.keep_features, merged.keep_logits = self.keep_features, self.keep_logits
        total = sum(counts)
        if self.keep_features:
            merged._features = [shards.gather(self._features, total, batch_size)]
        if self.keep_logits:
            merged._logits = [shards.gather(self._logits, total, batch_size)]
        return merged

    def save(self, path: str | os.PathLike) -> Path:
        """Write an ``.npz`` atomically (temporary file, then rename; removed if the write fails)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = dict(num_items=np.int64(self.num_items), max_items=np.int64(-1 if self.max_items is None
                                                                               else self.max_items))
        if self.num_items:
            arrays.update(shift=self._shift.cpu().numpy(), sum=self._sum.cpu().numpy(),
                          sum2=self._sum2.cpu().numpy())
        if self.keep_features:
            arrays["features"] = self.features().numpy()
        if self.keep_logits:
            arrays["logits"] = self.logits().numpy()
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "wb") as file:
                np.savez(file, **arrays)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a failed write (a full disk) leaves nothing behind
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStats:
        """Read what ``save`` wrote (no pickles: ``allow_pickle=False``)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
            max_items = int(arrays["max_items"])
            stats = cls(None if max_items < 0 else max_items, "features" in arrays, "logits" in arrays)
            stats.num_items = int(arrays["num_items"])
            if stats.num_items:
                stats._shift, stats._sum, stats._sum2 = (torch.from_numpy(arrays[key])
                                                         for key in ("shift", "sum", "sum2"))
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"Cannot read feature statistics {path} ({type(error).__name__}: {error}); "
                             "delete the file to recompute them") from error
        if stats.keep_features:
            stats._features = [torch.from_numpy(arrays["features"])]
        if stats.keep_logits:
            stats._logits = [torch.from_numpy(arrays["logits"])]
        return stats


@torch.no_grad()
def generator_stats(G: torch.nn.Module, extractor: torch.nn.Module, num_images: int, batch_size: int = 32,
                    truncation_psi: float = 1.0, labels=None, seed: int = 0, device: str | torch.device = "cpu",
                    keep_features: bool = False, progress: bool = True, shards: Shards | None = None) -> FeatureStats:
    """Features of ``num_images`` images of ``G`` (moved to ``device``), ``batch_size`` at a time.

    Batch j (images j * batch_size, ...) draws its latents, then (for a conditional G) its labels
    uniformly from the rows of ``labels`` [L, c_dim] (the dataset's one-hot labels, as NVlabs draws
    them), from ``batch_generator(seed, j)``, and its synthesis noise from torch's global generator
    seeded with ``batch_seed(seed, j, NOISE)`` inside ``torch.random.fork_rng`` (the caller's random
    state is left as it was): image i is the same whichever process computes it. With ``shards``
    each rank computes its batches and every rank returns the statistics of all of them
    (``FeatureStats.gather``). Logits are kept when the extractor gives them.
    """
    shards = shards or Shards()
    c_dim = getattr(G, "c_dim", 0)
    if c_dim and labels is None:
        raise ValueError(f"The generator is conditional (c_dim={c_dim}): pass labels [L, {c_dim}] to draw "
                         "from, e.g. the labels of its training dataset")
    if labels is not None:
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.float32)
        if labels.ndim != 2 or labels.shape[1] != c_dim or len(labels) == 0:
            raise ValueError(f"labels must be a non-empty [L, {c_dim}] array, got shape {tuple(labels.shape)}")
    device = torch.device(device)
    G = G.to(device)
    stats = FeatureStats(num_images, keep_features, keep_logits=bool(getattr(extractor, "num_logits", 0)))
    mine = shards.batches(num_images, batch_size)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    was_training = G.training
    G.eval()  # as NVlabs: no w_avg update, eval behaviour
    try:
        with torch.random.fork_rng(devices=cuda), \
                shards.progress_bar(mine, progress, desc="generated images", unit="img") as bar:
            for j, start, stop in shards.polled(mine, num_images, batch_size):
                latents = batch_generator(seed, j)
                torch.manual_seed(batch_seed(seed, j, NOISE))
                z = torch.randn(stop - start, G.z_dim, generator=latents).to(device)
                c = labels[torch.randint(len(labels), (stop - start,), generator=latents)].to(device) if c_dim else None
                images = to_uint8(G(z, c, truncation_psi=truncation_psi))
                stats.append(*extractor(images))
                bar.update(stop - start)
    finally:
        G.train(was_training)
    return stats.gather(shards, batch_size)


def dataset_identity(dataset) -> dict:
    """What makes a dataset's images what they are: its source and each file's name, size and
    mtime (a folder), the file's size and mtime (a zip) or the image indices (the embedded
    Fashion-MNIST, part of the installed package), and the decoding settings."""
    names = dataset.names
    settings = dict(resolution=dataset.resolution, channels=dataset.channels, resize=dataset.resize,
                    xflip=dataset.xflip, items=len(dataset))
    if not Path(names[0]).suffix:  # the embedded set: its names are indices, image files have suffixes
        return dict(source=dataset.source, files=names, **settings)
    source = Path(dataset.source).resolve()
    files = [[name, *_stat(source / name)] for name in names] if source.is_dir() else [names, *_stat(source)]
    return dict(source=str(source), files=files, **settings)


def _stat(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _cache_dir(cache_dir) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / "stats"
    return Path.home() / ".cache" / "lightning_stylegan" / "stats"


def dataset_stats(dataset, extractor: torch.nn.Module, max_images: int | None = None, batch_size: int = 32,
                  cache_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                  keep_features: bool = False, progress: bool = True, num_workers: int = 0,
                  shards: Shards | None = None) -> FeatureStats:
    """Features of the first ``max_images`` items (all when None) of an ``ImageDataset``, cached.

    The cache file (in ``cache_dir``, else ``$LIGHTNING_STYLEGAN_CACHE/stats``, else
    ``~/.cache/lightning_stylegan/stats``) is keyed by the dataset's identity (``dataset_identity``),
    the extractor's name, class and weights, ``max_images`` and ``keep_features``; a later call with
    the same key loads it instead of running the extractor. Logits of real images are not kept.
    With ``shards``, the file is loaded only when every rank sees it (else all compute, so none
    waits alone), each rank computes its batches of items, every rank returns the statistics of
    all of them, and rank 0 writes the file.
    """
    shards = shards or Shards()
    num = len(dataset) if max_images is None else min(len(dataset), max_images)
    key = dict(format=STATS_FORMAT, dataset=dataset_identity(dataset), extractor=getattr(extractor, "name", ""),
               extractor_class=f"{type(extractor).__module__}.{type(extractor).__qualname__}",
               weights=getattr(extractor, "weights_id", ""), max_images=num, keep_features=keep_features)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    stem = f"{Path(dataset.source).stem}-{dataset.resolution}px-{key['extractor'] or 'features'}"
    path = _cache_dir(cache_dir) / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', stem)}-{digest}.npz"
    if shards.every_rank(path.is_file()):
        return FeatureStats.load(path)
    stats = FeatureStats(num, keep_features)
    mine = shards.batches(num, batch_size)
    items = [i for _, start, stop in mine for i in range(start, stop)]
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, items), batch_size=batch_size,
                                         num_workers=num_workers,  # this rank's batches, one per step
                                         worker_init_fn=ignore_stop_signals)
    with torch.no_grad(), shards.progress_bar(mine, progress, desc="real images", unit="img") as bar:
        for images, _labels in shards.polled(loader, num, batch_size):
            # dataset items are uint8 / 127.5 - 1: undo that exactly
            pixels = torch.round((images + 1) * 127.5).clamp(0, 255).to(torch.uint8)
            stats.append(extractor(pixels.to(device))[0])
            bar.update(images.shape[0])
    stats = stats.gather(shards, batch_size)
    if shards.is_main:
        try:
            stats.save(path)
        except OSError as error:  # a full disk: the statistics are recomputed next time, nothing is lost
            warnings.warn(f"Could not cache the real-image statistics in {path} ({error.strerror or error}); "
                          "they will be computed again at the next evaluation")
    return stats
