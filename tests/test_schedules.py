"""Hyper-parameters that follow a schedule in images seen (R3GAN, Huang et al. 2024, Section 4 and
its ``train.py``: lr, gamma, beta2, EMA length and augmentation probability annealed with a cosine):
the formulas, a real run that takes every scheduled value at every step, logs them, and resumes in
the middle of the schedules bit for bit."""
from __future__ import annotations

import math

import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_stylegan.errors import ConfigError
from lightning_stylegan.training.regularizers import R1, R2, PathLength
from lightning_stylegan.training.schedules import Schedule, as_scheduled, value_at
from lightning_stylegan.training.checkpoints import KimgCheckpoint
from test_train_loop import BATCH, steps, tiny_data, tiny_model, trainer


def r3gan_cosine(cur_nimg: float, base: float, final: float, total_nimg: float) -> float:
    """R3GAN's ``cosine_decay_with_warmup`` without warm-up or hold, written from its definition:
    decay = (1 + cos(pi n / N)) / 2, value = base + (1 - decay)(final - base); final after N."""
    if cur_nimg > total_nimg:
        return final
    decay = 0.5 * (1 + math.cos(math.pi * cur_nimg / total_nimg))
    return base + (1 - decay) * (final - base)


@pytest.mark.parametrize("images", [0, 1000, 2500, 5000, 7777, 10000, 10001, 10 ** 6])
def test_each_kind_follows_its_formula(images):
    start, end, kimg = 2e-4, 5e-5, 10
    assert Schedule(start, end, kimg).at(images) == pytest.approx(r3gan_cosine(images, start, end, kimg * 1000),
                                                                 rel=1e-12)
    t = min(images / 10000, 1)
    assert Schedule(start, end, kimg, kind="linear").at(images) == pytest.approx(start + (end - start) * t, rel=1e-12)
    assert Schedule(start, end, kimg, kind="constant").at(images) == start


def test_the_cosine_is_flat_at_both_ends_and_halfway_at_the_middle():
    schedule = Schedule(0.0, 1.0, 4)
    assert schedule.at(0) == 0 and schedule.at(4000) == 1 and schedule.at(2000) == pytest.approx(0.5)
    assert schedule.at(40) < 1e-3 and 1 - schedule.at(3960) < 1e-3  # zero slope at the ends


def test_numbers_and_mappings_become_values_or_schedules():
    assert as_scheduled(3, "x") == 3.0 and value_at(3.0, 10 ** 9) == 3.0
    assert as_scheduled({"start": 1, "end": 2, "kimg": 3}, "x") == Schedule(1, 2, 3)
    with pytest.raises(ConfigError, match="model.g_lr: a schedule has the fields start, end, kimg and kind"):
        as_scheduled({"start": 1, "end": 2}, "model.g_lr")
    with pytest.raises(ConfigError, match="kind is constant, linear or cosine"):
        as_scheduled({"start": 1, "end": 2, "kimg": 3, "kind": "step"}, "model.g_lr")
    with pytest.raises(ConfigError, match="--r1.gamma must be >= 0"):
        R1(gamma={"start": 1.0, "end": -1.0, "kimg": 2})


LR = Schedule(0.004, 0.001, steps(4))  # reached after 4 of the 7 steps
BETA2 = Schedule(0.9, 0.99, steps(6), kind="linear")
EMA = Schedule(0.0, 0.02, steps(5))
GAMMA = Schedule(2.0, 0.5, steps(4))
AUGMENT_P = Schedule(0.0, 0.6, steps(5), kind="linear")


def scheduled_model(total_steps: int):
    return tiny_model(total_kimg=steps(total_steps), g_lr=LR, d_lr={"start": 0.002, "end": 0.0005, "kimg": steps(4)},
                      betas=(0.0, BETA2), ema_kimg=EMA, ema_rampup=None, augment="ada",
                      augment_options={"p": {"start": 0.0, "end": 0.6, "kimg": steps(5), "kind": "linear"}})


def run(root, total_steps, ckpt_path=None):
    model = scheduled_model(total_steps)
    callbacks = [R1(gamma=GAMMA, interval=2), R2(gamma=GAMMA, interval=2), PathLength(interval=3),
                 KimgCheckpoint(dirpath=str(root), every_kimg=1000)]
    trainer(root, *callbacks, enable_checkpointing=True).fit(model, tiny_data(), ckpt_path=ckpt_path)
    return model


def test_every_scheduled_value_is_taken_at_each_step(tmp_path):
    model = scheduled_model(5)
    seen = []

    def record(module, args):  # at D's first call of each training step, everything is set
        if module.trainer.training and (not seen or seen[-1][0] != module.images_seen):
            opt_g, opt_d = (optimizer.param_groups[0] for optimizer in module.trainer.optimizers)
            seen.append((module.images_seen, opt_g["lr"], opt_d["lr"], opt_g["betas"], float(module.augment.p)))
    model.D.register_forward_pre_hook(lambda d, args: record(model, args))
    trainer(tmp_path, R1(gamma=GAMMA, interval=1), PathLength(weight=0, interval=1)).fit(model, tiny_data())
    assert [images for images, *_ in seen] == [0, 4, 8, 12, 16]
    for images, g_lr, d_lr, betas, p in seen:
        assert g_lr == pytest.approx(r3gan_cosine(images, 0.004, 0.001, 16))  # path length interval 1: c = 1
        assert d_lr == pytest.approx(r3gan_cosine(images, 0.002, 0.0005, 16))  # R1 not lazy: c = 1
        assert betas == pytest.approx((0.0, 0.9 + 0.09 * min(images / 24, 1)))
        assert p == pytest.approx(0.6 * min(images / 20, 1))


def test_lazy_intervals_adjust_the_scheduled_lr_and_beta2():
    model = scheduled_model(1)
    model.counters["images_seen"] = 8
    model.callback = lambda kind, enabled_only=True: {R1: R1(gamma=1.0, interval=16), PathLength: PathLength(interval=4)}.get(kind)
    (g, d) = model.adam_settings()
    assert g["lr"] == pytest.approx(r3gan_cosine(8, 0.004, 0.001, 16) * 4 / 5)
    assert g["betas"] == pytest.approx((0.0, (0.9 + 0.09 * 8 / 24) ** (4 / 5)))
    assert d["lr"] == pytest.approx(r3gan_cosine(8, 0.002, 0.0005, 16) * 16 / 17)


def test_a_run_resumed_in_the_middle_of_its_schedules_equals_the_uninterrupted_one(tmp_path):
    straight = run(tmp_path / "a", 7)
    run(tmp_path / "b", 3)
    resumed = run(tmp_path / "b", 7, ckpt_path=str(tmp_path / "b" / "last.ckpt"))
    assert resumed.counters == straight.counters and resumed.counters["d_reg_steps"] == 4
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    assert float(resumed.augment.p) == pytest.approx(0.6)  # set at the last step, 24 images in
    for a, b in zip(straight.trainer.optimizers, resumed.trainer.optimizers):
        assert a.param_groups[0]["lr"] == b.param_groups[0]["lr"]
        for state_a, state_b in zip(a.state.values(), b.state.values()):
            assert all(torch.equal(state_a[key], state_b[key]) for key in state_a)


def test_the_scheduled_values_are_logged_at_images_seen(tmp_path):
    model = scheduled_model(4)
    logger = TensorBoardLogger(tmp_path, name="", version="")
    trainer(tmp_path, R1(gamma=GAMMA, interval=2), R2(gamma=1.0, interval=2), PathLength(weight=0, interval=1),
            logger=logger, log_every_n_steps=2).fit(model, tiny_data())
    events = EventAccumulator(str(tmp_path)).Reload()
    logged = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    # At a flush (after steps 2 and 4) the counter has moved past the step: the value for what comes next.
    assert logged["Progress/schedule/g_lr"] == [(8, pytest.approx(LR.at(8))), (16, pytest.approx(LR.at(16)))]
    assert logged["Progress/schedule/r1_gamma"] == [(8, pytest.approx(GAMMA.at(8))), (16, pytest.approx(0.5))]
    assert {"Progress/schedule/beta2", "Progress/schedule/ema_kimg", "Progress/schedule/augment_p",
            "Progress/schedule/d_lr"} <= set(logged)
    assert "Progress/schedule/r2_gamma" not in logged  # a constant
    assert {"Loss/r1_penalty", "Loss/r2_penalty"} <= set(logged)


def test_schedules_are_hyperparameters_a_checkpoint_loads_without_code(tmp_path):
    run(tmp_path, 2)
    hparams = torch.load(tmp_path / "last.ckpt", weights_only=True)["hyper_parameters"]
    assert hparams["g_lr"] == {"start": 0.004, "end": 0.001, "kimg": steps(4), "kind": "cosine"}
    assert hparams["betas"][1]["kind"] == "linear" and hparams["augment_options"]["p"]["end"] == 0.6
