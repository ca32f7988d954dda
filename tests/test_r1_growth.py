"""R1 while the networks grow, against NVlabs' TF construction (``training/training_loop.py``
``process_reals``, ``training/loss.py`` ``D_logistic_simplegp`` / ``D_logistic_r1``,
``networks_stylegan.py`` ``D_basic``): the reals of stage r are faded, up-scaled with nearest
neighbours to the final R, and D box-averages that R-pixel input back down at every level it reads
it; R1 is ``||grad||^2`` with respect to the R-pixel reals (Mescheder et al. 2018, R1;
002_0a18e98dc55024d1.txt Appendix B, configs A-D).

Our D reads the r-pixel reals; ``gradient_penalty(..., upscale=R / r)`` must equal TF's penalty. The
two computations differ only in the order of float64 sums, hence the 1e-10 relative tolerance.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lightning_stylegan.networks import build_discriminator
from lightning_stylegan.training.penalties import gradient_penalty
from lightning_stylegan.training.module import StyleGAN2
from lightning_stylegan.training.options import DiscriminatorOptions, GeneratorOptions
from lightning_stylegan.training.regularizers import R1

R = 32
SMALL = dict(channel_base=256, channel_max=16)
# (stage resolution, alpha): a stable stage at lod 2 and the 16-px fade at lod 1.7
STAGES = [(8, 1.0), (16, 0.3)]
BOX_TOPOLOGIES = ["stylegan1", "revised"]  # TF's D_basic and D_stylegan: box-down fades
ALL_TOPOLOGIES = BOX_TOPOLOGIES + ["original", "skip", "residual"]


def nearest_up(x: torch.Tensor, factor: int) -> torch.Tensor:
    """TF's ``UpscaleLOD``: each pixel repeated factor x factor times."""
    return x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


def box_down(x: torch.Tensor, factor: int) -> torch.Tensor:
    """TF's ``downscale2d``: the mean of each factor x factor block."""
    return F.avg_pool2d(x, factor) if factor > 1 else x


def tf_discriminator(D, images: torch.Tensor, resolution: int, alpha: float, c=None) -> torch.Tensor:
    """D as TF's recursive ``D_basic`` runs it on R-pixel input at stage ``resolution``: the stage's
    block reads ``downscale2d(images, R / r)``, the fading lower path ``downscale2d(images, 2 R / r)``."""
    factor = images.shape[-1] // resolution
    x, _ = getattr(D, f"b{resolution}")(None, box_down(images, factor))
    for res in [res for res in D.block_resolutions if res < resolution]:
        block = getattr(D, f"b{res}")
        if alpha < 1 and res == resolution // 2:
            x = torch.lerp(block.fromrgb(box_down(images, 2 * factor)), x, alpha)
        x, _ = block(x, None)
    return D.head(x, None, c)


def tf_r1(logits_of, reals_full: torch.Tensor) -> torch.Tensor:
    reals_full = reals_full.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(logits_of(reals_full).sum(), reals_full)
    return grad.square().sum(dim=[1, 2, 3])


def discriminator(topology: str, c_dim: int = 0):
    torch.manual_seed(0)
    return build_discriminator(topology, img_resolution=R, img_channels=1, c_dim=c_dim, progressive=True,
                               **SMALL).double()


@pytest.mark.parametrize("resolution, alpha", STAGES)
@pytest.mark.parametrize("topology", BOX_TOPOLOGIES)
def test_r1_equals_tf_with_the_reals_upscaled_and_d_box_averaging_them(topology, resolution, alpha):
    c_dim = 3 if topology == "stylegan1" else 0  # v1's label switch too
    D = discriminator(topology, c_dim)
    torch.manual_seed(1)
    x = torch.randn(4, 1, resolution, resolution, dtype=torch.float64)
    c = F.one_hot(torch.tensor([0, 2, 1, 2]), 3).double() if c_dim else None
    factor = R // resolution
    expected = tf_r1(lambda full: tf_discriminator(D, full, resolution, alpha, c), nearest_up(x, factor))

    x_in = x.clone().requires_grad_(True)
    ours = gradient_penalty(D(x_in, c, alpha=alpha), x_in, upscale=factor)
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=0)
    # Without the upscale the penalty is (R / r)^2 = 16x TF's at 8 px and 4x at 16 px (the old bug).
    x_in = x.clone().requires_grad_(True)
    torch.testing.assert_close(gradient_penalty(D(x_in, c, alpha=alpha), x_in), expected * factor ** 2,
                               rtol=1e-10, atol=0)


@pytest.mark.parametrize("resolution, alpha", STAGES + [(32, 0.5)])
@pytest.mark.parametrize("topology", ALL_TOPOLOGIES)
def test_every_progressive_topology_takes_r1_in_the_full_resolution_space(topology, resolution, alpha):
    """For D topologies that TF never grew (FIR fades), the same space: the stage's reals
    nearest-up-scaled to R, D reading their box average. At R itself nothing changes."""
    D = discriminator(topology)
    torch.manual_seed(2)
    x = torch.randn(4, 1, resolution, resolution, dtype=torch.float64)
    factor = R // resolution
    expected = tf_r1(lambda full: D(box_down(full, factor), alpha=alpha), nearest_up(x, factor))
    x_in = x.clone().requires_grad_(True)
    torch.testing.assert_close(gradient_penalty(D(x_in, alpha=alpha), x_in, upscale=factor), expected,
                               rtol=1e-10, atol=0)


def tf_process_reals(reals: torch.Tensor, resolution: int, alpha: float) -> torch.Tensor:
    """TF's reals at a stage: the dataset's level of detail (2x2 box averages of the full image,
    repeated), ``FadeLOD`` (lerp toward the 2x box-down, nearest-up version by lod - floor(lod)
    = 1 - alpha), ``UpscaleLOD`` (nearest to R)."""
    level = box_down(reals, reals.shape[-1] // resolution)
    coarse = nearest_up(box_down(level, 2), 2)
    faded = torch.lerp(level, coarse, 1 - alpha)
    return nearest_up(faded, reals.shape[-1] // resolution)


@pytest.mark.parametrize("kimg, resolution, alpha", [(0.5, 8, 1.0), (1.3, 16, 0.3), (3.5, 32, 0.5)])
@pytest.mark.parametrize("topology", BOX_TOPOLOGIES)
def test_the_training_steps_r1_loss_is_tfs_from_the_full_resolution_reals(topology, kimg, resolution, alpha):
    """The module's own path (``_reals_at``, D, ``_penalties_loss``) from a batch of R-pixel reals, against
    TF's pipeline end to end: gamma / 2 x the mean of TF's penalty."""
    torch.manual_seed(0)
    normalization = "adain" if topology == "stylegan1" else "demod"
    module = StyleGAN2(resolution=R, channels=1,
                       generator=GeneratorOptions(topology=topology, normalization=normalization, z_dim=16,
                                                  w_dim=16, mapping_layers=1, **SMALL),
                       discriminator=DiscriminatorOptions(topology=topology, **SMALL), growth="progressive",
                       growth_options=dict(start_resolution=8, phase_kimg=1, fade_kimg=1)).double()
    stage = module.growth.state(kimg)
    assert (stage.resolution, stage.alpha) == (resolution, pytest.approx(alpha))
    torch.manual_seed(3)
    reals = torch.rand(4, 1, R, R, dtype=torch.float64) * 2 - 1
    expected = tf_r1(lambda full: tf_discriminator(module.D, full, resolution, stage.alpha),
                     tf_process_reals(reals, resolution, stage.alpha))

    real_in = module._reals_at(reals, stage).requires_grad_(True)
    loss = module._penalties_loss([(R1(gamma=2.0), module.D(real_in, alpha=stage.alpha), real_in)], stage)
    torch.testing.assert_close(loss, expected.mean(), rtol=1e-9, atol=0)
    torch.testing.assert_close(module._stats["Loss/r1_penalty"][0], expected.mean().float())
