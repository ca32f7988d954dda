"""The shipped ``fashion-mnist`` feature extractor: its weights load through the registry without
executing code, classify Fashion-MNIST, separate real from unlike images in FID, and drive
``lightning-stylegan metrics --features fashion-mnist`` offline."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from lightning_stylegan.data.embedded import load_embedded
from lightning_stylegan.metrics.fashion_mnist import WEIGHTS, preprocess
from lightning_stylegan.metrics.features import FeatureWeightsError, load_extractor
from lightning_stylegan.metrics.frechet import frechet_distance
from tiny_networks import tiny_checkpoint


@pytest.fixture(scope="module")
def extractor():
    return load_extractor("fashion-mnist")


def _features(extractor, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        features, logits = extractor(torch.from_numpy(np.ascontiguousarray(images))[:, None])
    return features.double().numpy(), logits.numpy()


def _fid(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def test_shipped_weights_are_small_and_classify_the_embedded_images(extractor):
    assert WEIGHTS.stat().st_size < 2e6
    info = json.loads(WEIGHTS.with_suffix(".json").read_text())
    assert info["train_images"] == 60000 and info["test_accuracy"] > 0.88
    images, labels = load_embedded()
    _, logits = _features(extractor, images[::3])
    assert (logits.argmax(1) == labels[::3]).mean() > 0.88
    assert extractor.weights_id.startswith("sha256:")


def test_any_size_and_channel_count_is_gray_28x28(extractor):
    gray = torch.randint(0, 256, (2, 1, 32, 32), dtype=torch.uint8)
    assert preprocess(gray).shape == (2, 1, 28, 28)
    rgb = gray.repeat(1, 3, 1, 1)
    features_gray, _ = extractor(gray)
    features_rgb, _ = extractor(rgb)
    torch.testing.assert_close(features_gray, features_rgb)


def test_fid_in_these_features_separates_like_from_unlike(extractor):
    """FID between two halves of the embedded set is far below FID against blurred or shuffled
    copies (the pixels permuted: the same histogram, no clothes)."""
    images, _ = load_embedded()
    first, second = _features(extractor, images[0::2][:1500])[0], _features(extractor, images[1::2][:1500])[0]
    rng = np.random.default_rng(0)
    shuffled = images[1::2][:1500].reshape(1500, -1)[:, rng.permutation(784)].reshape(1500, 28, 28)
    blurred = images[1::2][:1500].reshape(1500, 7, 4, 7, 4).mean(axis=(2, 4)).repeat(4, 1).repeat(4, 2)
    like = _fid(first, second)
    assert like < 0.2 * _fid(first, _features(extractor, blurred.astype(np.uint8))[0])
    assert like < 0.05 * _fid(first, _features(extractor, shuffled)[0])


def test_a_wrong_weights_file_is_named(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"not": torch.zeros(1)}, bad)
    with pytest.raises(FeatureWeightsError, match="(?s)bad.pt.*train_fashion_mnist"):
        load_extractor("fashion-mnist", weights=bad)


def test_metrics_command_computes_fid_in_fashion_mnist_features_offline(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt", resolution=32, channels=1)
    result = subprocess.run(
        [sys.executable, "-m", "lightning_stylegan.cli", "metrics", "--ckpt", str(ckpt), "--features",
         "fashion-mnist", "--data", "fashion-mnist", "--metrics", "fid5k_full", "--num-gen", "200", "--cache-dir", str(tmp_path / "cache"),
         "--no-progress"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "tiny.ckpt.metrics.json").read_text())
    assert record["results"]["fid200_full"] > 0
