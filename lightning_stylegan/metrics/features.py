"""Feature extractors for the image-quality metrics: a plugin kind of its own.

A feature extractor turns uint8 images into feature vectors (FID, KID, precision/recall, realism
score) and optionally class logits (Inception Score). Plugins subclass ``FeatureExtractor`` and are
published under the entry-point group ``lightning_stylegan.feature_extractors`` (registry kind
``feature_extractor``), so a domain network (say a Fashion-MNIST classifier) can replace Inception.

Built-ins: ``fashion-mnist`` (``fashion_mnist.py``: a small classifier shipped with its weights,
for gray clothing images, offline), and two of torch-fidelity's ports:

* ``inception``: ``inception-v3-compat``, the PyTorch port of the TensorFlow Inception-v3 graph
  (2015-12-05) that TTUR's FID and NVlabs' metrics use: 2048 pool features and the 1008 logits
  without the output bias (NVlabs' ``no_output_bias=True`` for the Inception Score).
* ``vgg16``: torchvision's ImageNet VGG16 up to ``fc2`` followed by ReLU (torch-fidelity's default
  layer for precision/recall). NVlabs computes precision/recall on a VGG16 too, but on a converted
  copy of Kynkaanniemi et al.'s network, so values are close to, not identical with, NVlabs'.

Weights are downloaded on first use into the torch hub cache. Offline, give a local copy: the
``weights`` argument (``--feature-weights PATH``), else ``$LIGHTNING_STYLEGAN_INCEPTION_WEIGHTS`` /
``$LIGHTNING_STYLEGAN_VGG16_WEIGHTS``, else a copy in ``$TORCH_HOME/hub/checkpoints``; when none
works, ``FeatureWeightsError`` says where the file comes from and where to put it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .. import registry

WEIGHTS_OPTION = "--feature-weights PATH (or NAME=PATH pairs, e.g. inception=A.pth,vgg16=B.pth)"


class FeatureWeightsError(RuntimeError):
    """The weights of a feature extractor could not be found, downloaded or read."""


def as_rgb(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] with C = 1 (gray, repeated), 3 or 4 (alpha dropped) -> uint8 [N, 3, H, W]."""
    if not (isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and images.ndim == 4
            and images.shape[1] in (1, 3, 4)):
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"Feature extractors take uint8 images [N, C, H, W] with C = 1, 3 or 4, got {got}; "
                         "convert generator output with lightning_stylegan.images.to_uint8")
    if images.shape[1] == 1:
        return images.repeat(1, 3, 1, 1)
    return images[:, :3]


def file_identity(path: str | os.PathLike) -> str:
    """``name:size:mtime`` of a file: what the real-statistics cache keys on for weights."""
    stat = os.stat(path)
    return f"{Path(path).name}:{stat.st_size}:{stat.st_mtime_ns}"


class FeatureExtractor(nn.Module):
    """Base of feature-extractor plugins.

    Subclasses set ``name`` (used in cache keys), ``feature_dim`` and ``num_logits`` (0 when there
    are no logits), take ``weights`` (a local weights file or None) in ``__init__`` and implement
    ``extract(rgb)``: uint8 [N, 3, H, W] of any size -> (features [N, feature_dim], logits
    [N, num_logits] or None). ``forward`` accepts 1, 3 or 4 channels, converts them with
    ``as_rgb``, and checks and returns float32 outputs. ``weights_id`` identifies the weights in
    cache keys; set it when the weights come from elsewhere than the ``weights`` file.
    """

    api_version = registry.API_VERSION
    name: str = ""
    feature_dim: int = 0
    num_logits: int = 0

    def __init__(self, weights: str | os.PathLike | None = None):
        super().__init__()
        self.weights_id = file_identity(weights) if weights is not None and os.path.isfile(weights) else ""

    def extract(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError(f"{type(self).__name__} must implement extract(images)")

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        features, logits = self.extract(as_rgb(images))
        n = images.shape[0]
        if features.shape != (n, self.feature_dim):
            raise ValueError(f"Feature extractor {self.name!r} returned features of shape {tuple(features.shape)}, "
                             f"expected {(n, self.feature_dim)} (its feature_dim)")
        if (logits is None) != (self.num_logits == 0) or (logits is not None and logits.shape != (n, self.num_logits)):
            shape = None if logits is None else tuple(logits.shape)
            raise ValueError(f"Feature extractor {self.name!r} returned logits of shape {shape}, expected "
                             f"{(n, self.num_logits) if self.num_logits else None} (its num_logits)")
        return features.float(), None if logits is None else logits.float()


def load_extractor(name: str = "inception", weights: str | os.PathLike | None = None,
                   device: str | torch.device = "cpu") -> FeatureExtractor:
    """The feature-extractor plugin ``name`` with its weights, on ``device``, in eval mode, frozen."""
    cls = registry.load("feature_extractor", name)
    if not (isinstance(cls, type) and issubclass(cls, FeatureExtractor)):
        raise registry.PluginError(
            f"The feature_extractor plugin {name!r} is {cls!r}, not a subclass of "
            "lightning_stylegan.metrics.features.FeatureExtractor; fix that plugin.")
    return cls(weights=weights).to(device).eval().requires_grad_(False)


@dataclass(frozen=True)
class WeightsFile:
    """Where the weights of a built-in come from."""

    network: str
    url: str
    env: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[1]

    @property
    def cache_dir(self) -> Path:
        return Path(torch.hub.get_dir()) / "checkpoints"

    def help(self, reason: str) -> str:
        return (f"The {self.network} feature extractor needs its weights file {self.filename} and could not "
                f"get it ({reason}). Download {self.url} where there is internet access, then pass "
                f"{WEIGHTS_OPTION} to `lightning-stylegan metrics` (weights=PATH in Python), set "
                f"{self.env}=PATH, or copy the file into {self.cache_dir} (the torch hub cache, set by "
                "TORCH_HOME), where it is looked for before downloading.")

    def resolve(self, weights: str | os.PathLike | None) -> Path:
        """The local weights file: ``weights``, else ``$env``, else the cache (downloading into it)."""
        given, source = weights, "weights"
        if given is None and os.environ.get(self.env):
            given, source = os.environ[self.env], f"${self.env}"
        if given is not None:
            if not os.path.isfile(given):
                raise FeatureWeightsError(self.help(f"{source} names {os.fspath(given)!r}, which is not a file"))
            return Path(given)
        cached = self.cache_dir / self.filename
        if not cached.is_file():
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                torch.hub.download_url_to_file(self.url, os.fspath(cached), progress=True)
            except Exception as error:  # URLError, HTTPError, OSError, ...: all mean "no file"
                raise FeatureWeightsError(self.help(f"download failed: {type(error).__name__}: {error}")) from error
        return cached

    def check(self, path: Path) -> None:
        """Refuse a file that is not a plain state dict before torch-fidelity unpickles it fully."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise FeatureWeightsError(self.help(f"{os.fspath(path)!r} cannot be read as a state dict: "
                                                f"{type(error).__name__}: {error}")) from error
        if not isinstance(state, dict):
            raise FeatureWeightsError(self.help(f"{os.fspath(path)!r} holds a {type(state).__name__}, "
                                                "not a state dict"))


INCEPTION_WEIGHTS = WeightsFile(
    "inception",
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
    "LIGHTNING_STYLEGAN_INCEPTION_WEIGHTS")
VGG16_WEIGHTS = WeightsFile("vgg16", "https://download.pytorch.org/models/vgg16-397923af.pth",
                            "LIGHTNING_STYLEGAN_VGG16_WEIGHTS")


def _build(source: WeightsFile, weights, construct) -> tuple[nn.Module, str]:
    """torch-fidelity's network from the resolved weights file, and that file's identity."""
    path = source.resolve(weights)
    source.check(path)
    try:
        network = construct(os.fspath(path))
    except RuntimeError as error:  # load_state_dict: missing/unexpected keys, wrong shapes
        raise FeatureWeightsError(source.help(f"{os.fspath(path)!r} is not the {source.network} state dict: "
                                              f"{str(error)[:300]}")) from error
    return network, file_identity(path)


class InceptionV3(FeatureExtractor):
    """Inception-v3 of TF FID (torch-fidelity ``inception-v3-compat``): 2048 pool features, 1008 logits."""

    name = "inception"
    feature_dim = 2048
    num_logits = 1008

    def __init__(self, weights: str | os.PathLike | None = None):
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        self.net, self.weights_id = _build(INCEPTION_WEIGHTS, weights, lambda path: FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=path))

    def extract(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(images)


class VGG16(FeatureExtractor):
    """ImageNet VGG16 ``fc2`` + ReLU features (torch-fidelity ``vgg16``), 4096-d, for precision/recall."""

    name = "vgg16"
    feature_dim = 4096
    num_logits = 0

    def __init__(self, weights: str | os.PathLike | None = None):
        super().__init__()
        from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16

        self.net, self.weights_id = _build(VGG16_WEIGHTS, weights, lambda path: FeatureExtractorVGG16(
            "vgg16", ["fc2_relu"], feature_extractor_weights_path=path))

    def extract(self, images: torch.Tensor) -> tuple[torch.Tensor, None]:
        (features,) = self.net(images)
        return features, None
