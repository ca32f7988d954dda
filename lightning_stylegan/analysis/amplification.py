"""How instance normalization amplifies a small high-magnitude region (000_2d004fc061d5976e.txt,
Claim 3, Eqs. 1-2).

Take the magnitudes (absolute values) of an l x l feature map; S1 is the set of the alpha*l^2
pixels of highest magnitude (alpha <= 0.5), S2 the rest, with means mu1, mu2 > 0 and variances
sigma1^2, sigma2^2. After IN the mean of S1 is exactly

    mu1_hat = (1 - alpha)(mu1 - mu2) / sqrt(sigma1^2 alpha + sigma2^2 (1 - alpha) + alpha (1 - alpha)(mu1 - mu2)^2)

and, assuming |mu2| << |mu1| and sigma1, sigma2 << |mu1|, approximately sqrt((1 - alpha) / alpha)
(Eq. 2): the smaller the region, the larger its normalized magnitude. ``measured`` is IN applied
to the magnitudes; ``exact`` is the closed form from the regions' statistics; ``estimate`` is Eq. 2.
"""
from __future__ import annotations

import math

import torch

from ..nn.norms import instance_norm

ASSUMPTION_RATIO = 0.1  # "<<": mu2 and the sigmas below a tenth of mu1


def amplification_estimate(alpha: float) -> float:
    """Eq. 2: sqrt((1 - alpha) / alpha)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return math.sqrt((1 - alpha) / alpha)


def amplification_exact(alpha: float, mu1: float, mu2: float, sigma1: float, sigma2: float) -> float:
    """The line of Eq. 2 before the approximation (the overall mean and variance of Eq. 1);
    NaN for a constant map."""
    gap = mu1 - mu2
    var = sigma1 ** 2 * alpha + sigma2 ** 2 * (1 - alpha) + alpha * (1 - alpha) * gap ** 2
    return (1 - alpha) * gap / math.sqrt(var) if var > 0 else math.nan


def top_region(magnitude: torch.Tensor, alpha: float) -> torch.Tensor:
    """Boolean [..., H, W]: the round(alpha * H * W) highest-magnitude pixels of each map (S1)."""
    h, w = magnitude.shape[-2:]
    count = max(1, round(alpha * h * w))
    flat = magnitude.flatten(-2)
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask.scatter_(-1, flat.topk(count, dim=-1).indices, True)
    return mask.reshape(magnitude.shape)


def region_statistics(magnitude: torch.Tensor, region: torch.Tensor) -> dict:
    """alpha, mu1, mu2, sigma1, sigma2 of one [H, W] map of magnitudes split by ``region`` (S1)."""
    inside, outside = magnitude[region].double(), magnitude[~region].double()
    return {"alpha": inside.numel() / magnitude.numel(), "mu1": float(inside.mean()), "mu2": float(outside.mean()),
            "sigma1": float(inside.std(unbiased=False)), "sigma2": float(outside.std(unbiased=False))}


def assumptions_hold(stats: dict, ratio: float = ASSUMPTION_RATIO) -> bool:
    """Eq. 2's conditions: alpha <= 0.5, mu2, sigma1, sigma2 all below ``ratio`` * mu1."""
    mu1 = stats["mu1"]
    return stats["alpha"] <= 0.5 and mu1 > 0 and max(abs(stats["mu2"]), stats["sigma1"], stats["sigma2"]) < ratio * mu1


def measure(magnitude: torch.Tensor, region: torch.Tensor) -> dict:
    """IN of one [H, W] magnitude map: the mean of S1 after IN, with Eq. 2's closed forms."""
    stats = region_statistics(magnitude, region)
    normalized = instance_norm(magnitude.double()[None, None])[0, 0]
    stats["measured"] = float(normalized[region].mean())
    stats["exact"] = amplification_exact(stats["alpha"], stats["mu1"], stats["mu2"], stats["sigma1"], stats["sigma2"])
    stats["estimate"] = amplification_estimate(stats["alpha"]) if 0 < stats["alpha"] < 1 else None
    stats["assumptions_hold"] = assumptions_hold(stats)
    return stats


def synthetic_map(size: int, alpha: float, mu1: float = 10.0, mu2: float = 0.1, sigma1: float = 0.5,
                  sigma2: float = 0.05, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A size x size map of magnitudes with a disc of round(alpha * size^2) pixels (the pixels
    nearest the centre) drawn from |N(mu1, sigma1^2)| and the rest from |N(mu2, sigma2^2)|.
    Returns (map, region)."""
    generator = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    distance = ((ys - (size - 1) / 2) ** 2 + (xs - (size - 1) / 2) ** 2).double()
    region = top_region(-distance - 1e-6 * torch.arange(size * size).reshape(size, size), alpha)
    values = torch.where(region, mu1 + sigma1 * torch.randn(size, size, generator=generator, dtype=torch.float64),
                         mu2 + sigma2 * torch.randn(size, size, generator=generator, dtype=torch.float64))
    return values.abs(), region


def synthetic_sweep(alphas, size: int = 64, **kwargs) -> list[dict]:
    """``measure`` on ``synthetic_map(size, alpha, **kwargs)`` for each alpha."""
    return [measure(*synthetic_map(size, alpha, **kwargs)) for alpha in alphas]


def layer_amplification(fmap: torch.Tensor, alpha: float) -> dict:
    """A real layer's map [C, H, W]: per channel, S1 = its top alpha of |x| and ``measure``;
    returns the median over channels of measured, exact and estimate, and how many channels
    satisfy Eq. 2's assumptions (with their median measured / estimate)."""
    magnitude = fmap.abs().double()
    region = top_region(magnitude, alpha)
    rows = [measure(magnitude[c], region[c]) for c in range(magnitude.shape[0])]
    holding = [row for row in rows if row["assumptions_hold"]]

    def median(values):
        values = [v for v in values if v is not None]
        return float(torch.tensor(values).median()) if values else None

    return {"alpha": rows[0]["alpha"], "estimate": rows[0]["estimate"],
            "measured_median": median(row["measured"] for row in rows),
            "exact_median": median(row["exact"] for row in rows),
            "channels": len(rows), "channels_within_assumptions": len(holding),
            "measured_median_within_assumptions": median(row["measured"] for row in holding)}
