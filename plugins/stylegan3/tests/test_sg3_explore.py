"""The core's explorer (``lightning-stylegan explore``) with a StyleGAN3 generator: translate and
rotate move the image through the synthesis network's ``set_transform`` hook, a request without
them draws the untransformed image again, and the layer view reads its layers."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("starlette")
from lightning_stylegan.explore.render import network  # noqa: E402
from lightning_stylegan.explore.server import Explorer  # noqa: E402
from lightning_stylegan.networks import Generator  # noqa: E402


def pixels(encoded: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded)))).astype(np.int16)


def test_translate_and_rotate_move_a_stylegan3_image_and_do_not_stick():
    torch.manual_seed(0)
    G = Generator(img_resolution=16, img_channels=3, topology="stylegan3-t", normalization="demod", use_noise=False,
                  z_dim=16, w_dim=16, mapping_layers=2, channel_base=256, channel_max=16,
                  synthesis_options=dict(num_layers=4))
    explorer = Explorer([network("sg3", G)])
    assert "transform" not in explorer.describe()["networks"][0]["unavailable"]

    def draw(**request):
        explorer.newest += 1
        return explorer.render(explorer.newest, {"checkpoints": ["sg3"], "seed": 0} | request)["images"][0]

    base = pixels(draw()["image"])
    moved = pixels(draw(translate=[0.25, 0.0], rotate=30)["image"])
    assert np.abs(moved - base).mean() > 1
    assert np.array_equal(pixels(draw()["image"]), base)  # the next request without a transform
    assert draw(layer=1)["layer"]["index"] == 1
