"""The installed ``lightning-stylegan`` command end to end, as a subprocess, on 8x8 networks: what a
quickstart run leaves behind, resume with ``--ckpt_path last``, errors, ``validate``,
``--print_config``, and two-process DDP on CPU (gloo)."""
from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_stylegan.data.datamodule import ImageDataModule
from lightning_stylegan.data.sampler import InfiniteSampler
from lightning_stylegan.metrics.catalog import parse_metrics
from lightning_stylegan.metrics.evaluate import MetricOptions, compute_metrics
from lightning_stylegan.network_files import load_generator

from cli_run import BATCH, COLUMNS, IMAGES, LOSS_TAGS, REPO, RES, ROWS, TINY, TOTAL_KIMG, cli
from metric_plugins import install_tiny_extractor


def events(log_dir: Path) -> EventAccumulator:
    (event_file,) = log_dir.glob("events.out.tfevents.*")
    return EventAccumulator(str(event_file), size_guidance={"scalars": 0, "images": 0}).Reload()


def scalar_steps(accumulator: EventAccumulator, prefixes=("Loss/", "Progress/", "Timing/")) -> list[int]:
    return sorted({event.step for tag in accumulator.Tags()["scalars"] if tag.startswith(prefixes)
                   for event in accumulator.Scalars(tag)})


def counters(checkpoint: Path) -> dict[str, int]:
    return torch.load(checkpoint, weights_only=True)["counters"]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    """One quickstart run of 6 steps with its progress bars (in a log, not a terminal), shared
    (read-only) by the tests below: the installed console script in a new interpreter, as a user
    starts it."""
    root = tmp_path_factory.mktemp("quickstart")
    return root, cli("fit", *TINY, "--model.total_kimg", TOTAL_KIMG, "--trainer.default_root_dir", root,
                     "--trainer.enable_progress_bar", "true", "--data.val_images", 40, fresh=True)


def test_quickstart_trains_and_leaves_checkpoints_config_samples_and_scalars(quickstart):
    root, result = quickstart
    assert result.returncode == 0, result.stderr
    run = root / "lightning_logs" / "version_0"

    # Checkpoints: last.ckpt and a periodic one, loadable without executing code, exact counters.
    last = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["counters"] == {"images_seen": IMAGES, "g_steps": IMAGES // BATCH, "d_steps": IMAGES // BATCH,
                                "g_reg_steps": 2,  # path length every 4 G steps: 0, 4
                                "d_reg_steps": 1}  # R1 every 16 D steps: 0
    assert last["hyper_parameters"]["total_kimg"] == TOTAL_KIMG
    assert last["hyper_parameters"]["resolution"] == RES  # linked from data.resolution
    assert last["plugins"]["normalization"]["name"] == "demod"
    assert last["callbacks"]["PathLength"]["pl_mean"] != 0
    (periodic,) = (root / "checkpoints").glob("kimg*.ckpt")  # every 16 images: written at 16
    assert counters(periodic)["images_seen"] == 16
    assert not list((root / "checkpoints").glob("*.tmp"))

    # The full resolved configuration next to the logs.
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["total_kimg"] == TOTAL_KIMG and config["data"]["resolution"] == RES
    assert config["model"]["generator"] | {"normalization": "demod", "topology": "skip", "z_dim": 16} \
        == config["model"]["generator"]
    assert config["r1"] == {"gamma": 0.1, "interval": 16}
    assert config["path_length"]["weight"] == 2.0 and config["samples"]["rows"] == ROWS
    assert config["trainer"]["default_root_dir"] == str(root)

    # Sample grids: reals, the initial fakes, and one every 8 images (2 steps) plus the end.
    samples = run / "samples"
    assert sorted(p.name for p in samples.glob("*.png")) == [
        "fakes_000000008.png", "fakes_000000016.png", "fakes_000000024.png", "fakes_init.png", "reals.png"]
    for png in samples.glob("*.png"):
        with Image.open(png) as image:
            assert (image.size, image.mode) == ((COLUMNS * RES, ROWS * RES), "L"), png.name

    # TensorBoard: NVlabs-style scalars at step = images seen, and the grids as images.
    accumulator = events(run)
    tags = set(accumulator.Tags()["scalars"])
    assert LOSS_TAGS <= tags, sorted(tags)
    assert {"Loss/D/reg", "Loss/r1_penalty"} & tags, sorted(tags)
    steps = scalar_steps(accumulator)
    assert steps and all(0 < step <= IMAGES and step % BATCH == 0 for step in steps), steps
    assert [(e.step, e.value) for e in accumulator.Scalars("Progress/kimg")] == \
        [(step, pytest.approx(step / 1000)) for step in steps]
    grids = accumulator.Images("Samples/fakes")
    assert sorted({e.step for e in grids}) == [0, 8, 16, 24]
    assert all((e.width, e.height) == (COLUMNS * RES, ROWS * RES) for e in grids)


def test_the_log_shows_each_bar_a_few_times_and_no_warning_from_lightnings_internals(quickstart):
    """In a log, the validation pass at the end of fit (10 batches) draws its bar when it opens and
    when it closes, on stderr as the training bar, not once per batch on stdout as Lightning's own;
    the warnings of ``dependency_noise`` (Lightning's pytree deprecation, G_ema in eval mode) are not
    printed."""
    root, result = quickstart
    assert result.returncode == 0, result.stderr
    frames = [frame.strip() for frame in re.split(r"[\r\n]", result.stderr) if frame.strip()]
    validation = [frame for frame in frames if frame.startswith("validate")]
    assert len(validation) == 2 and validation[-1].startswith("validate  10/10 batches |"), validation
    assert 2 <= sum(frame.startswith("train") for frame in frames) <= 6  # open, ticks' redraws, close
    assert "Validation" not in result.stdout + result.stderr
    assert "LeafSpec" not in result.stderr and "module(s) in eval mode" not in result.stderr
    assert "Warning" not in result.stderr, result.stderr


def test_the_last_scalars_are_written_at_the_end(quickstart):
    root, result = quickstart
    assert result.returncode == 0, result.stderr
    # 6 steps with log_every_n_steps 4: the values of steps 5-6 should be written at step 24.
    assert scalar_steps(events(root / "lightning_logs" / "version_0"))[-1] == IMAGES


def test_validation_scalars_are_at_the_images_seen_step(quickstart):
    root, result = quickstart
    accumulator = events(root / "lightning_logs" / "version_0")
    assert [e.step for e in accumulator.Scalars("Val/D/loss")] == [IMAGES]


def test_resume_from_last_continues_counters_and_steps(quickstart, tmp_path):
    source, first = quickstart
    assert first.returncode == 0, first.stderr
    root = tmp_path / "run"
    shutil.copytree(source, root)
    versions = set((root / "lightning_logs").iterdir())
    result = cli("fit", *TINY, "--model.total_kimg", 0.040, "--trainer.default_root_dir", root,
                 "--ckpt_path", "last")
    assert result.returncode == 0, result.stderr
    assert f"Restoring states from the checkpoint path at {root / 'checkpoints' / 'last.ckpt'}" in result.stderr
    assert counters(root / "checkpoints" / "last.ckpt") == {
        "images_seen": 40, "g_steps": 10, "d_steps": 10, "g_reg_steps": 3, "d_reg_steps": 1}

    (run,) = set((root / "lightning_logs").iterdir()) - versions
    assert run.name == "version_1"
    steps = scalar_steps(events(run))
    assert steps and min(steps) > IMAGES and max(steps) <= 40 and all(s % BATCH == 0 for s in steps), steps
    assert sorted({e.step for e in events(run).Images("Samples/fakes")}) == [32, 40]
    assert not (run / "samples" / "fakes_init.png").exists()


def test_ckpt_path_last_without_a_checkpoint_starts_fresh(tmp_path):
    result = cli("fit", *TINY, "--model.total_kimg", 0.008, "--trainer.default_root_dir", tmp_path,
                 "--ckpt_path", "last")
    assert result.returncode == 0, result.stderr
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert f"No {last} found; starting a new run." in result.stderr
    assert "Restoring states" not in result.stderr
    assert counters(last)["images_seen"] == 8


@pytest.mark.parametrize("args, yaml_text, expected", [
    (["--model.generator.normalization", "demodd"], None,
     ["Unknown normalization plugin 'demodd'. Did you mean 'demod'?",
      "Available normalization plugins:", "adain", "modulate", "pin", "pixel"]),
    (["--model.generator.topolgy", "skip"], None, ["topolgy"]),
    ([], "model:\n  generator:\n    topolgy: skip\n", ["topolgy"]),
    ([], "r1:\n  gama: 1.0\n", ["r1.gama"]),
    (["--metrics.metrics", "[fid50k_ful]"], None, ["Unknown metric 'fid50k_ful'", "fid50k_full"]),
], ids=["unknown-plugin", "cli-key", "yaml-nested-key", "yaml-group-key", "unknown-metric"])
def test_configuration_errors_exit_nonzero_and_say_what_is_wrong(tmp_path, args, yaml_text, expected):
    if yaml_text is not None:
        (tmp_path / "bad.yaml").write_text(yaml_text)
        args = ["--config", tmp_path / "bad.yaml", *args]
    root = tmp_path / "run"
    result = cli("fit", "--config", "recipes/quickstart.yaml", *args, "--trainer.default_root_dir", root)
    assert result.returncode != 0
    for text in expected:
        assert text in result.stderr, result.stderr[-2000:]
    assert not root.exists()


def validation_metrics(stdout: str) -> dict[str, float]:
    return {name: float(value) for name, value in re.findall(r"(Val/\S+)\s+(\S+)", stdout)}


def test_validate_scores_a_checkpoint(quickstart, tmp_path):
    root, first = quickstart
    assert first.returncode == 0, first.stderr
    result = cli("validate", *TINY, "--trainer.default_root_dir", tmp_path, "--data.val_images", 40,
                 "--ckpt_path", root / "checkpoints" / "last.ckpt")
    assert result.returncode == 0, result.stderr
    metrics = validation_metrics(result.stdout)
    assert set(metrics) == {"Val/D/loss", "Val/scores/real", "Val/scores/fake"}, result.stdout
    assert all(math.isfinite(value) for value in metrics.values())
    # D scores the same reals as the validation at the end of the fit: the checkpoint was loaded.
    (at_fit_end,) = events(root / "lightning_logs" / "version_0").Scalars("Val/scores/real")
    assert metrics["Val/scores/real"] == pytest.approx(at_fit_end.value, rel=1e-5)


def test_validate_ckpt_path_last_loads_the_last_checkpoint(quickstart, tmp_path):
    source, first = quickstart
    assert first.returncode == 0, first.stderr
    shutil.copytree(source / "checkpoints", tmp_path / "checkpoints")
    result = cli("validate", *TINY, "--trainer.default_root_dir", tmp_path, "--ckpt_path", "last")
    assert result.returncode == 0, result.stderr
    assert f"Loaded model weights from the checkpoint at {tmp_path / 'checkpoints' / 'last.ckpt'}" in result.stderr


def test_print_config_shows_the_recipe_with_the_regularizer_groups():
    result = cli("fit", "--config", "recipes/quickstart.yaml", "--print_config")
    assert result.returncode == 0, result.stderr
    assert "normalization: demod" in result.stdout
    assert re.search(r"^r1:$", result.stdout, re.M) and re.search(r"^path_length:$", result.stdout, re.M)
    config = yaml.safe_load(result.stdout)
    assert config["r1"] == {"gamma": 0.1, "interval": 16}
    assert config["path_length"] | {"weight": 2.0, "interval": 4} == config["path_length"]
    assert config["samples"]["every_kimg"] == 5 and config["checkpoints"]["every_kimg"] == 10
    assert config["trainer"]["use_distributed_sampler"] is False and config["trainer"]["max_epochs"] == -1


ADA_TARGET, ADA_KIMG = 0.1, 0.5  # p steps by 2 ranks x 4 images / 500 each batch
DDP_METRIC = "fid20_full"  # 5 batches of 4 generated images, split 3 + 2 over the ranks


def test_ddp_on_two_cpu_processes_keeps_the_ranks_in_sync(site, tmp_path, one_thread):
    install_tiny_extractor(site)
    probe = tmp_path / "probe"
    (tmp_path / "probe.yaml").write_text(yaml.safe_dump({"trainer": {"callbacks": [
        {"class_path": "ddp_probe.ParamDigest", "init_args": {"out_dir": str(probe)}}]}}))
    # One thread per rank on any machine (Lightning would give each cpu_count // 2), as the single
    # process that computes the final metric below: the same arithmetic on both sides.
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), str(REPO / "tests"),
                                                                   os.environ.get("PYTHONPATH")])),
                        "OMP_NUM_THREADS": "1"}
    root = tmp_path / "run"
    result = cli("fit", *TINY, "--config", tmp_path / "probe.yaml", "--model.total_kimg", 0.040,
                 "--trainer.log_every_n_steps", 2, "--trainer.default_root_dir", root,
                 "--trainer.strategy", "ddp", "--trainer.devices", 2, "--trainer.accelerator", "cpu",
                 "--model.augment", "ada", "--ada.target", ADA_TARGET, "--ada.interval", 1, "--ada.kimg", ADA_KIMG,
                 "--metrics.metrics", f"[{DDP_METRIC}]", "--metrics.features", "tiny", "--metrics.batch_size", BATCH,
                 "--metrics.every_kimg", 0.016, "--metrics.cache_dir", tmp_path / "cache",
                 env=env, timeout=300, stall=60, watch=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((probe / f"rank{rank}.json").read_text()) for rank in (0, 1)]

    # The CLI turned plain "ddp" into DDP that tolerates the unused network of each phase.
    assert [(r["world_size"], r["strategy"], r["find_unused_parameters"]) for r in ranks] == \
        [(2, "DDPStrategy", True)] * 2
    # images_seen counts both ranks: 2 x 4 images per step, 5 steps.
    expected = {"images_seen": 40, "g_steps": 5, "d_steps": 5, "g_reg_steps": 2, "d_reg_steps": 1}
    assert ranks[0]["counters"] == ranks[1]["counters"] == expected
    assert counters(root / "checkpoints" / "last.ckpt") == expected
    # G, D and G_ema are identical on both ranks, to the last bit.
    assert ranks[0]["params"] == ranks[1]["params"]
    # Buffers too, except the tracked average of w, which each rank updates from its own latents
    # between DDP's broadcasts (NVlabs' check_ddp_consistency ignores w_avg for the same reason).
    for net in ("G", "D", "G_ema"):
        assert {k: v for k, v in ranks[0]["buffers"][net].items() if not k.endswith("w_avg")} == \
            {k: v for k, v in ranks[1]["buffers"][net].items() if not k.endswith("w_avg")}, net

    # The ada controller stepped p from the signs of both ranks (2 x 4 reals in D main, + 2 x 4 in
    # D reg at step 0): the same p on both ranks after every step, before DDP's next broadcast.
    assert ranks[0]["augment_p"] == ranks[1]["augment_p"] and len(ranks[0]["augment_p"]) == 5
    p, rate = 0.0, 2 * BATCH / (ADA_KIMG * 1000)
    for step, (a, b) in enumerate(zip(ranks[0]["local_signs"], ranks[1]["local_signs"])):
        r_t = (a[0] + b[0]) / (a[1] + b[1])
        p = min(max(p + rate * ((r_t > ADA_TARGET) - (r_t < ADA_TARGET)), 0.0), 1.0)
        assert ranks[0]["augment_p"][step] == pytest.approx(p, abs=1e-6), step
    # ... which differ per rank: a controller fed its own rank's signs alone would have stepped otherwise.
    assert any((a[0] / a[1] > ADA_TARGET) != (b[0] / b[1] > ADA_TARGET)
               for a, b in zip(ranks[0]["local_signs"], ranks[1]["local_signs"]))

    # Each rank drew its own share of the data stream: positions rank, rank + 2, ... of pass 0.
    data = ImageDataModule(resolution=RES, channels=1, batch_size=BATCH, max_images=64)
    order = InfiniteSampler(len(data.dataset), seed=0).order(0)
    shares = [sum(float(data.dataset[int(i)][0].double().sum()) for i in order[rank::2][:BATCH])
              for rank in (0, 1)]
    assert [r["first_batch_sum"] for r in ranks] == pytest.approx(shares, rel=1e-9)
    assert ranks[0]["first_batch_sum"] != ranks[1]["first_batch_sum"]

    # Scalars and grids come from rank 0 only, at images seen over both ranks.
    accumulator = events(root / "lightning_logs" / "version_0")
    steps = scalar_steps(accumulator)
    assert steps[:2] == [16, 32] and set(steps) <= {16, 32, 40}, steps  # every 2 steps
    assert (root / "lightning_logs" / "version_0" / "samples" / "fakes_000000040.png").exists()

    # The metric, every 16 images and at the end, computed by both ranks, each its share: both hold
    # the value rank 0 logged (the one at 32 images: the probe ends before the final evaluation),
    # and the final one is what one process computes from last.ckpt's G_ema.
    fid = {event.step: event.value for event in accumulator.Scalars(f"Metrics/{DDP_METRIC}")}
    assert sorted(fid) == [16, 32, 40]
    assert ranks[0]["metrics"] == ranks[1]["metrics"] == {f"Metrics/{DDP_METRIC}": pytest.approx(fid[32], rel=1e-6)}
    single, _ = compute_metrics(parse_metrics(DDP_METRIC), load_generator(root / "checkpoints" / "last.ckpt"),
                                data.dataset, MetricOptions(features="tiny", batch_size=BATCH,
                                                            cache_dir=str(tmp_path / "single"), progress=False))
    assert single[DDP_METRIC] == pytest.approx(fid[40], rel=1e-6)  # TensorBoard stores float32
