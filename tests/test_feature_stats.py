"""Streaming feature statistics: ``FeatureStats`` against numpy on stacked data, ``generator_stats``
on a real tiny checkpoint and ``dataset_stats`` on a real folder of PNGs (with its cache), through a
feature extractor the test builds and installs as a plugin (no download)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from plugin_site import write_distribution
from tiny_networks import tiny_checkpoint

from lightning_stylegan import registry
from lightning_stylegan.data.dataset import ImageDataset
from lightning_stylegan.images import to_uint8
from lightning_stylegan.metrics.feature_stats import FeatureStats, dataset_stats, generator_stats
from lightning_stylegan.metrics.features import FeatureExtractor, load_extractor
from lightning_stylegan.metrics.shards import NOISE, batch_seed
from lightning_stylegan.network_files import load_generator

RECORDING_EXTRACTOR = '''
import torch
from lightning_stylegan.metrics.features import FeatureExtractor


class Recording(FeatureExtractor):
    """Fixed random projection of 4x4-pooled pixels; records every batch it is given."""
    name = "recording"
    feature_dim = 6
    num_logits = 4
    seen = []

    def __init__(self, weights=None):
        super().__init__(weights)
        generator = torch.Generator().manual_seed(0)
        self.project = torch.nn.Parameter(torch.randn(48, 6, generator=generator))
        self.head = torch.nn.Parameter(torch.randn(6, 4, generator=generator))

    def extract(self, images):
        type(self).seen.append(images.clone())
        x = torch.nn.functional.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1)
        features = x @ self.project
        return features, features @ self.head


class NotAnExtractor:
    api_version = 1
'''


@pytest.fixture
def recording(site):
    """The ``recording`` extractor, loaded through its entry point like any installed plugin."""
    write_distribution(site, "lsg-test-recording", {"lightning_stylegan.feature_extractors": {
        "recording": "lsg_test_recording:Recording", "broken-kind": "lsg_test_recording:NotAnExtractor"}},
        modules={"lsg_test_recording": RECORDING_EXTRACTOR})
    extractor = load_extractor("recording")
    type(extractor).seen.clear()
    return extractor


def test_streaming_mean_and_covariance_equal_numpy_on_the_stacked_data(tmp_path):
    """Shifted float64 sums equal np.mean / np.cov(bias=True) (NVlabs divides by N) on the stacked
    batches, even 1e6 away from the origin; max_items truncates the last batch taken."""
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(b, 5)) * [1, 2, 3, 4, 5] + 1e6 for b in (7, 1, 13, 4)]
    logits = [rng.normal(size=(len(b), 3)) for b in batches]
    stats = FeatureStats(max_items=22, keep_features=True, keep_logits=True)
    for features, lg in zip(batches, logits):
        stats.append(torch.from_numpy(features), torch.from_numpy(lg))
    data = np.concatenate(batches)[:22]
    mean, cov = stats.mean_cov()
    assert stats.num_items == 22 and stats.is_full
    assert mean.dtype == np.float64 and np.allclose(mean, data.mean(axis=0), rtol=0, atol=1e-9)
    assert np.allclose(cov, np.cov(data, rowvar=False, bias=True), rtol=1e-9, atol=1e-7)
    assert np.allclose(stats.features().numpy(), data.astype(np.float32))
    assert np.allclose(stats.logits().numpy(), np.concatenate(logits)[:22].astype(np.float32))

    loaded = FeatureStats.load(stats.save(tmp_path / "stats.npz"))
    assert not list(tmp_path.glob("*.tmp"))
    assert loaded.num_items == 22 and loaded.max_items == 22
    assert all(np.array_equal(a, b) for a, b in zip(loaded.mean_cov(), stats.mean_cov()))
    assert torch.equal(loaded.features(), stats.features()) and torch.equal(loaded.logits(), stats.logits())

    only_gaussian = FeatureStats()
    only_gaussian.append(torch.from_numpy(data))
    with pytest.raises(ValueError, match="keep_features=True"):
        only_gaussian.features()
    assert FeatureStats.load(only_gaussian.save(tmp_path / "g.npz")).max_items is None
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="delete the file"):
        FeatureStats.load(tmp_path / "bad.npz")


def test_plugins_load_through_the_registry_frozen_and_see_rgb(recording):
    assert isinstance(recording, FeatureExtractor) and not recording.training
    assert not any(p.requires_grad for p in recording.parameters())
    gray = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    features, logits = recording(gray)
    assert recording.seen[-1].shape == (2, 3, 8, 8) and torch.equal(recording.seen[-1], gray.repeat(1, 3, 1, 1))
    assert features.shape == (2, 6) and logits.shape == (2, 4) and features.dtype == torch.float32
    recording(torch.zeros(1, 4, 8, 8, dtype=torch.uint8))
    assert recording.seen[-1].shape == (1, 3, 8, 8)
    with pytest.raises(ValueError, match="uint8"):
        recording(torch.zeros(1, 3, 8, 8))
    with pytest.raises(registry.PluginError, match="FeatureExtractor"):
        load_extractor("broken-kind")


def test_generator_stats_stream_seeded_quantized_images(recording, tiny_ckpt):
    """Batch j: latents from a torch.Generator seeded with batch_seed(seed, j), synthesis noise from
    torch seeded with batch_seed(seed, j, NOISE), images quantized with NVlabs' to_uint8;
    reproducible, and the caller's random state is untouched."""
    G = load_generator(tiny_ckpt)
    with torch.no_grad():  # NVlabs initializes them to 0: make the synthesis noise visible
        for name, parameter in G.named_parameters():
            if name.endswith("noise_strength"):
                parameter.fill_(0.5)
    state = torch.random.get_rng_state()
    stats = generator_stats(G, recording, num_images=10, batch_size=4, truncation_psi=0.7, seed=5,
                            keep_features=True, progress=False)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert stats.num_items == 10 and [len(b) for b in recording.seen] == [4, 4, 2]
    assert stats.features().shape == (10, 6) and stats.logits().shape == (10, 4)

    for j, size in ((0, 4), (2, 2)):  # the first batch and the short last one
        torch.manual_seed(batch_seed(5, j, NOISE))
        z = torch.randn(size, G.z_dim, generator=torch.Generator().manual_seed(batch_seed(5, j)))
        with torch.no_grad():
            assert torch.equal(recording.seen[j], to_uint8(G(z, None, truncation_psi=0.7)))

    again = generator_stats(G, recording, 10, batch_size=4, truncation_psi=0.7, seed=5, progress=False)
    other = generator_stats(G, recording, 10, batch_size=4, truncation_psi=0.7, seed=6, progress=False)
    assert np.array_equal(again.mean_cov()[0], stats.mean_cov()[0])
    assert not np.array_equal(other.mean_cov()[0], stats.mean_cov()[0])
    assert not again.keep_features


class LabelSpy(torch.nn.Module):
    """A conditional generator's stand-in that records the labels it is given."""

    def __init__(self, G):
        super().__init__()
        self.G, self.z_dim, self.c_dim, self.labels = G, G.z_dim, G.c_dim, []

    def forward(self, z, c, **kwargs):
        self.labels.append(c)
        return self.G(z, c, **kwargs)


def test_a_conditional_generator_gets_labels_drawn_from_the_given_ones(recording, tmp_path):
    G = load_generator(tiny_checkpoint(tmp_path / "cond.ckpt", label_dim=3))
    spy = LabelSpy(G)
    labels = np.eye(3, dtype=np.float32)[[0, 2]]  # the dataset has classes 0 and 2 only
    generator_stats(spy, recording, 40, batch_size=16, labels=labels, progress=False)
    drawn = torch.cat(spy.labels)
    assert drawn.shape == (40, 3) and set(drawn.argmax(1).tolist()) == {0, 2}
    assert torch.equal(drawn.sum(1), torch.ones(40))
    with pytest.raises(ValueError, match="conditional"):
        generator_stats(G, recording, 4, progress=False)


def write_gray_pngs(folder, count=5, size=16):
    folder.mkdir()
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (count, size, size), dtype=np.uint8)
    for i, image in enumerate(pixels):
        Image.fromarray(image, "L").save(folder / f"img{i}.png")
    return pixels


def test_dataset_stats_see_the_exact_pixels_as_rgb_and_are_cached(recording, tmp_path):
    pixels = write_gray_pngs(tmp_path / "images")
    dataset = ImageDataset(tmp_path / "images", resolution=16, channels=1)
    cache = tmp_path / "cache"
    stats = dataset_stats(dataset, recording, batch_size=2, cache_dir=cache, keep_features=True, progress=False)
    seen = torch.cat(recording.seen)
    assert seen.shape == (5, 3, 16, 16) and [len(b) for b in recording.seen] == [2, 2, 1]
    assert torch.equal(seen, torch.from_numpy(pixels)[:, None].repeat(1, 3, 1, 1))
    expected = recording(seen)[0].double().numpy()
    mean, cov = stats.mean_cov()
    assert np.allclose(mean, expected.mean(0)) and np.allclose(cov, np.cov(expected, rowvar=False, bias=True))
    assert len(list(cache.glob("images-16px-recording-*.npz"))) == 1

    recording.seen.clear()
    cached = dataset_stats(dataset, recording, batch_size=2, cache_dir=cache, keep_features=True, progress=False)
    assert recording.seen == []  # loaded, not recomputed
    assert torch.equal(cached.features(), stats.features())

    capped = dataset_stats(dataset, recording, max_images=3, cache_dir=cache, progress=False)
    assert capped.num_items == 3 and len(torch.cat(recording.seen)) == 3
    Image.fromarray(pixels[0][::-1].copy(), "L").save(tmp_path / "images" / "img0.png")  # an image changes
    recording.seen.clear()
    dataset_stats(dataset, recording, batch_size=2, cache_dir=cache, keep_features=True, progress=False)
    assert len(torch.cat(recording.seen)) == 5
    assert len(list(cache.glob("*.npz"))) == 3 and not list(cache.glob("*.tmp"))


def test_dataset_stats_count_mirrored_images_and_use_the_cache_variable(recording, tmp_path, monkeypatch):
    """With xflip, items N..2N-1 are the mirrored images (NVlabs' --mirror); the default cache
    folder is $LIGHTNING_STYLEGAN_CACHE/stats."""
    pixels = write_gray_pngs(tmp_path / "images", count=3)
    monkeypatch.setenv("LIGHTNING_STYLEGAN_CACHE", str(tmp_path / "env-cache"))
    dataset = ImageDataset(tmp_path / "images", resolution=16, channels=1, xflip=True)
    stats = dataset_stats(dataset, recording, batch_size=4, progress=False)
    seen = torch.cat(recording.seen)[:, 0]
    assert stats.num_items == 6 and torch.equal(seen[3:], torch.from_numpy(pixels).flip(-1))
    assert len(list((tmp_path / "env-cache" / "stats").glob("*.npz"))) == 1
