"""The ``Metrics`` training callback with a real Trainer, and ``lightning-stylegan metrics`` end to
end on a tiny checkpoint, both with a feature extractor the test installs (no download)."""
from __future__ import annotations

import json
import os

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from cli_run import cli
from metric_plugins import install_tiny_extractor
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_train_loop import BATCH, steps, tiny_data, tiny_model
from tiny_networks import tiny_checkpoint

from lightning_stylegan.metrics.callback import Metrics


def test_metrics_are_logged_at_the_kimg_they_are_due_and_drive_model_checkpoint(site, tmp_path):
    install_tiny_extractor(site)
    every = steps(3)  # every 3 steps of BATCH images
    callback = Metrics(metrics=["fid0.05k_full", "pr0.03k3_full", "is0.02k"], every_kimg=every,
                       features="tiny", batch_size=16, cache_dir=str(tmp_path / "cache"))
    best = ModelCheckpoint(dirpath=tmp_path / "best", monitor="Metrics/fid50_full", mode="min",
                           save_top_k=1, every_n_train_steps=1, filename="best-{step}")
    logger = TensorBoardLogger(tmp_path, name="logs")
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=-1, logger=logger, callbacks=[callback, best],
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=0, default_root_dir=tmp_path, use_distributed_sampler=False)
    trainer.fit(tiny_model(total_kimg=steps(7)), tiny_data())

    accumulator = EventAccumulator(str(logger.log_dir))
    accumulator.Reload()
    fid = accumulator.Scalars("Metrics/fid50_full")
    # due after steps 3 and 6 (12 and 24 images), and once more at the end (28 images)
    assert [event.step for event in fid] == [3 * BATCH, 6 * BATCH, 7 * BATCH]
    assert all(event.value > 0 for event in fid)
    for tag in ("Metrics/pr0.03k3_full_precision", "Metrics/pr0.03k3_full_recall", "Metrics/is20_mean"):
        assert len(accumulator.Scalars(tag)) == 3, tag
    # ModelCheckpoint sees the values computed during training (not the one at the very end)
    assert best.best_model_score == min(event.value for event in fid[:2])
    assert best.best_model_path and os.path.exists(best.best_model_path)


def test_an_empty_metric_list_computes_nothing(tmp_path):
    callback = Metrics(metrics=[])
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=-1, logger=False, callbacks=[callback],
                         enable_progress_bar=False, enable_checkpointing=False, num_sanity_val_steps=0,
                         limit_val_batches=0, default_root_dir=tmp_path, use_distributed_sampler=False)
    trainer.fit(tiny_model(total_kimg=steps(2)), tiny_data())
    assert not any(name.startswith("Metrics/") for name in trainer.callback_metrics)


def run_metrics(site, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    return cli("metrics", *args, env=env, timeout=300)


def test_metrics_command_prints_a_table_and_writes_json_next_to_the_checkpoint(site, tmp_path):
    install_tiny_extractor(site)
    ckpt = tiny_checkpoint(tmp_path / "run" / "tiny.ckpt")
    result = run_metrics(site, "--ckpt", ckpt, "--data", "fashion-mnist", "--metrics",
                         "fid50k_full,kid50k_full,pr50k3_full,realism1k3_full", "--num-gen", 40,
                         "--features", "tiny", "--batch", 16, "--cache-dir", tmp_path / "cache", "--no-progress")
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "run" / "tiny.ckpt.metrics.json").read_text())
    names = {"fid40_full", "kid40_full", "pr0.04k3_full_precision", "pr0.04k3_full_recall", "realism0.04k3_full"}
    assert set(record["results"]) == names
    for name in names:
        assert name in result.stdout
    scores = __import__("numpy").load(tmp_path / "run" / "tiny.ckpt.realism0.04k3_full.npy")
    assert scores.shape == (40,)
    assert record["runs"][0]["metrics"]["fid40_full"] == {"num_gen": 40, "num_real": None}


def test_metrics_command_names_a_bad_metric_and_a_wrong_file(site, tmp_path):
    result = run_metrics(site, "--ckpt", tmp_path / "missing.ckpt", "--metrics", "fid50k_fulll")
    assert result.returncode == 2 and "Unknown metric 'fid50k_fulll'" in result.stderr
    bogus = tmp_path / "notes.ckpt"
    bogus.write_text("not a checkpoint")
    result = run_metrics(site, "--ckpt", bogus, "--metrics", "fid50k_full")
    assert result.returncode == 2 and "notes.ckpt" in result.stderr
