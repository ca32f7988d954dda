"""``recipes/r3gan/``: the official presets of R3GAN's ``train.py`` (CIFAR10, FFHQ-64, FFHQ-256,
ImageNet-32, ImageNet-64) and the CPU recipe. Each preset is checked against the official values,
and every recipe trains a few steps at 16x16 (its networks shrunk, its objective, schedules and
augmentation as written); a run resumed in the middle of its schedules equals the uninterrupted one."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import yaml

from test_r3gan_fit import REPO, run_cli

RECIPES = REPO / "recipes" / "r3gan"
# train.py: WidthPerStage, CardinalityPerStage, FP16Stages (G), NoiseDimension 64, the schedules'
# base and final values over decay_nimg, and the README's --gpus / --batch / --cond.
OFFICIAL = {
    "cifar10": dict(res=32, width=[768] * 4, card=[96] * 4, fp16=[-1, -2, -3], ema=5000, aug=0.55,
                    gamma=(0.05, 0.005), kimg=20000, gpus=8, batch=512, cond=True),
    "ffhq-64": dict(res=64, width=[768] * 4 + [384], card=[96] * 4 + [48], fp16=[-1, -2, -3, -4], ema=500, aug=0.3,
                    gamma=(2, 0.2), kimg=20000, gpus=8, batch=256, cond=False),
    "ffhq-256": dict(res=256, width=[768] * 4 + [384, 192, 96], card=[96] * 4 + [48, 24, 12], fp16=[-1, -2, -3, -4],
                     ema=500, aug=0.3, gamma=(150, 15), kimg=20000, gpus=8, batch=256, cond=False),
    "imagenet-32": dict(res=32, width=[1536] * 4, card=[96] * 4, fp16=[-1, -2, -3], ema=50000, aug=0.5,
                        gamma=(0.5, 0.05), kimg=200000, gpus=32, batch=4096, cond=True),
    "imagenet-64": dict(res=64, width=[1536] * 5, card=[96] * 5, fp16=[-1, -2, -3, -4], ema=50000, aug=0.4,
                        gamma=(1, 0.1), kimg=200000, gpus=64, batch=4096, cond=True),
}
AUGMENT = {"preset": "bgc", "brightness": 0.5, "contrast": 0.5, "lumaflip": 0.5, "hue": 0.5, "saturation": 0.5,
           "cutout": 1}  # AugmentPipe(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, ...)


def cosine(start, end, kimg) -> dict:
    return {"start": start, "end": end, "kimg": kimg}


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_the_preset_has_the_official_values(name):
    recipe, official = yaml.safe_load((RECIPES / f"{name}.yaml").read_text()), OFFICIAL[name]
    model, data = recipe["model"], recipe["data"]
    assert recipe["trainer"]["devices"] == official["gpus"]
    assert data["batch_size"] * official["gpus"] == official["batch"]
    assert (data["resolution"], data["use_labels"], data["xflip"]) == (official["res"], official["cond"], True)
    g, d = model["generator"]["synthesis_options"], model["discriminator"]["topology_options"]
    assert (g["WidthPerStage"], g["CardinalityPerStage"], g["FP16Stages"]) == (official["width"], official["card"],
                                                                               official["fp16"])
    assert g["BlocksPerStage"] == d["BlocksPerStage"] == [2] * len(official["width"])
    assert d["WidthPerStage"] == official["width"][::-1] and d["CardinalityPerStage"] == official["card"][::-1]
    assert d["FP16Stages"] == [x + len(official["fp16"]) for x in official["fp16"]]
    assert g["ExpansionFactor"] == d["ExpansionFactor"] == 2 and model["generator"]["z_dim"] == 64
    kimg = official["kimg"]
    assert model["g_lr"] == model["d_lr"] == cosine(2.0e-4, 5.0e-5, kimg)
    assert model["betas"] == [0.0, cosine(0.9, 0.99, kimg)] and model["eps"] == 1e-8
    assert model["ema_kimg"] == cosine(0, official["ema"], kimg) and model["ema_rampup"] is None
    assert model["augment"] == "ada" and model["augment_options"] == AUGMENT | {"p": cosine(0, official["aug"], kimg)}
    for group in ("r1", "r2"):
        assert recipe[group] == {"gamma": cosine(*official["gamma"], kimg), "interval": 1}
    assert (model["loss"], model["fake_labels"]) == ("rpgan", "reals")


def shrunk(stages: list[int], divisor: int) -> list[int]:
    return [max(value // divisor, 1) for value in stages]


def tiny_args(name: str, root: Path) -> list[str]:
    """The recipe at 16x16 on the embedded images, its first three G stages (the last three of D)
    with widths / 48 and cardinalities / 24, batch 4, three steps, nothing but training."""
    recipe = yaml.safe_load((RECIPES / f"{name}.yaml").read_text())
    g, d = recipe["model"]["generator"]["synthesis_options"], recipe["model"]["discriminator"]["topology_options"]
    g_options = {"WidthPerStage": shrunk(g["WidthPerStage"][:3], 48), "BlocksPerStage": g["BlocksPerStage"][:3],
                 "CardinalityPerStage": shrunk(g["CardinalityPerStage"][:3], 24)}
    d_options = {"WidthPerStage": shrunk(d["WidthPerStage"][-3:], 48), "BlocksPerStage": d["BlocksPerStage"][-3:],
                 "CardinalityPerStage": shrunk(d["CardinalityPerStage"][-3:], 24)}
    return ["fit", "--config", f"recipes/r3gan/{name}.yaml", "--trainer.devices", "1", "--trainer.strategy", "auto",
            "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
            "--trainer.default_root_dir", str(root / name), "--data.path", "null", "--data.resolution", "16",
            "--data.channels", "1", "--data.batch_size", "4", "--data.max_images", "64", "--data.val_images", "8",
            "--data.num_workers", "0", "--model.total_kimg", "0.012",
            "--model.generator.synthesis_options", json.dumps(g_options),
            "--model.discriminator.topology_options", json.dumps(d_options),
            "--samples.every_kimg", "0", "--checkpoints.every_kimg", "1", "--metrics.metrics", "[]",
            "--validate_at_end", "false"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("r3gan_recipes")
    names = sorted(OFFICIAL) + ["cpu"]
    with ThreadPoolExecutor(2) as pool:
        return root, dict(zip(names, pool.map(run_cli, [tiny_args(name, root) for name in names])))


@pytest.mark.parametrize("name", sorted(OFFICIAL) + ["cpu"])
def test_the_recipe_trains_a_few_steps_at_16x16(trained, name):
    root, results = trained
    assert results[name].returncode == 0, results[name].stderr[-3000:]
    checkpoint = torch.load(root / name / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["counters"]["images_seen"] == 12
    assert checkpoint["plugins"]["loss"]["name"] == "rpgan"
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point())
    cond = OFFICIAL.get(name, {}).get("cond", False)
    assert checkpoint["hyper_parameters"]["label_dim"] == (10 if cond else 0)
    if name != "cpu":  # the augmentation probability is the preset's schedule, not a tuned p
        assert checkpoint["hyper_parameters"]["augment_options"]["p"]["end"] == OFFICIAL[name]["aug"]


def test_a_run_resumed_in_the_middle_of_its_schedules_equals_the_uninterrupted_one(tmp_path):
    from lightning_stylegan.data.datamodule import ImageDataModule
    from lightning_stylegan.training.module import StyleGAN2
    from lightning_stylegan.training.regularizers import R1, R2, PathLength
    from lightning_stylegan.training.checkpoints import KimgCheckpoint

    schedule = {"start": 0.05, "end": 0.005, "kimg": 0.024, "kind": "cosine"}

    def run(root, steps, ckpt_path=None):
        torch.manual_seed(0)
        model = StyleGAN2(resolution=8, channels=1, label_dim=10, loss="rpgan", fake_labels="reals",
                          generator={"topology": "r3gan", "z_dim": 8, "synthesis_options": {
                              "WidthPerStage": [8, 8], "CardinalityPerStage": [2, 2], "BlocksPerStage": [1, 1]}},
                          discriminator={"topology": "r3gan", "topology_options": {
                              "WidthPerStage": [8, 8], "CardinalityPerStage": [2, 2], "BlocksPerStage": [1, 1]}},
                          g_lr={"start": 2e-3, "end": 5e-4, "kimg": 0.024}, d_lr={"start": 2e-3, "end": 5e-4, "kimg": 0.024},
                          betas=(0.0, {"start": 0.9, "end": 0.99, "kimg": 0.024}),
                          ema_kimg={"start": 0, "end": 0.01, "kimg": 0.024}, ema_rampup=None, total_kimg=steps * 0.004)
        data = ImageDataModule(resolution=8, channels=1, batch_size=4, max_images=64, val_images=0, use_labels=True)
        callbacks = [R1(gamma=schedule, interval=1), R2(gamma=schedule, interval=1), PathLength(),
                     KimgCheckpoint(dirpath=str(root), every_kimg=1000)]
        pl.Trainer(accelerator="cpu", devices=1, max_epochs=-1, logger=False, enable_progress_bar=False,
                   enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=root,
                   callbacks=callbacks, use_distributed_sampler=False).fit(model, data, ckpt_path=ckpt_path)
        return model

    straight = run(tmp_path / "a", 6)
    run(tmp_path / "b", 3)
    resumed = run(tmp_path / "b", 6, ckpt_path=str(tmp_path / "b" / "last.ckpt"))
    assert resumed.counters == straight.counters
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
