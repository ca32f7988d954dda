"""Tests of the installed ``lightning-stylegan-groupnorm`` plugin (``pip install ./plugins/groupnorm``)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

groupnorm = pytest.importorskip(
    "lightning_stylegan_groupnorm",
    reason="lightning-stylegan-groupnorm is not installed; run `pip install ./plugins/groupnorm`")

from lightning_stylegan import registry  # noqa: E402
from lightning_stylegan.networks import Generator  # noqa: E402

DISTRIBUTION = "lightning-stylegan-groupnorm"

# Channel count -> the largest divisor that is <= 32, worked out by hand.
EXPECTED_GROUPS = {24: 24, 48: 24, 64: 32, 96: 32, 40: 20, 17: 17, 34: 17, 3: 3, 1: 1}


def reference_group_norm(x: np.ndarray, groups: int, eps: float) -> np.ndarray:
    """Wu & He 2018, Eqs. 1, 2, 7, one sample and one group at a time, in float64."""
    n, c, _, _ = x.shape
    size = c // groups
    out = np.empty_like(x, dtype=np.float64)
    for i in range(n):
        for g in range(groups):
            block = x[i, g * size:(g + 1) * size].astype(np.float64)
            mean = block.sum() / block.size
            var = ((block - mean) ** 2).sum() / block.size
            out[i, g * size:(g + 1) * size] = (block - mean) / np.sqrt(var + eps)
    return out


@pytest.mark.parametrize("channels", sorted(EXPECTED_GROUPS))
def test_group_norm_matches_independent_computation(channels):
    torch.manual_seed(channels)
    norm = groupnorm.GroupNorm(channels)
    assert norm.groups == EXPECTED_GROUPS[channels]
    assert list(norm.parameters()) == []  # no affine: the style affine follows
    x = torch.randn(3, channels, 5, 4) * 3 + torch.randn(3, channels, 1, 1)
    expected = reference_group_norm(x.numpy(), EXPECTED_GROUPS[channels], norm.eps)
    np.testing.assert_allclose(norm(x).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_plugin_creates_group_norm():
    plugin = groupnorm.GroupNormalization()
    assert plugin.api_version == registry.API_VERSION
    normalizer = plugin.make_normalizer(48)
    assert isinstance(normalizer, groupnorm.GroupNorm) and normalizer.groups == 24


def test_discovered_through_installed_entry_point():
    registry.clear_cache()
    found = registry.index("normalization")
    assert "groupnorm" in found
    assert found["groupnorm"].distribution == DISTRIBUTION
    assert found["groupnorm"].version == "0.1.0"
    assert found["groupnorm"].target == "lightning_stylegan_groupnorm:GroupNormalization"
    assert registry.load("normalization", "groupnorm") is groupnorm.GroupNormalization


@pytest.mark.parametrize("topology", ["original", "skip", "residual"])
def test_generator_with_groupnorm(topology):
    torch.manual_seed(0)
    G = Generator(img_resolution=16, img_channels=3, z_dim=32, w_dim=32, channel_base=256,
                  channel_max=32, mapping_layers=2, normalization="groupnorm", topology=topology)
    assert any(isinstance(m, groupnorm.GroupNorm) for m in G.modules())
    img = G(torch.randn(2, 32))
    assert img.shape == (2, 3, 16, 16)
    assert torch.isfinite(img).all()
    img.square().mean().backward()
    grads = [p.grad for p in G.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_cli_lists_groupnorm():
    command = shutil.which("lightning-stylegan") or str(Path(sys.executable).parent / "lightning-stylegan")
    result = subprocess.run([command, "plugins", "--kind", "normalization"],
                            capture_output=True, text=True, check=True, timeout=300)
    rows = [line for line in result.stdout.splitlines() if line.split()[1:2] == ["groupnorm"]]
    assert len(rows) == 1, result.stdout
    assert DISTRIBUTION in rows[0] and "0.1.0" in rows[0] and "BROKEN" not in rows[0]
    assert "Group norm" in rows[0]
