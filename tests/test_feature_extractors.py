"""The built-in feature extractors (torch-fidelity's Inception-v3 and VGG16) without the network:
weights missing or unreachable stop with a message saying where to get them; a local weights
file (here random weights of the right architecture) is used as given."""
from __future__ import annotations

import socket
import urllib.error

import pytest
import torch

from lightning_stylegan.metrics.features import (INCEPTION_WEIGHTS, VGG16_WEIGHTS, FeatureWeightsError,
                                                 load_extractor)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No network and an empty torch hub cache: every connection attempt and download fails."""
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to reach the network")

    downloads = []

    def unreachable(url, dst, *args, **kwargs):
        downloads.append((url, dst))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", unreachable)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    for source in (INCEPTION_WEIGHTS, VGG16_WEIGHTS):
        monkeypatch.delenv(source.env, raising=False)
    return downloads


@pytest.mark.parametrize("source", [INCEPTION_WEIGHTS, VGG16_WEIGHTS], ids=lambda s: s.network)
def test_unreachable_download_names_the_file_url_option_variable_and_cache(offline, tmp_path, source):
    with pytest.raises(FeatureWeightsError) as error:
        load_extractor(source.network)
    cache = tmp_path / "torch-home" / "hub" / "checkpoints"
    assert offline == [(source.url, str(cache / source.filename))]
    message = str(error.value)
    for part in (source.filename, source.url, source.env, "--feature-weights PATH", str(cache), "URLError"):
        assert part in message
    assert isinstance(error.value, RuntimeError)


def test_a_missing_or_unreadable_weights_file_is_named(offline, tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "inception.pth"
    with pytest.raises(FeatureWeightsError, match=f"weights names '{missing}', which is not a file"):
        load_extractor("inception", weights=missing)
    monkeypatch.setenv(VGG16_WEIGHTS.env, str(missing))
    with pytest.raises(FeatureWeightsError, match=rf"\$LIGHTNING_STYLEGAN_VGG16_WEIGHTS names '{missing}'"):
        load_extractor("vgg16")
    text = tmp_path / "notes.pth"
    text.write_text("not weights")
    with pytest.raises(FeatureWeightsError, match="cannot be read as a state dict"):
        load_extractor("inception", weights=text)
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(FeatureWeightsError, match="is not the inception state dict"):
        load_extractor("inception", weights=other)
    assert offline == []


def test_inception_from_a_local_file_gives_pool_features_and_logits(offline, tmp_path, monkeypatch):
    """Random weights of torch-fidelity's Inception-v3 saved as a state dict: any image size and
    1/3/4 channels give 2048 features and 1008 logits (without the output bias, for the IS)."""
    from torch_fidelity import feature_extractor_inceptionv3 as module

    with monkeypatch.context() as patch:  # build the architecture without any weights file
        patch.setattr(module, "load_state_dict_from_url", lambda *args, **kwargs: {})
        patch.setattr(module.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        torch.manual_seed(0)
        network = module.FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"])
        path = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
        torch.save(network.state_dict(), path)
    extractor = load_extractor("inception", weights=path)
    assert extractor.weights_id.startswith(path.name + ":")
    gray = torch.randint(0, 256, (1, 1, 16, 16), dtype=torch.uint8)
    images = torch.cat([torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8), gray.repeat(1, 3, 1, 1)])
    features, logits = extractor(images)
    assert features.shape == (2, 2048) and logits.shape == (2, 1008) and features.dtype == torch.float32
    assert torch.allclose(logits, features @ network.fc.weight.T, rtol=1e-4, atol=1e-4)
    assert torch.allclose(extractor(gray)[0], features[1:], rtol=1e-5, atol=1e-6)
    assert offline == []


def test_vgg16_from_a_local_file_gives_relu_fc2_features_and_no_logits(offline, tmp_path):
    """torchvision's VGG16 state dict (random, stored in half precision to keep the file small):
    4096 fc2 features after ReLU (torch-fidelity's layer for precision/recall), no logits."""
    import torchvision

    torch.manual_seed(0)
    path = tmp_path / "vgg16.pth"
    torch.save({key: value.half() for key, value in torchvision.models.vgg16().state_dict().items()}, path)
    extractor = load_extractor("vgg16", weights=path)
    features, logits = extractor(torch.randint(0, 256, (2, 1, 16, 16), dtype=torch.uint8))
    assert features.shape == (2, 4096) and logits is None and extractor.num_logits == 0
    assert (features >= 0).all() and (features > 0).any()
    assert offline == []
