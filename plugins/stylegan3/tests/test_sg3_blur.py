"""The ``blur`` augmentation plugin: StyleGAN3-R's fading blur of D's inputs (Karras et al. 2021,
configuration R; NVlabs stylegan3 ``training/loss.py`` ``run_D`` and ``train.py``) against explicit
loops over the closed form f(x) = 2^(-(x / sigma)^2), its sigma schedule, its composition with the
``ada`` pipeline and controller in real training runs, exact resume, and R1's double backward."""
from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch

from lightning_stylegan.augmentations.ada import AdaptiveAugment
from lightning_stylegan.data.datamodule import ImageDataModule
from lightning_stylegan.errors import ConfigError
from lightning_stylegan.training.ada import AdaController
from lightning_stylegan.training.module import StyleGAN2
from lightning_stylegan.training.options import DiscriminatorOptions, GeneratorOptions
from lightning_stylegan.training.regularizers import PathLength, R1
from lightning_stylegan.training.checkpoints import KimgCheckpoint
from lightning_stylegan_stylegan3.blur import Blur, blur, blur_filter, blur_sigma

BATCH = 4


def closed_form_taps(sigma: float) -> list[float]:
    """2^(-(x/sigma)^2) for the integers |x| <= floor(3 sigma), normalized to sum 1, in float64."""
    radius = math.floor(3 * sigma)
    taps = [2.0 ** (-(x / sigma) ** 2) for x in range(-radius, radius + 1)]
    return [t / sum(taps) for t in taps]


def blur_by_loop(image: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """out[n, c, y, x] = sum_ij f_i f_j image[n, c, y + i, x + j], zero outside the image."""
    n, c, h, w = image.shape
    radius = len(taps) // 2
    out = torch.zeros_like(image, dtype=torch.float64)
    for y in range(h):
        for x in range(w):
            total = torch.zeros(n, c, dtype=torch.float64)
            for i in range(-radius, radius + 1):
                for j in range(-radius, radius + 1):
                    if 0 <= y + i < h and 0 <= x + j < w:
                        total += taps[i + radius] * taps[j + radius] * image[:, :, y + i, x + j].double()
            out[:, :, y, x] = total
    return out


@pytest.mark.parametrize("sigma", [10.0, 2.5, 1.0, 0.5, 0.34])
def test_the_taps_are_the_closed_form(sigma):
    taps = blur_filter(sigma)
    assert taps.dtype == torch.float32 and taps.numel() == 2 * math.floor(3 * sigma) + 1
    torch.testing.assert_close(taps.double(), torch.tensor(closed_form_taps(sigma), dtype=torch.float64),
                               rtol=1e-6, atol=1e-9)
    assert blur_filter(0.33) is None and blur_filter(0.0) is None  # floor(3 sigma) = 0: no blur


def test_sigma_is_the_half_width_at_half_maximum():
    taps = blur_filter(4.0)  # 25 taps, the center at index 12
    assert float(taps[12 + 4] / taps[12]) == pytest.approx(0.5, rel=1e-6)


@pytest.mark.parametrize("sigma, size", [(1.2, (2, 3, 7, 9)), (3.0, (1, 2, 8, 8)), (10.0, (1, 1, 6, 5))])
def test_the_blur_is_the_separable_filter_with_zero_padding(sigma, size):
    """Including filters wider than the image (sigma 3 and 10: 19 and 61 taps)."""
    image = torch.randn(*size, generator=torch.Generator().manual_seed(0))
    expected = blur_by_loop(image, closed_form_taps(sigma))
    out = blur(image, blur_filter(sigma))
    assert out.shape == image.shape and out.dtype == image.dtype
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-6)


def test_the_sigma_schedule_fades_linearly_and_stays_at_zero():
    """sigma(n) = max(1 - n / (fade_kimg 1000), 0) sigma_init, 0 with fade_kimg 0 (NVlabs' loss.py)."""
    augment = Blur(sigma=10, fade_kimg=200)
    for images_seen, sigma in [(0, 10.0), (50_000, 7.5), (100_000, 5.0), (199_000, 0.05),
                               (200_000, 0.0), (10_000_000, 0.0)]:
        augment.set_progress(images_seen, transfer=False)
        assert augment.sigma == pytest.approx(sigma, abs=1e-12), images_seen
        assert blur_sigma(images_seen, 10, 200) == pytest.approx(sigma, abs=1e-12)
    assert blur_sigma(0, 10, 0) == 0.0  # NVlabs: no blur without a fade
    augment.set_progress(0, transfer=True)
    assert augment.sigma == 0.0  # NVlabs' --resume sets blur_init_sigma to 0


def test_no_blur_is_the_identity_and_a_blur_is_the_blur():
    image = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    augment = Blur(sigma=10, fade_kimg=200)
    for images_seen in (200_000, 199_000):  # sigma 0, and 0.05: floor(3 sigma) = 0
        augment.set_progress(images_seen, transfer=False)
        assert torch.equal(augment(image), image)
    augment.set_progress(100_000, transfer=False)
    torch.testing.assert_close(augment(image).double(), blur_by_loop(image, closed_form_taps(5.0)),
                               rtol=1e-5, atol=1e-6)
    assert torch.equal(Blur(sigma=0)(image), image) and torch.equal(Blur(fade_kimg=0)(image), image)


def test_the_inner_augmentation_runs_after_the_blur_with_blurs_p():
    """One p: the buffer ``augment.p`` (the key core saves and the controller tunes) drives the
    inner ``ada`` pipeline, whose own copy is not saved; blur then ada, as NVlabs' run_D."""
    augment = Blur(sigma=2, fade_kimg=1, augment="ada", augment_options={"preset": "bgc"})
    assert augment.adaptive and not Blur().adaptive  # the inner plugin's: ada yes, none no
    assert "p" in augment.state_dict() and "inner.p" not in augment.state_dict()
    image = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    assert torch.equal(augment(image), blur(image, blur_filter(2.0)))  # p = 0: the blur alone
    augment.p.fill_(1.0)
    reference = AdaptiveAugment(preset="bgc", p=1.0)
    torch.manual_seed(3)
    out = augment(image)
    torch.manual_seed(3)
    torch.testing.assert_close(out, reference(blur(image, blur_filter(2.0))), rtol=0, atol=0)
    assert not torch.equal(out, blur(image, blur_filter(2.0)))


def test_double_backward_through_the_blur_and_the_inner_pipeline():
    """R1 differentiates D's output in the un-augmented reals with create_graph: gradgradcheck the
    blur in float64, and take R1's second-order gradient through blur + ada (p = 1)."""
    image = torch.randn(1, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    taps = blur_filter(1.0).double()
    assert torch.autograd.gradcheck(lambda x: blur(x, taps), (image,))
    assert torch.autograd.gradgradcheck(lambda x: blur(x, taps), (image,))
    augment = Blur(sigma=1.5, fade_kimg=1, augment="ada", p=1.0)
    weight = torch.randn(8, 3, 3, 3, requires_grad=True)
    reals = torch.rand(2, 3, 8, 8).requires_grad_(True)
    logits = torch.nn.functional.conv2d(augment(reals), weight).square().sum()
    (grad,) = torch.autograd.grad(logits, reals, create_graph=True)
    (second,) = torch.autograd.grad(grad.square().sum(), weight)
    assert torch.isfinite(second).all() and second.abs().sum() > 0


def test_options_are_checked_with_the_culprit_named():
    with pytest.raises(ConfigError, match=r"set p in model.augment_options, not in its augment_options"):
        tiny_model(augment="blur", augment_options={"augment": "ada", "augment_options": {"p": 0.2}})
    with pytest.raises(ConfigError, match=r"augment_options.augment_options: the augmentation plugin 'ada' "
                                          r"after 'blur' has no option 'prest'.*did you mean 'preset'"):
        tiny_model(augment="blur", augment_options={"augment": "ada", "augment_options": {"prest": "bgc"}})
    with pytest.raises(ConfigError, match=r"blur: augment .*Unknown augmentation plugin 'adaa'.*'ada'"):
        tiny_model(augment="blur", augment_options={"augment": "adaa"})
    with pytest.raises(ConfigError, match=r"cannot be 'blur' itself"):
        tiny_model(augment="blur", augment_options={"augment": "blur"})
    for bad in [{"sigma": -1.0}, {"fade_kimg": -5.0}, {"p": 1.5}]:
        with pytest.raises(ConfigError, match=r"model.augment_options .*'blur'"):
            tiny_model(augment="blur", augment_options=bad)
    fixed = tiny_model(augment="blur", augment_options={"augment": "ada", "p": 0.3})
    assert fixed.fixed_augment_p and float(fixed.augment.p) == pytest.approx(0.3)


# ------------------------------------------------------------------ real training runs
def tiny_model(**kwargs) -> StyleGAN2:
    torch.manual_seed(0)  # the same initial networks in every run
    options = dict(resolution=8, channels=1, g_lr=0.002, d_lr=0.002,
                   generator=GeneratorOptions(z_dim=16, w_dim=16, mapping_layers=2, channel_base=64, channel_max=16),
                   discriminator=DiscriminatorOptions(channel_base=64, channel_max=16, mbstd_group_size=2,
                                                      mapping_layers=2))
    return StyleGAN2(**(options | kwargs))


def steps(n: int) -> float:
    return n * BATCH / 1000  # total_kimg (or fade_kimg) of n steps


# sigma 2 fading over the 8 steps of the runs: the blur changes at every step (radius 6 down to 0).
BLUR_ADA = {"sigma": 2.0, "fade_kimg": steps(8), "augment": "ada", "augment_options": {"preset": "bgc"}}


def run(root, total_steps, ckpt_path=None, record=None, **model_kwargs):
    model = tiny_model(total_kimg=steps(total_steps), augment="blur", **({"augment_options": BLUR_ADA} | model_kwargs))
    if record is not None:
        set_progress = model.augment.set_progress
        model.augment.set_progress = lambda n, transfer: (record.append((n, transfer)), set_progress(n, transfer))
    controller = AdaController(target=0.0, interval=2, kimg=0.05)  # target 0: p rises on any positive sign
    callbacks = [R1(gamma=1.0, interval=2), PathLength(interval=3), controller,
                 KimgCheckpoint(dirpath=str(root), every_kimg=1000)]
    trainer = pl.Trainer(callbacks=callbacks, accelerator="cpu", devices=1, max_epochs=-1, logger=False,
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=True,
                         num_sanity_val_steps=0, log_every_n_steps=1, default_root_dir=root,
                         use_distributed_sampler=False)
    data = ImageDataModule(resolution=8, channels=1, batch_size=BATCH, max_images=64, val_images=8, seed=0)
    trainer.fit(model, data, ckpt_path=ckpt_path)
    return model


def test_blur_with_ada_trains_and_the_controller_tunes_p(tmp_path):
    """The module gives the progress at every step from its image counter; ada's controller moves
    ``augment.p``, which the inner pipeline uses; R1 (every 2nd D step) trains through both."""
    calls = []
    model = run(tmp_path, 8, record=calls)
    assert calls == [(BATCH * step, False) for step in range(8)]
    assert model.ada_controller() is not None and 0 < float(model.augment.p) <= 1
    assert float(model.augment.inner.p) == float(model.augment.p)  # copied at the last call
    assert model.augment.sigma == pytest.approx(2.0 * (1 - 7 / 8))  # at the last step's start
    assert model.counters["d_reg_steps"] == 4
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert torch.equal(saved["state_dict"]["augment.p"], model.augment.p)
    assert "augment.inner.p" not in saved["state_dict"]
    assert saved["plugins"]["augmentation"]["name"] == "blur"
    assert saved["hyper_parameters"]["augment_options"] == BLUR_ADA


def test_a_resumed_run_blurs_and_augments_as_an_uninterrupted_one(tmp_path):
    """8 steps straight equal 4 + a resume of 4, every weight and p to the last bit: the blur's
    sigma comes from the checkpointed counter (a blur restarting at sigma_init would differ)."""
    straight = run(tmp_path / "a", 8)
    run(tmp_path / "b", 4)
    calls = []
    resumed = run(tmp_path / "b", 8, ckpt_path=str(tmp_path / "b" / "last.ckpt"), record=calls)
    assert calls == [(BATCH * step, False) for step in range(4, 8)]
    assert float(resumed.augment.p) == float(straight.augment.p) > 0
    for a, b in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert a[0] == b[0] and torch.equal(a[1], b[1]), a[0]
    # A run started from these weights (model.init_from, NVlabs' --resume) does not blur.
    calls = []
    transfer = run(tmp_path / "c", 2, record=calls, init_from=str(tmp_path / "a" / "last.ckpt"))
    assert calls == [(0, True), (BATCH, True)] and transfer.augment.sigma == 0.0
