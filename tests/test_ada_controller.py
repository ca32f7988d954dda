"""The augmentation in the training loop and the adaptive controller of StyleGAN2-ADA (Karras et
al. 2020, Section 3; 003_22a7711458f25a1a.txt Section 1.0.2): the update rule on scripted signs,
every D input augmented, p checkpointed and resumed bit for bit, Freeze-D (Mo et al. 2020) and
NVlabs' transfer rules, and the r_v of a held-out validation split."""
from __future__ import annotations

import pytest
import torch

from lightning_stylegan.augmentations.base import Augmentation
from lightning_stylegan.checkpoint_files import write_checksummed
from lightning_stylegan.data.datamodule import ImageDataModule
from lightning_stylegan.data.images import ImageDataError
from lightning_stylegan.errors import ConfigError
from lightning_stylegan.network_files import NetworkFileError, load_networks, read_training_checkpoint
from lightning_stylegan.registry import PluginError
from lightning_stylegan.training.ada import AdaController
from lightning_stylegan.training.regularizers import PathLength, R1
from lightning_stylegan.training.checkpoints import KimgCheckpoint
from lightning_stylegan.training.transfer import discriminator_layers

from test_train_loop import BATCH, steps, tiny_data, tiny_model, trainer


class OneProcess:
    """A strategy's ``reduce`` on one process: the sum over ranks is the value itself."""

    @staticmethod
    def reduce(tensor, reduce_op):
        assert reduce_op == "sum"
        return tensor


class Mirror(Augmentation):
    """A left-right mirror of each image with probability p, recording every batch it sees."""

    api_version = 1
    adaptive = True

    def __init__(self, p: float = 0.0):
        super().__init__(p)
        self.batches: list[int] = []

    def forward(self, images):
        self.batches.append(images.shape[0])
        mirrored = torch.rand(images.shape[0], 1, 1, 1, device=images.device) < self.p
        return torch.where(mirrored, images.flip(3), images)


def test_the_update_rule_on_scripted_signs():
    """p += sign(r_t - target) * batch * interval / (kimg * 1000), clamped to [0, 1], with r_t the
    mean sign over the interval's passes, recomputed by an explicit loop."""
    controller = AdaController(target=0.6, interval=3, kimg=0.05)
    batch, p = 8, torch.zeros([])
    rng = torch.Generator().manual_seed(1)
    expected, gathered = 0.0, []
    for step in range(60):
        bias = 1.5 if step < 30 else -1.5  # D first overfits (positive), then not
        logits = torch.randn(batch, 1, generator=rng) + bias
        controller.record(logits)
        gathered += [float(torch.sign(v)) for v in logits.flatten()]
        if controller.due(step):
            r_t = controller.update(p, OneProcess, batch, transfer=False)
            mean = sum(gathered) / len(gathered)
            assert r_t == pytest.approx(mean)
            step_size = batch * 3 / (0.05 * 1000)
            expected = min(max(expected + (step_size if mean > 0.6 else -step_size if mean < 0.6 else 0), 0), 1)
            assert float(p) == pytest.approx(expected, abs=1e-6), step
            gathered = []
    assert float(p) == 0  # driven up to 1 while overfitting, then back down to the floor
    assert controller.due(0) and not controller.due(1) and controller.due(3)


def test_a_sign_equal_to_the_target_leaves_p_and_the_rate_follows_transfer():
    controller = AdaController(target=0.0, interval=1)
    p = torch.tensor(0.25)
    controller.record(torch.tensor([[1.0], [-1.0]]))
    assert controller.update(p, OneProcess, 2, transfer=False) == 0 and float(p) == 0.25
    assert controller.rate_kimg(transfer=False) == 500 and controller.rate_kimg(transfer=True) == 100
    assert AdaController(kimg=7).rate_kimg(transfer=True) == 7
    assert not AdaController(target=None).due(0)
    for bad in [dict(target=1.5), dict(interval=0), dict(kimg=0)]:
        with pytest.raises(ConfigError, match="--ada"):
            AdaController(**bad)


def test_every_image_d_sees_is_augmented(tmp_path):
    """G main (fakes), D main (fakes and reals), D reg (reals): 3 batches a step, +1 on R1 steps."""
    model = tiny_model(total_kimg=steps(4))
    model.augment = Mirror()
    trainer(tmp_path, R1(gamma=1.0, interval=2), PathLength(interval=3)).fit(model, tiny_data())
    assert model.augment.batches == [BATCH] * (4 * 3 + 2)


def ada_run(root, total_steps, ckpt_path=None, **model_kwargs):
    model = tiny_model(total_kimg=steps(total_steps), **model_kwargs)
    callbacks = [R1(gamma=1.0, interval=2), PathLength(interval=3), AdaController(target=0.0, interval=2, kimg=0.05),
                 KimgCheckpoint(dirpath=str(root), every_kimg=1000)]
    trainer(root, *callbacks, enable_checkpointing=True).fit(model, tiny_data(), ckpt_path=ckpt_path)
    return model, callbacks[2]


def test_p_adapts_lives_in_the_checkpoint_and_resumes_bit_for_bit(tmp_path):
    """The ``ada`` pipeline tuned by the controller: 8 steps straight equal 4 + a resume of 4, p
    and every weight to the last bit."""
    straight, _ = ada_run(tmp_path / "a", 8, augment="ada")
    assert 0 < float(straight.augment.p) <= 1  # target 0: any positive sign pushes p up
    ada_run(tmp_path / "b", 4, augment="ada")
    saved = torch.load(tmp_path / "b" / "last.ckpt", weights_only=True)
    assert saved["state_dict"]["augment.p"].dtype == torch.float32
    assert saved["plugins"]["augmentation"]["name"] == "ada"
    resumed, _ = ada_run(tmp_path / "b", 8, ckpt_path=str(tmp_path / "b" / "last.ckpt"), augment="ada")
    assert float(resumed.augment.p) == float(straight.augment.p)
    for a, b in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert a[0] == b[0] and torch.equal(a[1], b[1]), a[0]


def test_a_fixed_p_or_a_non_adaptive_plugin_is_left_alone(tmp_path):
    fixed, _ = ada_run(tmp_path / "a", 4, augment="ada", augment_options={"p": 0.3})
    assert float(fixed.augment.p) == pytest.approx(0.3) and fixed.ada_controller() is None
    # Resumed with another fixed p, the run uses it, not the checkpoint's.
    refixed, _ = ada_run(tmp_path / "a", 6, ckpt_path=str(tmp_path / "a" / "last.ckpt"), augment="ada",
                         augment_options={"p": 0.1})
    assert float(refixed.augment.p) == pytest.approx(0.1) and refixed.counters["g_steps"] == 6
    plain, _ = ada_run(tmp_path / "b", 4, augment="diffaugment")
    assert float(plain.augment.p) == 1.0 and plain.ada_controller() is None


def test_a_transfer_run_steps_p_at_100_kimg_and_has_no_ema_rampup(tmp_path):
    ada_run(tmp_path / "src", 1)
    source = torch.load(tmp_path / "src" / "last.ckpt", weights_only=True)["state_dict"]
    model = tiny_model(total_kimg=steps(1), augment="ada", init_from=str(tmp_path / "src" / "last.ckpt"))
    controller = AdaController(target=0.3)  # default kimg: 100 for a transfer run
    model.augment.p.fill_(0.5)
    trainer(tmp_path / "t", controller).fit(model, tiny_data())
    # One update, after step 0, from 4 signs: r_t is a multiple of 1/4, never the target.
    assert abs(float(model.augment.p) - 0.5) == pytest.approx(BATCH * 4 / (100 * 1000), rel=1e-4)
    # At 0 images seen a ramp-up would copy G into G_ema; without one, G_ema keeps 0.5 ** (4 / 10000)
    # of the source's G_ema (ema_kimg 10).
    beta = 0.5 ** (BATCH / 10_000)
    for name, ema in model.G_ema.named_parameters():
        expected = torch.lerp(model.G.state_dict()[name], source[f"G_ema.{name}"], beta)
        torch.testing.assert_close(ema, expected, rtol=0, atol=1e-6)
    assert not torch.equal(model.G_ema.synthesis.b8.conv1.weight, model.G.synthesis.b8.conv1.weight)


def test_unknown_augmentation_names_and_options_are_named():
    with pytest.raises(PluginError, match=r"Unknown augmentation plugin 'adaa'.*Did you mean 'ada'"):
        tiny_model(augment="adaa")
    with pytest.raises(ConfigError, match=r"model.augment_options.*no option 'prest'.*did you mean 'preset'"):
        tiny_model(augment="ada", augment_options={"prest": "bgc"})


def test_freeze_d_keeps_the_first_layers_from_the_input(tmp_path):
    """NVlabs' --freezed order: per block fromRGB, conv0, conv1, skip, from the highest resolution."""
    model = tiny_model(total_kimg=steps(3), freeze_d=3)
    assert [name for name, _ in discriminator_layers(model.D)] == ["b8.fromrgb", "b8.conv0", "b8.conv1", "b8.skip"]
    assert model.frozen_d_layers == ["b8.fromrgb", "b8.conv0", "b8.conv1"]
    before = {name: p.clone() for name, p in model.D.named_parameters()}
    trainer(tmp_path, R1(gamma=1.0, interval=2)).fit(model, tiny_data())
    for name, p in model.D.named_parameters():
        frozen = any(name.startswith(layer + ".") for layer in model.frozen_d_layers)
        assert torch.equal(p, before[name]) == frozen, name
    d_optimizer = model.trainer.optimizers[1]
    assert sum(p.numel() for g in d_optimizer.param_groups for p in g["params"]) == \
        sum(p.numel() for p in model.D.parameters() if p.requires_grad)
    with pytest.raises(ConfigError, match=r"--model.freeze_d must be an integer from 0 to 4"):
        tiny_model(freeze_d=5)


def test_a_held_out_split_logs_r_v(tmp_path):
    """r_v = (E[D_train] - E[D_val]) / (E[D_train] - E[D_gen]) (StyleGAN2-ADA Eq. 1), recomputed from
    D's logits on the held-out images, as many training images and the EMA fakes of the same latents."""
    data = ImageDataModule(resolution=8, channels=1, batch_size=BATCH, max_images=64, val_images=8,
                           val_held_out=True, xflip=True)
    n = data.dataset.num_images
    assert all(i % n >= 8 for i in data.train_set.indices) and len(data.train_set) == 2 * (n - 8)
    model = tiny_model(total_kimg=steps(3))
    fit = trainer(tmp_path)
    fit.fit(model, data)
    fit.validate(model, data)
    model.eval()
    with torch.no_grad():
        def mean_logits(images):  # in the loaders' batches: minibatch-stddev groups stay within one
            return float(torch.cat([model.D(part) for part in images.split(BATCH)]).double().mean())
        val = torch.stack([data.dataset[i][0] for i in range(8)])
        train = torch.stack([data.train_set[i][0] for i in range(8)])
        fakes = []
        for batch_idx in range(2):
            generator = torch.Generator().manual_seed(hash((model.hparams["seed"], batch_idx)) % 2 ** 63)
            fakes.append(model.G_ema(torch.randn(BATCH, model.G_ema.z_dim, generator=generator), noise_mode="const"))
        expected = (mean_logits(train) - mean_logits(val)) / (mean_logits(train) - mean_logits(torch.cat(fakes)))
    assert float(fit.callback_metrics["Val/r_v"]) == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ImageDataError, match="--data.val_images"):
        ImageDataModule(resolution=8, channels=1, batch_size=BATCH, max_images=8, val_images=8, val_held_out=True)


def test_a_missing_augmentation_plugin_blocks_resume_but_not_the_tools(tmp_path):
    """Generating needs G's plugins only; resuming needs the augmentation too, and names its package."""
    ada_run(tmp_path, 1, augment="ada")
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=True)
    checkpoint["plugins"]["augmentation"] = {"name": "cutmix", "distribution": "lsg-cutmix", "version": "0.3"}
    write_checksummed(checkpoint, tmp_path / "other.ckpt")  # with its checksum anew
    assert load_networks(tmp_path / "other.ckpt").G_ema is not None
    with pytest.raises(NetworkFileError, match=r"augmentation plugin 'cutmix'.*pip install lsg-cutmix==0.3"):
        read_training_checkpoint(tmp_path / "other.ckpt", resume=True)


def test_metrics_reals_must_be_training_or_all():
    from lightning_stylegan.metrics.callback import Metrics

    with pytest.raises(ConfigError, match=r"--metrics.reals must be 'training' or 'all', got 'everything'"):
        Metrics(reals="everything")
    data = ImageDataModule(resolution=8, channels=1, batch_size=BATCH, max_images=64, val_images=0)
    assert Metrics(reals="training").real_dataset(data) is data.dataset
    assert len(Metrics(reals="all").real_dataset(data)) == 6000  # every embedded image
