"""LPIPS (Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric",
CVPR 2018), the image distance of the perceptual path length (StyleGAN Section 4.2) and of
projection (StyleGAN2 Appendix D), through the ``lpips`` package.

The package ships its calibrated linear layers (``lpips/weights/v0.1/<net>.pth``), but its backbone
(torchvision's ImageNet VGG16 / AlexNet / SqueezeNet 1.1) is downloaded from download.pytorch.org on
first use. ``load_lpips`` builds the network without that download and loads the backbone from a
local file (``--lpips-backbone PATH`` / ``LIGHTNING_STYLEGAN_LPIPS_BACKBONE``) or the torch hub
cache, and stops with ``LPIPSWeightsError`` saying where to get the file when none is found.
"""
from __future__ import annotations

import os
import warnings

import lpips
import torch
from torch import nn
from torchvision import models

BACKBONE_ENV = "LIGHTNING_STYLEGAN_LPIPS_BACKBONE"
BACKBONE_OPTION = "--lpips-backbone PATH"
BACKBONE_WEIGHTS = {
    "vgg": models.VGG16_Weights.IMAGENET1K_V1,
    "alex": models.AlexNet_Weights.IMAGENET1K_V1,
    "squeeze": models.SqueezeNet1_1_Weights.IMAGENET1K_V1,
}
# Smallest image side each backbone accepts (its pooling stages reduce smaller images to nothing).
MIN_SIZE = {"vgg": 16, "vgg16": 16, "alex": 31, "squeeze": 17}


class LPIPSWeightsError(RuntimeError):
    """The ImageNet weights of the LPIPS backbone could not be found or read."""


class LPIPSDistance(nn.Module):
    """``d(img0, img1) -> [N]``: LPIPS distance per image pair.

    Images are [N, C, H, W] in [-1, 1] with C = 1 (gray, repeated to RGB), 3 (RGB) or 4 (RGBA, alpha
    dropped). The wrapped ``lpips.LPIPS`` model is frozen (eval mode, no parameter gradients);
    gradients still flow to the images, as projection needs.
    """

    def __init__(self, model: lpips.LPIPS):
        super().__init__()
        self.model = model.eval().requires_grad_(False)

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        if img0.ndim != 4 or img0.shape != img1.shape:
            raise ValueError(f"LPIPS needs two image batches of the same shape [N, C, H, W], got "
                             f"{tuple(img0.shape)} and {tuple(img1.shape)}")
        min_size = MIN_SIZE.get(self.model.pnet_type, 1)
        if min(img0.shape[2:]) < min_size:
            raise ValueError(f"LPIPS with the {self.model.pnet_type!r} backbone needs images of at least "
                             f"{min_size}x{min_size} pixels, got {img0.shape[2]}x{img0.shape[3]}; "
                             f"use the 'vgg' backbone (16 px) or larger images")
        return self.model(_to_rgb(img0), _to_rgb(img1)).reshape(img0.shape[0])


def _to_rgb(images: torch.Tensor) -> torch.Tensor:
    channels = images.shape[1]
    if channels == 1:
        images = images.repeat(1, 3, 1, 1)
    elif channels == 4:
        images = images[:, :3]
    elif channels != 3:
        raise ValueError(f"LPIPS compares gray, RGB or RGBA images (1, 3 or 4 channels), got {channels}")
    return images.to(torch.float32)


def load_lpips(net: str = "vgg", backbone_weights: str | os.PathLike | None = None,
               device: str | torch.device = "cpu") -> LPIPSDistance:
    """LPIPS v0.1 with backbone ``net`` ('vgg', 'alex' or 'squeeze') and its ImageNet weights.

    The backbone weights (torchvision's state dict, e.g. ``vgg16-397923af.pth``) come from
    ``backbone_weights``, else the file named by ``$LIGHTNING_STYLEGAN_LPIPS_BACKBONE``, else
    torchvision's weights API (torch hub cache ``$TORCH_HOME/hub/checkpoints``, downloading there
    when missing). Raises ``LPIPSWeightsError`` when none of these gives the weights.
    """
    if net not in BACKBONE_WEIGHTS:
        raise ValueError(f"Unknown LPIPS backbone {net!r}; choose one of {sorted(BACKBONE_WEIGHTS)}")
    with warnings.catch_warnings():  # lpips passes torchvision's deprecated ``pretrained=False``
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
    state = _backbone_state_dict(net, backbone_weights)
    _load_backbone(model, state, net)
    return LPIPSDistance(model).to(device)


def _backbone_state_dict(net: str, backbone_weights: str | os.PathLike | None) -> dict:
    weights = BACKBONE_WEIGHTS[net]
    path, source = backbone_weights, "--lpips-backbone"
    if path is None and os.environ.get(BACKBONE_ENV):
        path, source = os.environ[BACKBONE_ENV], f"${BACKBONE_ENV}"
    try:
        if path is None:
            return weights.get_state_dict(progress=True, check_hash=True, map_location="cpu",
                                          weights_only=True)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{source} names {os.fspath(path)!r}, which is not a file")
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise LPIPSWeightsError(_weights_help(net, f"{type(error).__name__}: {error}")) from error
    if not isinstance(state, dict):
        raise LPIPSWeightsError(_weights_help(net, f"{os.fspath(path)!r} holds a {type(state).__name__}, "
                                                   f"not a state dict"))
    return state


def _load_backbone(model: lpips.LPIPS, state: dict, net: str) -> None:
    """Copy torchvision ``features.<i>.*`` tensors into lpips' ``slice<k>.<i>.*`` (lpips splits
    torchvision's ``features`` into slices whose children keep their original indices)."""
    mapped, missing, misshaped = {}, [], []
    for key, target in model.net.state_dict().items():
        source = "features." + key.split(".", 1)[1]
        if source not in state:
            missing.append(source)
        elif state[source].shape != target.shape:
            misshaped.append(f"{source} {tuple(state[source].shape)} (expected {tuple(target.shape)})")
        else:
            mapped[key] = state[source]
    if missing or misshaped:
        problems = (f"missing {missing[:4]}{' ...' if len(missing) > 4 else ''} " if missing else "") + \
                   (f"wrong shape {misshaped[:4]}" if misshaped else "")
        raise LPIPSWeightsError(_weights_help(net, f"the file is not torchvision's {net!r} state dict: "
                                                   f"{problems.strip()}"))
    model.net.load_state_dict(mapped)


def _weights_help(net: str, reason: str) -> str:
    url = BACKBONE_WEIGHTS[net].url
    filename = url.rsplit("/", 1)[1]
    cache = os.path.join(torch.hub.get_dir(), "checkpoints")
    return (f"LPIPS needs the ImageNet weights of its {net!r} backbone, {filename}, and could not load them "
            f"({reason}). Download {url} where there is internet access, then pass {BACKBONE_OPTION}, "
            f"set {BACKBONE_ENV}=PATH, or copy the file into the torch hub cache {cache} "
            f"(set by TORCH_HOME).")
