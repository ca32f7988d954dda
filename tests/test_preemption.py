"""Stopping on a signal to be resumed (training.preemption): SIGTERM, SIGUSR1 and SIGINT at any
point of a step stop the run at the step's end with last.ckpt saved and exit status 75, abandon a
metric or a sample grid in progress, survive a second signal while saving, stop every DDP rank
when one is signalled, and requeue a SLURM job; the resumed run equals the uninterrupted one in
every tensor and counter."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cli_run import BATCH, REPO, TINY, cli
from lightning_stylegan.metrics.shards import Shards
from lightning_stylegan.training.preemption import PREEMPTED_STATUS

STEPS = 8  # of BATCH images: a run of 0.032 kimg
KIMG = STEPS * BATCH / 1000


def probe(tmp_path: Path, name: str = "probe", **init_args) -> Path:
    """A config that adds the ``signal_probe.SendSignal`` callback with ``init_args``."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"trainer": {"callbacks": [
        {"class_path": "signal_probe.SendSignal", "init_args": init_args}]}}))
    return path


def environment(*folders: Path, **extra) -> dict:
    """This environment, one thread, ``folders`` (e.g. a throwaway plugin site) and tests/ on PYTHONPATH."""
    paths = [*map(str, folders), str(REPO / "tests"), os.environ.get("PYTHONPATH")]
    return os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, paths)), "OMP_NUM_THREADS": "1"} | extra


def fit(root: Path, *args, env: dict | None = None, timeout: float = 240):
    return cli("fit", *TINY, "--model.total_kimg", KIMG, "--trainer.default_root_dir", root, *args,
               env=env or environment(), timeout=timeout, stall=90, watch=root.parent)


def training_state(path: Path) -> dict:
    """What a resume must reproduce: weights and buffers, Adam's state, counters, the callbacks'
    state (path length's targets, ADA's signs), the growth stage, Lightning's optimizer step count."""
    checkpoint = torch.load(path, weights_only=True)
    return {key: checkpoint[key] for key in ("state_dict", "optimizer_states", "callbacks", "counters",
                                             "growth_lod", "global_step")}


def assert_same(a, b, where: str = "") -> None:
    """Equal to the last bit: tensors by torch.equal, containers key by key."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: {sorted(a)} != {sorted(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def scalar_steps(root: Path, tag_prefix: str, version: int = 0) -> dict[str, list[int]]:
    accumulator = EventAccumulator(str(root / "lightning_logs" / f"version_{version}"))
    accumulator.Reload()
    return {tag: [e.step for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]
            if tag.startswith(tag_prefix)}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("uninterrupted") / "run"
    result = fit(root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize("signal_name, second", [("SIGTERM", "SIGINT"), ("SIGUSR1", None), ("SIGINT", "SIGTERM")])
def test_a_signal_mid_step_stops_at_its_end_and_the_resume_is_exact(uninterrupted, tmp_path, signal_name, second):
    root = tmp_path / "run"
    stopped = fit(root, "--config", probe(tmp_path, signal_name=signal_name, step=3, also_while_saving=second))
    assert stopped.returncode == PREEMPTED_STATUS, stopped.stderr[-3000:]
    last = root / "checkpoints" / "last.ckpt"
    assert f"Stopped on {signal_name} at 0.016 kimg: saved {last}; resume with --ckpt_path last" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    # The step under way when the signal came was finished (4 steps of 4 images), then saved; the
    # grid due after it was abandoned, and no end-of-run work was done: no validation scores, no
    # final grid, no leftover temporary file.
    assert torch.load(last, weights_only=True)["counters"]["images_seen"] == 16
    assert not any(tag.startswith("Val/") for tag in scalar_steps(root, ""))
    grids = sorted(p.name for p in (root / "lightning_logs" / "version_0" / "samples").glob("fakes_0*.png"))
    assert grids == ["fakes_000000008.png"]
    assert not list(root.rglob("*.tmp"))

    resumed = fit(root, "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming" in resumed.stderr and "at 0.016 kimg" in resumed.stderr
    assert_same(training_state(last), training_state(uninterrupted))


def test_a_signal_abandons_the_metric_and_grid_in_progress(uninterrupted, site, tmp_path):
    from metric_plugins import install_tiny_extractor

    install_tiny_extractor(site)
    env = environment(site)
    root = tmp_path / "run"
    metrics = ["--metrics.metrics", "[fid2k_full]", "--metrics.features", "tiny", "--metrics.every_kimg", 0.016,
               "--metrics.cache_dir", tmp_path / "cache"]
    # The signal comes as step 3 ends (16 images), when a grid and the metric are due.
    stopped = fit(root, *metrics, "--config", probe(tmp_path, signal_name="SIGTERM", step=3, where="step_end"),
                  env=env)
    assert stopped.returncode == PREEMPTED_STATUS, stopped.stderr[-3000:]
    assert "Stopped on SIGTERM at 0.016 kimg" in stopped.stderr
    assert scalar_steps(root, "Metrics/") == {}  # the metric was abandoned, not logged late
    samples = root / "lightning_logs" / "version_0" / "samples"
    assert (samples / "fakes_000000008.png").exists() and not (samples / "fakes_000000016.png").exists()

    resumed = fit(root, *metrics, "--ckpt_path", "last", env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert scalar_steps(root, "Metrics/", version=1) == {"Metrics/fid2k_full": [32]}  # the next one due
    assert_same(training_state(root / "checkpoints" / "last.ckpt"), training_state(uninterrupted))


def test_a_signal_during_start_up_stops_the_run_before_its_first_step(tmp_path):
    root = tmp_path / "run"
    stopped = fit(root, "--config", probe(tmp_path, signal_name="SIGUSR1", step=0, where="setup"))
    assert stopped.returncode == PREEMPTED_STATUS, stopped.stderr[-3000:]
    assert f"Stopped on SIGUSR1 at 0 kimg: saved {root / 'checkpoints' / 'last.ckpt'}" in stopped.stderr
    assert torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)["counters"]["g_steps"] == 0


def test_a_signal_during_the_validation_at_the_end_abandons_it(tmp_path):
    root = tmp_path / "run"
    stopped = fit(root, "--config", probe(tmp_path, signal_name="SIGTERM", step=0, where="validation"))
    assert stopped.returncode == PREEMPTED_STATUS, stopped.stderr[-3000:]
    assert f"Stopped on SIGTERM at {KIMG:g} kimg" in stopped.stderr
    assert not any(tag.startswith("Val/") for tag in scalar_steps(root, ""))
    assert torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)["counters"]["images_seen"] == 32
    resumed = fit(root, "--ckpt_path", "last")  # nothing left to train
    assert resumed.returncode == 0 and "is complete" in resumed.stderr, resumed.stderr[-3000:]


@pytest.mark.parametrize("rank, batches", [(0, 3), (1, 2)])
def test_metric_work_polls_as_often_on_every_rank(rank, batches):
    """5 batches over 2 ranks (3 + 2): both poll 3 times, in rounds, so a poll can be a collective."""
    events = []
    shards = Shards(rank, 2, poll=lambda: events.append("poll"))
    for j, _, _ in shards.polled(shards.batches(20, 4), 20, 4):
        events.append(j)
    assert events == [e for j in range(rank, 6, 2) for e in (["poll", j] if j < 5 else ["poll"])]
    assert events.count("poll") == 3 and len(events) == 3 + batches


def test_dataloader_workers_leave_a_signal_to_the_whole_group_to_the_main_process(tmp_path):
    root = tmp_path / "run"
    stopped = fit(root, "--data.num_workers", 2,
                  "--config", probe(tmp_path, signal_name="SIGINT", step=2, process_group=True))
    assert stopped.returncode == PREEMPTED_STATUS, stopped.stderr[-3000:]
    assert "Stopped on SIGINT at 0.012 kimg" in stopped.stderr and "DataLoader worker" not in stopped.stderr


DDP = ["--trainer.strategy", "ddp", "--trainer.devices", 2, "--trainer.accelerator", "cpu", "--data.resolution", 16,
       # progressive growing 8 -> 16 px, fading in over steps 2-5 (8 images a step), ADA's p moving
       "--model.growth", "progressive", "--model.growth_options", "{phase_kimg: 0.016, fade_kimg: 0.032}",
       "--model.augment", "ada", "--ada.target", 0.0, "--ada.interval", 4, "--ada.kimg", 0.1,
       "--checkpoints.every_kimg", 0.024,
       # and a metric every 2 steps, its 5 batches of 4 images split 3 + 2 over the ranks
       "--metrics.metrics", "[fid20_full]", "--metrics.features", "tiny", "--metrics.every_kimg", 0.016,
       "--metrics.batch_size", BATCH]


def test_a_signal_to_one_ddp_rank_stops_both_mid_fade_in_and_the_resume_is_exact(site, tmp_path):
    from metric_plugins import install_tiny_extractor

    install_tiny_extractor(site)
    env = environment(site)
    ddp = [*DDP, "--model.total_kimg", 2 * KIMG, "--metrics.cache_dir", tmp_path / "cache"]
    straight = tmp_path / "straight"
    result = fit(straight, *ddp, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    # Rank 1 alone is signalled as step 3 ends (32 images), before the metric due then: both ranks
    # learn of it at the metric's first round of batches and stop there.
    root = tmp_path / "run"
    stopped = fit(root, *ddp, "--config", probe(tmp_path, signal_name="SIGTERM", step=3, where="step_end", rank=1),
                  env=env, timeout=300)
    assert stopped.returncode == PREEMPTED_STATUS, stopped.stderr[-3000:]
    assert "Stopped on SIGTERM at 0.032 kimg" in stopped.stderr
    assert scalar_steps(root, "Metrics/") == {"Metrics/fid20_full": [16]}
    # Saved mid fade-in, with ADA's signs of steps 1-3 gathered for the update after step 4.
    saved = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["counters"]["images_seen"] == 32 and 0 < saved["growth_lod"] < 1
    assert 0 < float(saved["state_dict"]["augment.p"]) and saved["callbacks"]["AdaController"]["signs"][1] > 0
    assert len(saved["callbacks"]["PathLength"]["pl_mean_per_rank"]) == 2

    resumed = fit(root, *ddp, "--ckpt_path", "last", env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same(training_state(root / "checkpoints" / "last.ckpt"), training_state(straight / "checkpoints" / "last.ckpt"))


def fake_scontrol(folder: Path) -> Path:
    """An ``scontrol`` that records its arguments in ``<folder>/scontrol.log``."""
    folder.mkdir()
    script = folder / "scontrol"
    script.write_text(f'#!/bin/sh\necho "$@" >> {folder / "scontrol.log"}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder / "scontrol.log"


SLURM = {"SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1", "SLURM_NNODES": "1", "SLURM_PROCID": "0",
         "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "stylegan",
         "SLURM_NODELIST": "127.0.0.1"}


@pytest.mark.parametrize("signal_name, requeued", [("SIGUSR1", True), ("SIGTERM", False)])
def test_slurms_requeue_signal_requeues_the_job_and_scancel_does_not(tmp_path, signal_name, requeued):
    log = fake_scontrol(tmp_path / "bin")
    env = environment(**SLURM, PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    root = tmp_path / "run"
    stopped = fit(root, "--config", probe(tmp_path, signal_name=signal_name, step=1), env=env)
    assert stopped.returncode == PREEMPTED_STATUS, stopped.stderr[-3000:]
    assert (root / "checkpoints" / "last.ckpt").exists() and not list(root.glob("hpc_ckpt_*"))
    if requeued:
        assert log.read_text() == "requeue 4242\n" and "Requeued SLURM job 4242" in stopped.stderr
    else:
        assert not log.exists()
