"""IN amplification of a small high-magnitude region (000_2d004fc061d5976e.txt Claim 3, Eqs. 1-2)
and the feature-magnitude analysis of the case study (Figures 3, 4)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lightning_stylegan.analysis import amplification, feature_maps
from lightning_stylegan.analysis.latents import seed_ws
from lightning_stylegan.analysis.layers import synthesis_layers
from lightning_stylegan.networks import Generator

ALPHAS = [0.005, 0.01, 0.03, 0.1, 0.25, 0.5]


def explicit_in_region_mean(values: np.ndarray, region: np.ndarray) -> float:
    """IN (Eqs. 4-6) of one map by explicit loops, then the mean over S1."""
    h, w = values.shape
    mu = sum(values[i, j] for i in range(h) for j in range(w)) / (h * w)
    var = sum((values[i, j] - mu) ** 2 for i in range(h) for j in range(w)) / (h * w)
    picked = [(values[i, j] - mu) / math.sqrt(var + 1e-8) for i in range(h) for j in range(w) if region[i, j]]
    return sum(picked) / len(picked)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_eq2_estimate_within_its_assumptions(alpha):
    """|mu2| << |mu1| and sigma1, sigma2 << |mu1| (here mu1 = 10, mu2 = 0.1, sigma1 = 0.5,
    sigma2 = 0.05): the mean of S1 after IN is sqrt((1 - alpha) / alpha) within 1.5%, and equals
    Eq. 2's unapproximated line exactly."""
    values, region = amplification.synthetic_map(32, alpha, mu1=10.0, mu2=0.1, sigma1=0.5, sigma2=0.05, seed=3)
    assert int(region.sum()) == max(1, round(alpha * 32 * 32))
    alpha = int(region.sum()) / (32 * 32)  # the fraction of whole pixels in S1
    measured = explicit_in_region_mean(values.numpy(), region.numpy())
    estimate = math.sqrt((1 - alpha) / alpha)
    assert measured == pytest.approx(estimate, rel=0.015)
    row = amplification.measure(values, region)
    assert row["assumptions_hold"] and row["measured"] == pytest.approx(measured, rel=1e-9)
    assert row["exact"] == pytest.approx(measured, rel=1e-6)
    assert row["alpha"] == alpha and row["estimate"] == pytest.approx(estimate, rel=1e-12)


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_eq2_estimate_breaks_down_outside_its_assumptions(alpha):
    """With mu2 = mu1 / 2 and a wide background (sigma2 = 2) the estimate overstates the
    amplification several-fold, while the exact line still matches."""
    values, region = amplification.synthetic_map(32, alpha, mu1=10.0, mu2=5.0, sigma1=0.5, sigma2=2.0, seed=3)
    row = amplification.measure(values, region)
    measured = explicit_in_region_mean(values.numpy(), region.numpy())
    assert not row["assumptions_hold"]
    assert row["exact"] == pytest.approx(measured, rel=1e-6)
    assert measured < 0.6 * math.sqrt((1 - alpha) / alpha)


def test_closed_forms_and_bad_alpha():
    # alpha = 0.5, mu2 = 0, no spread: (0.5 * mu1) / sqrt(0.25 mu1^2) = 1 = sqrt(0.5 / 0.5).
    assert amplification.amplification_exact(0.5, 4.0, 0.0, 0.0, 0.0) == pytest.approx(1.0)
    assert amplification.amplification_estimate(0.2) == pytest.approx(2.0)
    assert math.isnan(amplification.amplification_exact(0.1, 1.0, 1.0, 0.0, 0.0))
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
            amplification.amplification_estimate(bad)


def test_layer_amplification_uses_each_channel_top_alpha():
    """S1 of each map is its own top alpha*l^2 magnitudes (the paper's definition)."""
    maps = []
    for c, (y, x) in enumerate([(2, 3), (10, 12), (7, 1)]):
        m = torch.full((16, 16), 0.01, dtype=torch.float64)
        m[y:y + 2, x:x + 2] = -8.0 - c  # sign does not matter: magnitudes
        maps.append(m)
    row = amplification.layer_amplification(torch.stack(maps), alpha=4 / 256)
    assert row["channels"] == row["channels_within_assumptions"] == 3
    assert row["measured_median"] == pytest.approx(math.sqrt(252 / 4), rel=1e-6)


def test_pixel_magnitude_region_and_ratio_on_a_planted_artifact():
    """Figure 4: the magnitude over channels of an artifact pixel is an order above the rest."""
    g = torch.Generator().manual_seed(0)
    fmap = torch.randn(6, 12, 12, generator=g) * 0.5
    fmap[:, 4:6, 7:9] *= 40
    magnitude = feature_maps.pixel_magnitude(fmap)
    explicit = torch.tensor([[sum(abs(float(fmap[c, i, j])) for c in range(6)) / 6 for j in range(12)]
                             for i in range(12)])
    torch.testing.assert_close(magnitude, explicit.float())
    region = feature_maps.artifact_region(magnitude)
    planted = torch.zeros(12, 12, dtype=torch.bool)
    planted[4:6, 7:9] = True
    assert torch.equal(region, planted)
    ratio = feature_maps.magnitude_ratio(magnitude, region)
    assert ratio == pytest.approx(float(explicit[planted].mean() / explicit[~planted].mean()), rel=1e-5)
    assert feature_maps.magnitude_ratio(magnitude, torch.zeros_like(region)) is None


def test_layer_magnitudes_tap_after_the_normalization():
    torch.manual_seed(0)
    G = Generator(img_resolution=16, img_channels=3, z_dim=8, w_dim=8, topology="original", normalization="pin",
                  mapping_layers=1, channel_base=128, channel_max=16).eval()
    layers = synthesis_layers(G)
    image, results = feature_maps.layer_magnitudes(G, seed_ws(G, [0]), layers)
    assert image.shape == (1, 3, 16, 16)
    assert [r.point for r in results] == ["normalized"] * 5
    # rho = 0: PIN is IN, so every normalized map has zero mean and unit variance per channel.
    fmap = results[1].fmap
    torch.testing.assert_close(fmap.mean(dim=(1, 2)), torch.zeros(16), atol=1e-5, rtol=0)
    torch.testing.assert_close(fmap.var(dim=(1, 2), unbiased=False), torch.ones(16), atol=1e-3, rtol=0)
    summary = results[1].summary()
    assert summary["resolution"] == 8 and summary["point"] == "normalized"
