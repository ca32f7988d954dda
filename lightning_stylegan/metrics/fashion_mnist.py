"""``fashion-mnist``: a feature extractor for gray 28x28 clothing images, shipped with its weights.

Inception features say little about 28x28 gray clothes and need a 100 MB download; this small
classifier, trained on the 60k Fashion-MNIST training images (``train_fashion_mnist.py``, its test
accuracy in ``fashion_mnist_classifier.json``), gives FID, KID and precision/recall offline for the
embedded dataset and the quickstart: 128 penultimate features and 10 class logits (so ``is`` works).

Images of any size and 1, 3 or 4 channels are made gray (the channel mean), resized to 28x28 with
an antialiased bilinear filter, and normalized with the training set's mean and deviation.
"""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .features import FeatureExtractor, FeatureWeightsError

WEIGHTS = Path(__file__).with_name("fashion_mnist_classifier.pt")
SIZE = 28
MEAN, STD = 0.2860, 0.3530  # of the 60k training images, in [0, 1]
FEATURE_DIM, NUM_CLASSES = 128, 10


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels),
                         nn.ReLU(inplace=True))


class FashionMnistClassifier(nn.Module):
    """28x28 gray -> 128 features (after ReLU) -> 10 logits; ~160k parameters."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(conv_block(1, 32), conv_block(32, 32), nn.MaxPool2d(2),
                                  conv_block(32, 64), conv_block(64, 64), nn.MaxPool2d(2),
                                  conv_block(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(128, FEATURE_DIM), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(FEATURE_DIM, NUM_CLASSES))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        return features, self.head(features)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] -> normalized float gray [N, 1, 28, 28]."""
    x = images.float().mean(dim=1, keepdim=True) / 255
    if x.shape[-2:] != (SIZE, SIZE):
        x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False)
    return (x - MEAN) / STD


class FashionMnistFeatures(FeatureExtractor):
    """Fashion-MNIST classifier with shipped weights: 128 features and 10 logits of gray clothing images."""

    name = "fashion-mnist"
    feature_dim = FEATURE_DIM
    num_logits = NUM_CLASSES

    def __init__(self, weights: str | os.PathLike | None = None):
        super().__init__()
        path = Path(weights) if weights is not None else WEIGHTS
        self.net = FashionMnistClassifier()
        try:
            data = path.read_bytes()  # read once: loaded, and hashed for the statistics cache
            self.net.load_state_dict(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True))
        except (OSError, RuntimeError, ValueError) as error:
            raise FeatureWeightsError(
                f"The fashion-mnist feature extractor could not load {os.fspath(path)!r} ({type(error).__name__}: "
                f"{str(error)[:300]}). The package ships it as {WEIGHTS}; reinstall lightning-stylegan, or "
                "retrain it with `python -m lightning_stylegan.metrics.train_fashion_mnist`.") from error
        self.weights_id = "sha256:" + hashlib.sha256(data).hexdigest()[:16]

    def extract(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(preprocess(images))
