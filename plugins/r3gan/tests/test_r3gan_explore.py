"""The core's explorer with R3GAN's generator, which has no W space: the page is told which controls
do not apply and why, the image of a seed is drawn as ``G(z, c)``, and a request that uses a
W-only control is an error naming it."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("starlette")
from lightning_stylegan.explore.render import ExploreInputError, network  # noqa: E402
from lightning_stylegan.explore.server import Explorer  # noqa: E402
from lightning_stylegan.networks import Generator  # noqa: E402


def test_a_generator_without_w_says_what_does_not_apply_and_draws_its_seeds():
    torch.manual_seed(0)
    G = Generator(img_resolution=16, img_channels=3, topology="r3gan", z_dim=16, c_dim=3)
    explorer = Explorer([network("r3gan", G)])
    unavailable = explorer.describe()["networks"][0]["unavailable"]
    assert {"psi", "mix", "layer", "noise", "projected"} <= set(unavailable)
    assert "has no W space" in unavailable["mix"]

    def render(**request):
        explorer.newest += 1
        return explorer.render(explorer.newest, {"checkpoints": ["r3gan"], "class": 1} | request)

    assert set(render(seed=0)["images"][0]) == {"name", "image"}
    assert render(seed=0) != render(seed=1)
    assert render(walk={"seeds": [0, 1], "t": 0.5, "space": "z"})["images"][0]["image"]
    for control, value in (("psi", 0.5), ("mix", {"seed": 1, "layers": [0, 1]}), ("layer", 0)):
        with pytest.raises(ExploreInputError, match=f"{control} does not apply to r3gan: .*no W space"):
            render(seed=0, **{control: value})
