"""``lightning-stylegan analyze`` end to end on a tiny checkpoint: every subcommand writes its PNG
figures and JSON (and TensorBoard events with --tensorboard); detect scores its groups with a
feature extractor the test installs as a plugin."""
from __future__ import annotations

import json
import os

from PIL import Image

from cli_run import cli
from metric_plugins import install_tiny_extractor


def analyze(*args, env=None, check=True):
    result = cli("analyze", *args, env=env, timeout=300)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def pngs(folder):
    found = sorted(p.name for p in folder.glob("*.png"))
    for name in found:
        with Image.open(folder / name) as image:
            assert image.size[0] > 0 and image.mode == "RGB"
    return found


def events(folder):
    return list((folder / "tensorboard").glob("events.out.tfevents.*"))


def test_features_amplification_units(tiny_ckpt, tmp_path):
    out = tmp_path / "features"
    result = analyze("features", "--ckpt", tiny_ckpt, "--seed", 3, "--factor", 2, "--outdir", out, "--tensorboard")
    assert "layer  4 synthesis.b16.conv1" in result.stdout
    record = json.loads((out / "features.json").read_text())
    assert [layer["layer"] for layer in record["layers"]] == [0, 1, 2, 3, 4]
    assert {layer["point"] for layer in record["layers"]} == {"output"}  # StyleGAN2 layers: no normalization
    assert {"image.png", "layer00_channels.png", "layer03_magnitude.png", "layer04_region.png"} <= set(pngs(out))
    assert events(out)

    out = tmp_path / "amplification"
    analyze("amplification", "--ckpt", tiny_ckpt, "--alpha", 0.05, "--outdir", out)
    record = json.loads((out / "amplification.json").read_text())
    within = record["synthetic"]["within_assumptions"]
    assert all(abs(row["measured"] / row["estimate"] - 1) < 0.02 for row in within)
    assert [row["layer"] for row in record["layers"]] == [0, 1, 2, 3, 4]
    assert all(row["alpha"] > 0 and row["measured_median"] > 0 for row in record["layers"])
    assert pngs(out) == ["amplification_layers.png", "amplification_synthetic.png"]

    out = tmp_path / "units"
    analyze("units", "--ckpt", tiny_ckpt, "--seeds", "0,1", "--layer", "b8.conv1", "--unit", "auto",
            "--iterate", 2, "--outdir", out, "--tensorboard")
    record = json.loads((out / "units.json").read_text())
    assert record["name"] == "synthesis.b8.conv1" and len(record["seeds"]) == 2
    assert all(len(seed["iterated_units"]) == 2 and seed["image_change"] > 0 for seed in record["seeds"])
    assert pngs(out) == ["seed0_units.png", "seed1_units.png", "units_grid.png"] and events(out)


def test_rates_ablate_detect(tiny_ckpt, tmp_path, site):
    rates = tmp_path / "rates"
    analyze("rates", "--ckpt", tiny_ckpt, "--num", 40, "--batch", 16, "--outdir", rates, "--tensorboard")
    summary = json.loads((rates / "rates.json").read_text())
    assert summary["num"] == 40 and sorted(summary["layers"]) == ["0", "1", "2", "3", "4"]
    assert "rates_cdf.png" in pngs(rates) and (rates / "rates.npz").is_file() and events(rates)

    out = tmp_path / "ablate"
    analyze("ablate", "--ckpt", tiny_ckpt, "--seeds", "0-2", "--rates", rates / "rates.npz", "--outdir", out,
            "--tensorboard")
    record = json.loads((out / "ablation.json").read_text())
    assert record["layers"] == [0, 1, 3] and record["rate"] == 0.3 and record["rates_num"] == 40
    for seed in record["seeds"]:
        assert sorted(seed["low"]["zeroed"]) == ["0", "1", "3"]
        assert seed["random"]["zeroed"]["0"] == seed["low"]["zeroed"]["0"]
    assert {"ablation_grid.png", "seed2_ablation.png", "seed0_lr_heatmaps.png"} <= set(pngs(out)) and events(out)

    out = tmp_path / "ablate_on_the_fly"
    result = analyze("ablate", "--ckpt", tiny_ckpt, "--seeds", 5, "--num", 16, "--layers", "0,2", "--outdir", out)
    assert "computing activation rates over 16 latents" in result.stdout
    assert json.loads((out / "ablation.json").read_text())["rates_num"] == 16

    install_tiny_extractor(site)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "detect"
    analyze("detect", "--ckpt", tiny_ckpt, "--num", 24, "--top", 6, "--rates", rates / "rates.npz",
            "--data", "fashion-mnist", "--max-real", 30, "--extractor", "tiny", "--cache-dir", tmp_path / "cache",
            "--outdir", out, "--tensorboard", env=env)
    record = json.loads((out / "detect.json").read_text())
    top, bottom = record["groups"]["top"]["counts"], record["groups"]["bottom"]["counts"]
    assert len(top) == len(bottom) == 6 and min(top) >= max(bottom) and top == sorted(top, reverse=True)
    for group in ("top", "bottom"):
        scores = record["scores"][group]
        assert 0 <= scores["precision"] <= 1 and 0 <= scores["recall"] <= 1 and scores["realism_mean"] >= 0
        assert scores["num_real"] == 30 and scores["num_fake"] == 6 and scores["k"] == 3
    assert pngs(out) == ["detect_bottom.png", "detect_histogram.png", "detect_top.png"] and events(out)


def test_bad_arguments_get_clear_errors(tiny_ckpt, tmp_path):
    result = analyze("units", "--ckpt", tiny_ckpt, "--layer", 9, "--outdir", tmp_path, check=False)
    assert result.returncode == 2 and "No layer 9" in result.stderr and "b16.conv1" in result.stderr
    result = analyze("ablate", "--ckpt", tiny_ckpt, "--rates", tmp_path / "none.npz", "--outdir", tmp_path, check=False)
    assert result.returncode == 2 and "analyze rates" in result.stderr
    result = analyze("features", "--ckpt", tiny_ckpt, "--point", "normalized", "--outdir", tmp_path, check=False)
    assert result.returncode == 2 and "not 'normalized'" in result.stderr
