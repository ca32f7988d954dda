"""Progressive growing (002_0a18e98dc55024d1.txt Appendix B, configs A-D; PGGAN): the schedule
against hand-computed values, exact fade-in in G and D, and a run resumed mid fade-in."""
from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_stylegan import registry
from lightning_stylegan.data.datamodule import ImageDataModule
from lightning_stylegan.networks import Generator, build_discriminator
from lightning_stylegan.nn.filters import downsample2d, setup_filter, upsample2d
from lightning_stylegan.training.module import StyleGAN2
from lightning_stylegan.training.options import DiscriminatorOptions, GeneratorOptions
from lightning_stylegan.training.regularizers import PathLength, R1
from lightning_stylegan.training.checkpoints import KimgCheckpoint
from lightning_stylegan.training.snapshots import SampleGrid

TOPOLOGIES = ["original", "skip", "residual"]
TINY = dict(channel_base=128, channel_max=16)


def schedule(final=256, **options):
    return registry.load("growth", "progressive")(final, **options)


@pytest.mark.parametrize("kimg, resolution, alpha", [
    (0, 8, 1.0), (599.9, 8, 1.0),  # 600 kimg at 8x8
    (600, 16, 0.0), (900, 16, 0.5), (1200, 16, 1.0), (1799, 16, 1.0),  # fade in 16, then train it
    (1800, 32, 0.0), (2100, 32, 0.5),
    (5400, 256, 0.0), (5850, 256, 0.75), (6000, 256, 1.0), (10 ** 6, 256, 1.0),
])
def test_the_default_schedule_is_600_kimg_per_resolution_and_600_kimg_fade_in(kimg, resolution, alpha):
    state = schedule().state(kimg)
    assert (state.resolution, state.alpha) == (resolution, pytest.approx(alpha))


def test_learning_rate_and_batch_size_per_resolution():
    growth = schedule(64, start_resolution=16, phase_kimg=10, fade_kimg=10,
                      lr_scale={"32": 1.5, 64: 3}, batch_size={16: 32, 32: 16})
    assert [(s.resolution, s.lr_scale, s.batch_size) for s in map(growth.state, [0, 15, 40, 1000])] == [
        (16, 1.0, 32), (32, 1.5, 16), (64, 3.0, None), (64, 3.0, None)]
    assert registry.load("growth", "none")(64).state(0).resolution == 64


@pytest.mark.parametrize("bad, message", [
    (dict(start_resolution=12), "power of two between 8"),
    (dict(fade_kimg=-1), ">= 0"),
    (dict(batch_size={48: 4}), "batch_size has resolution 48"),
])
def test_bad_schedules_are_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        schedule(64, **bad)


@pytest.mark.parametrize("normalization", ["demod", "adain"])
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_generator_fade_in_blends_exactly(topology, normalization):
    """alpha 0 is the half-resolution image up-sampled; alpha 1 the new block; in between the lerp;
    at the final resolution the progressive network equals the plain one with the same weights."""
    torch.manual_seed(0)
    G = Generator(32, 3, z_dim=16, w_dim=16, mapping_layers=1, topology=topology,
                  normalization=normalization, progressive=True, **TINY).eval()
    ws = G.mapping(torch.randn(3, 16))
    f = setup_filter()
    low = G.synthesis(ws, noise_mode="const", resolution=8)
    new = G.synthesis(ws, noise_mode="const", resolution=16)
    assert low.shape == (3, 3, 8, 8) and new.shape == (3, 3, 16, 16)
    assert torch.allclose(G.synthesis(ws, noise_mode="const", resolution=16, alpha=0.0), upsample2d(low, f))
    assert torch.allclose(G.synthesis(ws, noise_mode="const", resolution=16, alpha=0.3),
                          0.7 * upsample2d(low, f) + 0.3 * new, atol=1e-6)
    plain = Generator(32, 3, z_dim=16, w_dim=16, mapping_layers=1, topology=topology,
                      normalization=normalization, **TINY).eval()
    missing, unexpected = plain.load_state_dict(G.state_dict(), strict=False)
    assert not missing and all("torgb" in key for key in unexpected)
    assert torch.equal(plain.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="const", resolution=32))


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_discriminator_fade_in_blends_exactly(topology):
    """alpha 0 scores the image exactly as the half-resolution stage scores it down-sampled; at the
    final resolution the progressive D equals the plain one with the same weights."""
    torch.manual_seed(0)
    D = build_discriminator(topology, img_resolution=32, img_channels=3, mbstd_group_size=2,
                            progressive=True, **TINY)
    img = torch.randn(4, 3, 16, 16)
    low = D(downsample2d(img, setup_filter()))
    assert torch.equal(D(img, alpha=0.0), low)
    assert not torch.allclose(D(img, alpha=0.5), low)
    plain = build_discriminator(topology, img_resolution=32, img_channels=3, mbstd_group_size=2, **TINY)
    missing, unexpected = plain.load_state_dict(D.state_dict(), strict=False)
    assert not missing and all("fromrgb" in key for key in unexpected)
    full = torch.randn(4, 3, 32, 32)
    assert torch.equal(plain(full), D(full))
    with pytest.raises(ValueError, match="R = 32, got"):
        plain(img)  # a plain D has no lower stages


def tiny_progressive(total_images: int) -> StyleGAN2:
    torch.manual_seed(0)
    return StyleGAN2(
        resolution=16, channels=1, total_kimg=total_images / 1000, growth="progressive",
        growth_options={"phase_kimg": 0.008, "fade_kimg": 0.016},
        generator=GeneratorOptions(normalization="pin", topology="original", z_dim=16, w_dim=16,
                                   mapping_layers=2, channel_base=64, channel_max=16),
        discriminator=DiscriminatorOptions(topology="original", channel_base=64, channel_max=16,
                                           mbstd_group_size=2, mapping_layers=2))


def fit(model, root, ckpt_path=None, logger=False):
    trainer = pl.Trainer(accelerator="cpu", max_epochs=-1, logger=logger, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, log_every_n_steps=1,
                         default_root_dir=root, use_distributed_sampler=False,
                         callbacks=[R1(1.0, 2), PathLength(interval=2), KimgCheckpoint(str(root), every_kimg=1),
                                    SampleGrid(every_kimg=0.004, rows=1, columns=2)])
    trainer.fit(model, ImageDataModule(resolution=16, channels=1, batch_size=4, max_images=64, val_images=4),
                ckpt_path=ckpt_path)


def test_resume_mid_fade_in_continues_exactly(tmp_path):
    straight = tiny_progressive(28)
    fit(straight, tmp_path / "a")
    interrupted = tiny_progressive(12)
    fit(interrupted, tmp_path / "b")
    assert (interrupted.stage.resolution, interrupted.stage.alpha) == (16, 0.25)  # (12 - 8) / 16
    resumed = tiny_progressive(28)
    fit(resumed, tmp_path / "b", ckpt_path=str(tmp_path / "b" / "last.ckpt"))
    assert resumed.counters == straight.counters
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_progress_scalars_and_pin_histograms_reach_tensorboard(tmp_path):
    model = tiny_progressive(16)
    fit(model, tmp_path, logger=TensorBoardLogger(tmp_path, name="tb"))
    (events,) = (tmp_path / "tb").rglob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"histograms": 0, "images": 0})
    accumulator.Reload()
    resolution = {e.step: e.value for e in accumulator.Scalars("Progress/resolution")}
    alpha = {e.step: e.value for e in accumulator.Scalars("Progress/alpha")}
    assert resolution[4] == 8 and resolution[12] == 16 and alpha[12] == pytest.approx(0.25)
    assert {"PIN/rho_4", "PIN/rho_8", "PIN/rho_16"} <= set(accumulator.Tags()["histograms"])
    # grids made at 8x8 (step 4) are up-sampled to the final 16x16: 1 row x 2 columns
    grids = {e.step: (e.width, e.height) for e in accumulator.Images("Samples/fakes")}
    assert grids[0] == grids[4] == grids[16] == (32, 16)


@pytest.mark.parametrize("resolution, alpha, in_use", [(8, 1.0, 4), (16, 0.0, 4), (16, 0.5, 6), (16, 1.0, 6),
                                                       (32, 0.25, 8), (32, 1.0, 8)])
def test_style_mixing_crossover_is_drawn_among_the_styles_in_use(resolution, alpha, in_use):
    """NVlabs' StyleGAN (TF) G_style / StyleGAN2 G_main: cur_layers = num_layers - 2 int(lod), the
    crossover uniform in [1, cur_layers); lod = log2(R / resolution) + 1 - alpha while fading in."""
    from lightning_stylegan.growth.base import GrowthState

    torch.manual_seed(0)
    model = StyleGAN2(resolution=32, channels=1, growth="progressive", style_mixing_prob=1.0,
                      generator=GeneratorOptions(topology="original", normalization="adain", z_dim=8, w_dim=8,
                                                 mapping_layers=1, channel_base=128, channel_max=4))
    assert model.G.num_ws == 8
    cutoffs = set()
    for _ in range(60):
        _, ws = model._generate(torch.randn(2, 8), None, GrowthState(resolution, alpha))
        differs = (ws[0] != ws[0, :1]).any(dim=1)  # the styles taken from the second latent
        cutoffs.add(int(differs.nonzero()[0]) if differs.any() else model.G.num_ws)
    assert cutoffs == set(range(1, in_use))


def test_style_mixing_with_one_style_in_use_does_not_mix():
    G = Generator(8, 1, z_dim=4, w_dim=4, mapping_layers=1, channel_base=32, channel_max=4)
    ws = G.mapping(torch.randn(3, 4))
    assert torch.equal(G.mix_styles(ws, None, 1.0, num_layers=1), ws)


@pytest.mark.parametrize("reset, adam_steps", [(True, 2), (False, 6)])
def test_reset_optimizer_clears_adams_state_as_new_layers_come_in(tmp_path, reset, adam_steps):
    """NVlabs' reset_opt_for_new_lod: 2 steps at 8x8 (lod 1), 2 fading 16x16 in (lod 1.0, 0.5), then
    16x16 (lod 0): floor(lod) changes at step 3 and ceil(lod) at step 4, so the last reset is at step 4
    and Adam has counted the 2 steps since; without the option all 6."""
    torch.manual_seed(0)
    model = StyleGAN2(resolution=16, channels=1, growth="progressive", total_kimg=0.024,
                      growth_options={"phase_kimg": 0.008, "fade_kimg": 0.008, "reset_optimizer": reset},
                      generator=GeneratorOptions(z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=8),
                      discriminator=DiscriminatorOptions(channel_base=64, channel_max=8, mbstd_group_size=2))
    data = ImageDataModule(resolution=16, channels=1, batch_size=4, max_images=32, val_images=0)
    pl.Trainer(accelerator="cpu", devices=1, max_epochs=-1, logger=False, enable_progress_bar=False,
               enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
               use_distributed_sampler=False, default_root_dir=tmp_path,
               callbacks=[R1(gamma=0.0), PathLength(weight=0)]).fit(model, data)
    assert model.counters["g_steps"] == 6, model.counters
    g_opt, d_opt = model.trainer.optimizers
    assert int(g_opt.state[model.G.mapping.fc0.weight]["step"]) == adam_steps
    assert int(d_opt.state[model.D.b8.conv0.weight]["step"]) == adam_steps  # b8: used at every stage


def test_progressive_resets_adam_by_default_as_the_tf_training_loops():
    """NVlabs' TF StyleGAN and StyleGAN2 ``reset_opt_for_new_lod`` is True."""
    assert schedule(64).reset_optimizer and not schedule(64, reset_optimizer=False).reset_optimizer
    assert not registry.load("growth", "none")(64).reset_optimizer
