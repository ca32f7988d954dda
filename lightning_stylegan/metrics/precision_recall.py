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
distances at a time, so 50k x 50k (or 200k real) never sits in memory.
"""
from __future__ import annotations

import torch

EPS = 1e-5


def _matrix(features, device) -> torch.Tensor:
    features = torch.as_tensor(features)
    if features.ndim != 2:
        raise ValueError(f"Features must be a matrix [N, D], got shape {tuple(features.shape)}")
    return features.detach().to(device or features.device, torch.float32)


def _blocks(rows: torch.Tensor, cols: torch.Tensor, row_batch: int, col_batch: int):
    """Yield (row slice, column slice, distances [rows, cols]) block by block."""
    for r0 in range(0, rows.shape[0], row_batch):
        r = slice(r0, min(r0 + row_batch, rows.shape[0]))
        for c0 in range(0, cols.shape[0], col_batch):
            c = slice(c0, min(c0 + col_batch, cols.shape[0]))
            yield r, c, torch.cdist(rows[r], cols[c])


def knn_radii(features, k: int = 3, row_batch: int = 1024, col_batch: int = 16384,
              device: str | torch.device | None = None) -> torch.Tensor:
    """NND_k of every sample [N]: the (k+1)-th smallest distance to the set, the sample included."""
    x = _matrix(features, device)
    if k < 1 or x.shape[0] <= k:
        raise ValueError(f"The k-NN radius needs k >= 1 and more than k = {k} samples, got {x.shape[0]}")
    radii = torch.empty(x.shape[0], device=x.device)
    nearest = None  # the k + 1 smallest distances of the current row batch seen so far
    for r, c, dist in _blocks(x, x, row_batch, col_batch):
        nearest = dist if c.start == 0 else torch.cat([nearest, dist], dim=1)
        nearest = nearest.topk(min(k + 1, nearest.shape[1]), dim=1, largest=False).values
        if c.stop == x.shape[0]:
            radii[r] = nearest[:, k]
    return radii


def _inside(probes: torch.Tensor, manifold: torch.Tensor, radii: torch.Tensor, row_batch: int,
            col_batch: int) -> torch.Tensor:
    """Whether each probe lies in some hypersphere of the manifold [P] (bool)."""
    inside = torch.zeros(probes.shape[0], dtype=torch.bool, device=probes.device)
    for r, c, dist in _blocks(probes, manifold, row_batch, col_batch):
        inside[r] |= (dist <= radii[c]).any(dim=1)
    return inside


def precision_recall(real_features, fake_features, k: int = 3, row_batch: int = 1024,
                     col_batch: int = 16384, device: str | torch.device | None = None) -> tuple[float, float]:
    """(precision, recall) of generated features against real features, both [N, D]."""
    real, fake = _matrix(real_features, device), _matrix(fake_features, device)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"Real and generated features differ in dimension: {real.shape[1]} vs {fake.shape[1]}")
    real_radii = knn_radii(real, k, row_batch, col_batch)
    fake_radii = knn_radii(fake, k, row_batch, col_batch)
    precision = _inside(fake, real, real_radii, row_batch, col_batch).float().mean()
    recall = _inside(real, fake, fake_radii, row_batch, col_batch).float().mean()
    return float(precision), float(recall)


def realism_score(real_features, fake_features, k: int = 3, row_batch: int = 1024, col_batch: int = 16384,
                  device: str | torch.device | None = None) -> torch.Tensor:
    """Realism score [N_fake] (float32, CPU) of every generated sample against the real features."""
    real, fake = _matrix(real_features, device), _matrix(fake_features, device)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"Real and generated features differ in dimension: {real.shape[1]} vs {fake.shape[1]}")
    radii = knn_radii(real, k, row_batch, col_batch)
    kept = radii <= torch.quantile(radii, 0.5)  # median as numpy's percentile(50): linear interpolation
    real, radii = real[kept], radii[kept]
    scores = torch.zeros(fake.shape[0], device=fake.device)
    for r, c, dist in _blocks(fake, real, row_batch, col_batch):
        scores[r] = torch.maximum(scores[r], (radii[c] / (dist + EPS)).amax(dim=1))
    return scores.cpu()
