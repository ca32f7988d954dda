"""A feature extractor the tests build themselves (no download): a fixed, seeded random conv net,
installed as a ``lightning_stylegan.feature_extractors`` plugin of a throwaway distribution."""
from __future__ import annotations

from pathlib import Path

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
