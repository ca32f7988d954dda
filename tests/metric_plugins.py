"""A feature extractor the tests build themselves (no download): a fixed, seeded random conv net,
installed as a ``lightning_stylegan.feature_extractors`` plugin of a throwaway distribution; and an
LPIPS-like distance for PPL, built the same way."""
from __future__ import annotations

from pathlib import Path

import torch
from plugin_site import write_distribution

EXTRACTOR_SOURCE = '''
import torch
import torch.nn.functional as F
from lightning_stylegan.metrics.features import FeatureExtractor


class TinyFeatures(FeatureExtractor):
    """Random conv features (seeded): 16 features, 10 logits."""
    api_version = 1
    name = "tiny"
    feature_dim = 16
    num_logits = 10

    def __init__(self, weights=None):
        super().__init__(weights)
        generator = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Parameter(torch.randn(16, 3, 3, 3, generator=generator), requires_grad=False)
        self.head = torch.nn.Parameter(torch.randn(10, 16, generator=generator), requires_grad=False)

    def extract(self, rgb):
        x = rgb.float() / 127.5 - 1
        x = F.adaptive_avg_pool2d(F.relu(F.conv2d(x, self.conv, padding=1)), 1).flatten(1)
        return x, x @ self.head.t()
'''


def install_tiny_extractor(site: Path) -> None:
    """Register ``tiny`` in the group ``lightning_stylegan.feature_extractors`` under ``site``."""
    write_distribution(site, "lsg-test-features", {"lightning_stylegan.feature_extractors":
                                                   {"tiny": "lsg_test_features:TinyFeatures"}},
                       modules={"lsg_test_features": EXTRACTOR_SOURCE})


class TinyDistance(torch.nn.Module):
    """An LPIPS-like distance the tests build themselves (PPL without a download): features of a
    fixed, seeded random conv (8 maps), unit-normalized over channels at every pixel as LPIPS
    normalizes, squared differences averaged over pixels and summed over channels -> [N]."""

    def __init__(self):
        super().__init__()
        self.register_buffer("conv", torch.randn(8, 3, 3, 3, generator=torch.Generator().manual_seed(1)))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        rgb = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images[:, :3]
        x = torch.nn.functional.conv2d(rgb.float(), self.conv, padding=1)
        return x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        return (self.features(img0) - self.features(img1)).square().mean(dim=(2, 3)).sum(dim=1)
