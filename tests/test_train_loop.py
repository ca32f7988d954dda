"""The training module in a real Trainer: exact counters, the Adam adjustment, resume continuity,
checkpoint contents, PIN clipping and the non-finite guard."""
from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from lightning_stylegan.data.datamodule import ImageDataModule
from lightning_stylegan.errors import ConfigError
from lightning_stylegan.training.module import StyleGAN2
from lightning_stylegan.training.options import DiscriminatorOptions, GeneratorOptions
from lightning_stylegan.training.regularizers import PathLength, R1
from lightning_stylegan.training.checkpoints import KimgCheckpoint

BATCH = 4


def tiny_model(normalization="demod", **kwargs) -> StyleGAN2:
    torch.manual_seed(0)  # the same initial networks in every run
    options = dict(resolution=8, channels=1, g_lr=0.002, d_lr=0.002,
                   generator=GeneratorOptions(normalization=normalization, z_dim=16, w_dim=16, mapping_layers=2,
                                              channel_base=64, channel_max=16),
                   discriminator=DiscriminatorOptions(channel_base=64, channel_max=16, mbstd_group_size=2,
                                                      mapping_layers=2))
    return StyleGAN2(**(options | kwargs))


def tiny_data(seed=0) -> ImageDataModule:
    return ImageDataModule(resolution=8, channels=1, batch_size=BATCH, max_images=64, val_images=8, seed=seed)


def trainer(tmp_path, *callbacks, **kwargs) -> pl.Trainer:
    defaults = dict(accelerator="cpu", devices=1, max_epochs=-1, logger=False, enable_progress_bar=False,
                    enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
                    log_every_n_steps=1, default_root_dir=tmp_path, use_distributed_sampler=False)
    return pl.Trainer(callbacks=list(callbacks), **(defaults | kwargs))


def steps(n: int) -> float:
    return n * BATCH / 1000  # total_kimg for n steps


def test_counters_and_lazy_intervals_are_exact(tmp_path):
    model = tiny_model(total_kimg=steps(10))
    fit = trainer(tmp_path, R1(gamma=1.0, interval=4), PathLength(interval=3))
    fit.fit(model, tiny_data())
    assert model.counters == {"images_seen": 40, "g_steps": 10, "d_steps": 10,
                              "g_reg_steps": 4,  # G steps 0, 3, 6, 9
                              "d_reg_steps": 3}  # D steps 0, 4, 8
    # Lightning's global_step counts optimizer steps: 10 G + 10 D main, 4 + 3 lazy passes.
    assert fit.global_step == 27


def test_non_lazy_regularizers_join_the_main_pass(tmp_path):
    model = tiny_model(total_kimg=steps(5))
    fit = trainer(tmp_path, R1(gamma=1.0, interval=1), PathLength(interval=1))
    fit.fit(model, tiny_data())
    assert model.counters["g_reg_steps"] == model.counters["d_reg_steps"] == 0
    assert fit.global_step == 10
    for optimizer, lr in zip(fit.optimizers, [0.002, 0.002]):
        assert optimizer.param_groups[0]["lr"] == lr and optimizer.param_groups[0]["betas"] == (0.0, 0.99)


def test_adam_is_adjusted_for_lazy_regularization(tmp_path):
    model = tiny_model(total_kimg=steps(1), betas=(0.5, 0.99))
    fit = trainer(tmp_path, R1(gamma=1.0, interval=16), PathLength(interval=8))
    fit.fit(model, tiny_data())
    g, d = (opt.param_groups[0] for opt in fit.optimizers)
    assert g["lr"] == pytest.approx(0.002 * 8 / 9) and d["lr"] == pytest.approx(0.002 * 16 / 17)
    assert g["betas"] == pytest.approx((0.5 ** (8 / 9), 0.99 ** (8 / 9)))
    assert d["betas"] == pytest.approx((0.5 ** (16 / 17), 0.99 ** (16 / 17)))


def test_ema_generator_trails_the_generator(tmp_path):
    model = tiny_model(total_kimg=steps(6), ema_kimg=0.01, ema_rampup=None)
    before = [p.clone() for p in model.G_ema.parameters()]
    trainer(tmp_path).fit(model, tiny_data())
    moved = [not torch.equal(a, b) for a, b in zip(before, model.G_ema.parameters())]
    assert any(moved)
    assert not torch.equal(model.G.synthesis.b8.conv1.weight, model.G_ema.synthesis.b8.conv1.weight)
    assert torch.equal(model.G.mapping.w_avg, model.G_ema.mapping.w_avg)  # buffers are copied


def test_pin_rho_stays_in_the_unit_interval(tmp_path):
    model = tiny_model("pin", total_kimg=steps(4), g_lr=5.0)  # a huge lr pushes rho out of [0, 1]
    trainer(tmp_path).fit(model, tiny_data())
    rhos = torch.cat([m.rho for m in model.G.modules() if hasattr(m, "rho")])
    assert rhos.min() >= 0 and rhos.max() <= 1 and ((rhos == 0) | (rhos == 1)).any()


def run(tmp_path, total_steps, ckpt_path=None, **callback_kwargs):
    model = tiny_model(total_kimg=steps(total_steps))
    callbacks = [R1(gamma=1.0, interval=2), PathLength(interval=3), KimgCheckpoint(dirpath=str(tmp_path), every_kimg=1000)]
    trainer(tmp_path, *callbacks, enable_checkpointing=True).fit(model, tiny_data(), ckpt_path=ckpt_path)
    return model, callbacks[1]


def test_resume_continues_exactly(tmp_path):
    straight, straight_pl = run(tmp_path / "a", 7)
    run(tmp_path / "b", 3)
    resumed, resumed_pl = run(tmp_path / "b", 7, ckpt_path=str(tmp_path / "b" / "last.ckpt"))
    assert resumed.counters == straight.counters
    assert float(resumed_pl.pl_mean) == float(straight_pl.pl_mean) != 0
    for a, b in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert a[0] == b[0] and torch.equal(a[1], b[1]), a[0]


def test_checkpoints_load_without_executing_code_and_record_plugins(tmp_path):
    run(tmp_path, 2)
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert checkpoint["counters"]["images_seen"] == 2 * BATCH
    assert checkpoint["plugins"]["normalization"] == {"name": "demod", "distribution": "lightning-stylegan",
                                                      "version": checkpoint["plugins"]["generator"]["version"]}
    assert checkpoint["hyper_parameters"]["generator"]["topology"] == "skip"
    assert not list(tmp_path.glob("*.tmp"))


def test_a_checkpoint_of_another_kind_is_rejected_clearly(tmp_path):
    run(tmp_path, 1)
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=True)
    del checkpoint["counters"]
    torch.save(checkpoint, tmp_path / "foreign.ckpt")
    with pytest.raises(ValueError, match="not written by lightning-stylegan"):
        run(tmp_path, 2, ckpt_path=str(tmp_path / "foreign.ckpt"))


def test_persistently_non_finite_losses_stop_with_a_saved_state(tmp_path):
    model = tiny_model(total_kimg=steps(20), max_nonfinite_steps=3)
    with torch.no_grad():
        model.D.b4.out.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite for 3 consecutive steps"):
        trainer(tmp_path).fit(model, tiny_data())
    assert len(list(tmp_path.glob("nonfinite-kimg*.ckpt"))) == 1
    assert model.counters["g_steps"] == 3


def test_bf16_mixed_precision_trains_with_both_regularizers(tmp_path):
    model = tiny_model(total_kimg=steps(3))
    fit = trainer(tmp_path, R1(gamma=1.0, interval=2), PathLength(interval=2), precision="bf16-mixed")
    fit.fit(model, tiny_data())
    assert model.counters["g_reg_steps"] == model.counters["d_reg_steps"] == 2
    assert int(model._nonfinite_grads) == 0
    assert all(torch.isfinite(p).all() and p.dtype == torch.float32 for p in model.parameters())


def test_adam_is_adjusted_for_the_interval_even_with_the_regularizer_off(tmp_path):
    """NVlabs (TF run_training config C, ada-pytorch G_reg_interval): c = k / (k + 1) follows the
    interval, not the weight, so G's Adam of config C (no path length, interval 4) runs at lr x 4/5."""
    model = tiny_model(total_kimg=steps(2))
    fit = trainer(tmp_path, R1(gamma=0.0, interval=16), PathLength(weight=0, interval=4))
    fit.fit(model, tiny_data())
    g, d = (opt.param_groups[0] for opt in fit.optimizers)
    assert g["lr"] == pytest.approx(0.002 * 4 / 5) and d["lr"] == pytest.approx(0.002 * 16 / 17)
    assert g["betas"] == pytest.approx((0.0, 0.99 ** (4 / 5)))
    assert model.counters["g_reg_steps"] == model.counters["d_reg_steps"] == 0  # no regularization pass ran


def test_non_lazy_path_length_has_its_own_pass_on_the_shrunk_batch(tmp_path, monkeypatch):
    """NVlabs' Gboth: path length on batch / pl_batch_shrink latents, a forward of its own."""
    from lightning_stylegan.training import module as module_file

    sizes = []
    original = module_file.path_lengths
    monkeypatch.setattr(module_file, "path_lengths", lambda images, ws: sizes.append(len(images)) or original(images, ws))
    trainer(tmp_path, R1(gamma=0.0), PathLength(interval=1, batch_shrink=2)).fit(tiny_model(total_kimg=steps(3)),
                                                                                 tiny_data())
    assert sizes == [BATCH // 2] * 3


@pytest.mark.parametrize("rule", ["dataset", "reals_for_d", "reals"])
def test_the_fakes_take_the_real_minibatchs_labels_where_the_rule_says(tmp_path, rule):
    """``fake_labels``: stylegan2-ada-pytorch draws every phase's labels from the dataset, NVlabs' TF
    D loss feeds G the real minibatch's labels, R3GAN's trainer does in both phases. D's calls per
    step: G main (fake), D main (fake, then real)."""
    data = ImageDataModule(resolution=8, channels=1, batch_size=BATCH, max_images=64, val_images=0, use_labels=True)
    model = tiny_model(total_kimg=steps(6), label_dim=data.label_dim, fake_labels=rule)
    labels = []
    model.D.register_forward_pre_hook(lambda module, args, kwargs: labels.append(args[1].clone()), with_kwargs=True)
    trainer(tmp_path, R1(gamma=0.0), PathLength(weight=0)).fit(model, data)
    assert len(labels) == 6 * 3
    d_same = [torch.equal(labels[3 * step + 1], labels[3 * step + 2]) for step in range(6)]
    g_same = [torch.equal(labels[3 * step], labels[3 * step + 2]) for step in range(6)]
    assert all(d_same) if rule != "dataset" else not any(d_same)
    assert all(g_same) if rule == "reals" else not any(g_same)


def test_an_unknown_fake_label_rule_names_the_rules():
    with pytest.raises(ConfigError, match="'dataset'.*'reals_for_d'.*'reals'"):
        tiny_model(fake_labels="batch")


def test_style_mixing_defaults_to_the_papers_probability():
    """002_0a18e98dc55024d1.txt Appendix B: style mixing regularization with probability 0.9."""
    assert tiny_model().hparams["style_mixing_prob"] == 0.9
    assert tiny_model(style_mixing_prob=0.5).hparams["style_mixing_prob"] == 0.5


def test_generator_labels_are_drawn_from_the_training_set(tmp_path):
    """NVlabs draws G's labels for each phase from the dataset's labels, not from the batch."""
    data = ImageDataModule(resolution=8, channels=1, batch_size=BATCH, max_images=64, val_images=0, use_labels=True)
    model = tiny_model(total_kimg=steps(1), label_dim=data.label_dim)
    trainer(tmp_path, R1(gamma=0.0), PathLength(weight=0)).fit(model, data)
    assert torch.equal(model._label_table, torch.as_tensor(data.dataset.labels))
    model._label_table = torch.eye(data.label_dim)[[7, 7, 7]]  # a training set of class 7 only
    batch_labels = torch.eye(data.label_dim)[[0, 1, 2, 3]]
    z, c = model._latents(200, batch_labels)
    assert z.shape == (200, 16) and torch.equal(c, torch.eye(data.label_dim)[[7] * 200])
    model._label_table = torch.as_tensor(data.dataset.labels)
    _, c = model._latents(4000, batch_labels)
    drawn = c.sum(0) / 4000
    expected = model._label_table.mean(0)
    assert torch.allclose(drawn, expected, atol=0.03)  # the data's class frequencies
