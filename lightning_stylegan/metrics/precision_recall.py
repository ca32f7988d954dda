"""Improved precision and recall, and the realism score, of Kynkäänniemi et al., "Improved
Precision and Recall Metric for Assessing Generative Models" (NeurIPS 2019).

Each feature set approximates its manifold by hyperspheres: around every sample phi, a ball whose
radius NND_k(phi) is the distance to its k-th nearest neighbour in the same set (Eq. 1-2; the
sample itself is the 0-th neighbour and is skipped, exactly as NVlabs' ``metrics/precision_recall.py``
takes the (k+1)-th smallest distance of a row that includes the sample itself).

* precision: the fraction of generated samples inside some real hypersphere (Eq. 3),
* recall: the fraction of real samples inside some generated hypersphere (Eq. 4),
* realism score of a generated sample (Section 5):
  ``R(phi_g) = max_r NND_k(phi_r) / ||phi_r - phi_g||`` over the real samples whose radius is at
  most the median radius ("we discard half of the hyperspheres with the largest radii"); R >= 1
  means phi_g lies inside a kept real hypersphere. ``eps`` (1e-5) is added to the distance as in
  the authors' code, so a sample that equals a real one gets a large finite score. The authors'
  code divides *squared* distances, so its scores are the squares of these (same ranking, same
  threshold 1); square these to compare with numbers computed that way.

Distances are Euclidean (``torch.cdist``), computed block by block: ``row_batch`` x ``col_batch``
distances at a time, so 50k x 50k (or 200k real) never sits in memory. With ``shards`` the blocks
of ``row_batch`` rows are split over the ranks (``Shards``: block j on rank j % world_size; NVlabs
splits the columns instead) and each row's result is gathered on every rank; the blocks are the
same whatever the number of ranks, so the results are the single process's, bit for bit.
"""
from __future__ import annotations

import torch

from .shards import Shards

EPS = 1e-5


def _matrix(features, device) -> torch.Tensor:
    features = torch.as_tensor(features)
    if features.ndim != 2:
        raise ValueError(f"Features must be a matrix [N, D], got shape {tuple(features.shape)}")
    return features.detach().to(device or features.device, torch.float32)


def _by_rows(rows: torch.Tensor, row_batch: int, shards: Shards | None, result) -> torch.Tensor:
    """``result(row slice) -> [rows]`` for this rank's blocks of ``row_batch`` rows, gathered in row
    order on every rank (on the rows' device)."""
    shards = shards or Shards()
    n = rows.shape[0]
    mine = shards.batches(n, row_batch)
    blocks = [result(slice(start, stop)) for _, start, stop in shards.polled(mine, n, row_batch)]
    return shards.gather(blocks, n, row_batch).to(rows.device)


def _columns(rows: torch.Tensor, cols: torch.Tensor, col_batch: int):
    """Yield (column slice, distances [rows, cols in the slice]) block by block."""
    for c0 in range(0, cols.shape[0], col_batch):
        c = slice(c0, min(c0 + col_batch, cols.shape[0]))
        yield c, torch.cdist(rows, cols[c])


def knn_radii(features, k: int = 3, row_batch: int = 1024, col_batch: int = 16384,
              device: str | torch.device | None = None, shards: Shards | None = None) -> torch.Tensor:
    """NND_k of every sample [N]: the (k+1)-th smallest distance to the set, the sample included."""
    x = _matrix(features, device)
    if k < 1 or x.shape[0] <= k:
        raise ValueError(f"The k-NN radius needs k >= 1 and more than k = {k} samples, got {x.shape[0]}")

    def radii(r: slice) -> torch.Tensor:
        nearest = None  # the k + 1 smallest distances of the rows seen so far
        for c, dist in _columns(x[r], x, col_batch):
            nearest = dist if c.start == 0 else torch.cat([nearest, dist], dim=1)
            nearest = nearest.topk(min(k + 1, nearest.shape[1]), dim=1, largest=False).values
        return nearest[:, k]

    return _by_rows(x, row_batch, shards, radii)


def _inside(probes: torch.Tensor, manifold: torch.Tensor, radii: torch.Tensor, row_batch: int,
            col_batch: int, shards: Shards | None) -> torch.Tensor:
    """Whether each probe lies in some hypersphere of the manifold [P] (bool)."""
    def inside(r: slice) -> torch.Tensor:
        found = torch.zeros(r.stop - r.start, dtype=torch.bool, device=probes.device)
        for c, dist in _columns(probes[r], manifold, col_batch):
            found |= (dist <= radii[c]).any(dim=1)
        return found

    return _by_rows(probes, row_batch, shards, inside)


def precision_recall(real_features, fake_features, k: int = 3, row_batch: int = 1024, col_batch: int = 16384,
                     device: str | torch.device | None = None, shards: Shards | None = None) -> tuple[float, float]:
    """(precision, recall) of generated features against real features, both [N, D]."""
    real, fake = _matrix(real_features, device), _matrix(fake_features, device)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"Real and generated features differ in dimension: {real.shape[1]} vs {fake.shape[1]}")
    real_radii = knn_radii(real, k, row_batch, col_batch, shards=shards)
    fake_radii = knn_radii(fake, k, row_batch, col_batch, shards=shards)
    precision = _inside(fake, real, real_radii, row_batch, col_batch, shards).float().mean()
    recall = _inside(real, fake, fake_radii, row_batch, col_batch, shards).float().mean()
    return float(precision), float(recall)


def realism_score(real_features, fake_features, k: int = 3, row_batch: int = 1024, col_batch: int = 16384,
                  device: str | torch.device | None = None, shards: Shards | None = None) -> torch.Tensor:
    """Realism score [N_fake] (float32, CPU) of every generated sample against the real features."""
    real, fake = _matrix(real_features, device), _matrix(fake_features, device)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"Real and generated features differ in dimension: {real.shape[1]} vs {fake.shape[1]}")
    radii = knn_radii(real, k, row_batch, col_batch, shards=shards)
    kept = radii <= torch.quantile(radii, 0.5)  # median as numpy's percentile(50): linear interpolation
    real, radii = real[kept], radii[kept]

    def scores(r: slice) -> torch.Tensor:
        best = torch.zeros(r.stop - r.start, device=fake.device)
        for c, dist in _columns(fake[r], real, col_batch):
            best = torch.maximum(best, (radii[c] / (dist + EPS)).amax(dim=1))
        return best

    return _by_rows(fake, row_batch, shards, scores).cpu()
