"""A few real training steps of R3GAN (``r3gan`` G and D through their installed entry points, the
``rpgan`` loss, R1 and R2 in D's main pass) with the installed ``lightning-stylegan fit``, at 16x16
on the embedded Fashion-MNIST images with tiny widths, without and with labels."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

pytest.importorskip("lightning_stylegan_r3gan",
                    reason="lightning-stylegan-r3gan is not installed; run `pip install -e plugins/r3gan`")

REPO = Path(__file__).resolve().parents[3]
COMMAND = shutil.which("lightning-stylegan", path=str(Path(sys.executable).parent)) or "lightning-stylegan"
BATCH, STEPS = 4, 3
G_OPTIONS = {"WidthPerStage": [16, 16, 8], "CardinalityPerStage": [4, 4, 2], "BlocksPerStage": [1, 1, 1]}
D_OPTIONS = {"WidthPerStage": [8, 16, 16], "CardinalityPerStage": [2, 4, 4], "BlocksPerStage": [1, 1, 1]}
R3GAN = ["--model.generator.topology", "r3gan", "--model.discriminator.topology", "r3gan", "--model.loss", "rpgan",
         "--r1.gamma", "0.05", "--r2.gamma", "0.05", "--r1.interval", "1", "--r2.interval", "1",
         "--model.ema_rampup", "null", "--model.style_mixing_prob", "0", "--path_length.weight", "0",
         "--model.generator.z_dim", "16", "--model.generator.synthesis_options", json.dumps(G_OPTIONS),
         "--model.discriminator.topology_options", json.dumps(D_OPTIONS)]
# The quickstart recipe at 16x16, 3 steps of 4 images, no metrics, sample grids or validation.
TINY = ["--config", "recipes/quickstart.yaml", "--data.resolution", "16", "--data.batch_size", str(BATCH),
        "--data.max_images", "64", "--data.val_images", "8", "--samples.every_kimg", "0",
        "--checkpoints.every_kimg", "1", "--trainer.enable_progress_bar", "false", "--trainer.log_every_n_steps", "1",
        "--metrics.metrics", "[]", "--validate_at_end", "false", "--model.total_kimg", str(STEPS * BATCH / 1000)]


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    """``lightning-stylegan *args`` in the repository on one thread: forked from core's test fork
    server (``tests/cli_run.py``) when this checkout has it, else a new interpreter; 240 s at most."""
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    if (REPO / "tests" / "cli_run.py").exists():
        sys.path.append(str(REPO / "tests"))
        from cli_run import cli
        return cli(*args, env=env, timeout=240)
    return subprocess.run([COMMAND, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("r3gan_fit")
    commands = {labels: ["fit", *TINY, *R3GAN, "--data.use_labels", str(labels).lower(),
                         "--trainer.default_root_dir", str(root / str(labels))] for labels in (False, True)}
    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(commands, pool.map(run_cli, commands.values())))
    return root, results


@pytest.mark.parametrize("labels", [False, True], ids=["unconditional", "labels"])
def test_fit_trains_r3gan_with_r1_and_r2(runs, labels):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, results = runs
    result = results[labels]
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(root / str(labels) / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["counters"]["images_seen"] == STEPS * BATCH
    hparams = checkpoint["hyper_parameters"]
    assert hparams["generator"]["synthesis_options"] == G_OPTIONS
    assert hparams["discriminator"]["topology_options"] == D_OPTIONS
    assert hparams["label_dim"] == (10 if labels else 0)
    for kind in ("generator", "discriminator"):
        assert checkpoint["plugins"][kind] == {"name": "r3gan", "distribution": "lightning-stylegan-r3gan",
                                               "version": "0.1.0"}
    state = checkpoint["state_dict"]
    assert ("G.synthesis.EmbeddingLayer.weight" in state) == ("D.EmbeddingLayer.weight" in state) == labels
    assert all(torch.isfinite(value).all() for value in state.values() if value.is_floating_point())
    # Fix-up's zero-initialized last convolutions have moved: gradients reached every block.
    last_convs = [key for key in state if key.startswith(("G.", "D.")) and key.endswith("LinearLayer3.Layer.weight")]
    assert len(last_convs) == 6 and all(torch.count_nonzero(state[key]) for key in last_convs)
    (events,) = (root / str(labels) / "lightning_logs" / "version_0").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0}).Reload()
    for tag in ("Loss/G/loss", "Loss/D/loss", "Loss/r1_penalty", "Loss/r2_penalty"):
        values = accumulator.Scalars(tag)
        assert [event.step for event in values] == [BATCH * (step + 1) for step in range(STEPS)], tag
        assert all(math.isfinite(event.value) and event.value >= 0 for event in values), (tag, values)
