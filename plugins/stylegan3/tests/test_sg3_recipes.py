"""``recipes/stylegan3/t.yaml`` and ``r.yaml`` as the command resolves them, against NVlabs
stylegan3 ``train.py --cfg stylegan3-t`` / ``stylegan3-r`` (its defaults, ``--batch 32 --gpus 8``,
and the per-resolution gamma of its ``docs/configs.md``), with the batch-dependent values
recomputed from NVlabs' formulas. (``tests/test_paper_recipes.py`` trains both at 16x16.)"""
from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
SCRIPT = Path(sys.executable).with_name("lightning-stylegan")
COMMAND = str(SCRIPT) if SCRIPT.exists() else "lightning-stylegan"


def flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.fixture(scope="module")
def configs() -> dict[str, dict]:
    def parse(name):
        result = subprocess.run([COMMAND, "fit", "--config", f"recipes/stylegan3/{name}.yaml", "--print_config"],
                                cwd=REPO, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return flat(yaml.safe_load(result.stdout))

    with ThreadPoolExecutor(2) as pool:
        return dict(zip("tr", pool.map(parse, "tr")))


def nvlabs(cfg: str, batch: int = 32, gpus: int = 8, gamma: float = 32.0) -> dict:
    """train.py's options for ``--cfg stylegan3-<cfg> --batch <batch> --gpus <gpus> --gamma <gamma>``
    with every other option at its default, in this project's keys."""
    r = cfg == "r"
    return {
        "trainer.devices": gpus, "data.batch_size": batch // gpus, "data.xflip": False,  # --mirror 0
        "model.total_kimg": 25000,
        "model.generator.topology": f"stylegan3-{cfg}", "model.generator.normalization": "demod",
        "model.generator.use_noise": False, "model.generator.z_dim": 512, "model.generator.w_dim": 512,
        "model.generator.mapping_layers": 2, "model.generator.mapping_lr_multiplier": 0.01,
        "model.generator.w_avg_beta": 0.998,
        "model.generator.channel_base": 32768 * (2 if r else 1), "model.generator.channel_max": 512 * (2 if r else 1),
        "model.generator.conv_clamp": 256, "model.discriminator.conv_clamp": 256,
        "model.generator.synthesis_options.magnitude_ema_beta": 0.5 ** (batch / (20 * 1e3)),
        "model.discriminator.topology": "residual", "model.discriminator.channel_base": 32768,
        "model.discriminator.channel_max": 512, "model.discriminator.mbstd_group_size": 4,
        "model.discriminator.mbstd_num_channels": 1,
        "model.g_lr": 0.0025, "model.d_lr": 0.002, "model.betas": [0.0, 0.99], "model.eps": 1e-8,
        "model.style_mixing_prob": 0.0, "model.ema_kimg": batch * 10 / 32, "model.ema_rampup": 0.05,
        "r1.gamma": gamma, "r1.interval": 16, "path_length.weight": 0,
        "path_length.interval": 1,  # G_reg_interval None: no lazy-regularization change of G's Adam
        "ada.target": 0.6, "ada.interval": 4, "ada.kimg": 500,
        "checkpoints.every_kimg": 4 * 50, "metrics.metrics": ["fid50k_full"],  # --tick 4 --snap 50
        **({"model.generator.synthesis_options.conv_kernel": 1,
            "model.generator.synthesis_options.use_radial_filters": True,
            "model.augment": "blur", "model.augment_options.sigma": 10,
            "model.augment_options.fade_kimg": batch * 200 / 32, "model.augment_options.augment": "ada",
            "model.augment_options.augment_options.preset": "bgc"} if r else
           {"model.augment": "ada", "model.augment_options.preset": "bgc"}),
    }


@pytest.mark.parametrize("cfg", ["t", "r"])
def test_the_recipe_has_nvlabs_values(configs, cfg):
    config = configs[cfg]
    expected = nvlabs(cfg)
    assert {key: config.get(key, "<missing>") for key in expected} == expected
    assert config["model.generator.synthesis_options.magnitude_ema_beta"] == pytest.approx(0.99889158, abs=1e-8)


def test_r_differs_from_t_only_in_what_cfg_stylegan3_r_changes(configs):
    t, r = configs["t"], configs["r"]
    changed = {key for key in t.keys() | r.keys() if t.get(key) != r.get(key)}
    assert changed == {"trainer.default_root_dir", "model.generator.topology", "model.generator.channel_base",
                       "model.generator.channel_max", "model.generator.synthesis_options.conv_kernel",
                       "model.generator.synthesis_options.use_radial_filters", "model.augment",
                       "model.augment_options.preset", "model.augment_options.sigma",
                       "model.augment_options.fade_kimg", "model.augment_options.augment",
                       "model.augment_options.augment_options.preset"}
