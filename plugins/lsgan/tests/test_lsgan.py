"""Tests of the installed ``lightning-stylegan-lsgan`` plugin (``pip install ./plugins/lsgan``): the
least squares loss against an explicit per-sample computation of Mao et al. 2017, Eq. 2, its
options, its entry point, and a few training steps through the installed ``lightning-stylegan fit``.
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

lsgan = pytest.importorskip(
    "lightning_stylegan_lsgan",
    reason="lightning-stylegan-lsgan is not installed; run `pip install ./plugins/lsgan`")

from lightning_stylegan import registry  # noqa: E402
from lightning_stylegan.errors import ConfigError  # noqa: E402

DISTRIBUTION, VERSION = "lightning-stylegan-lsgan", "0.1.0"
REPO = Path(__file__).resolve().parents[3]
COMMAND = shutil.which("lightning-stylegan", path=str(Path(sys.executable).parent)) or "lightning-stylegan"
# The quickstart recipe at 8x8 with tiny networks, 3 steps of 4 images, no metrics, samples or
# validation: the run itself takes a second; the interpreter's start most of the rest.
BATCH, STEPS = 4, 3
TINY = ["--config", str(REPO / "recipes" / "quickstart.yaml"), "--data.resolution", "8",
        "--data.batch_size", str(BATCH), "--data.max_images", "64", "--data.val_images", "8",
        "--model.generator.channel_base", "64", "--model.generator.channel_max", "16",
        "--model.generator.z_dim", "16", "--model.generator.w_dim", "16",
        "--model.discriminator.channel_base", "64", "--model.discriminator.channel_max", "16",
        "--model.discriminator.mbstd_group_size", "2", "--samples.every_kimg", "0",
        "--checkpoints.every_kimg", "1", "--trainer.enable_progress_bar", "false",
        "--trainer.log_every_n_steps", "1", "--metrics.metrics", "[]", "--validate_at_end", "false",
        "--model.total_kimg", str(STEPS * BATCH / 1000)]
EQ8 = {"a": -1.0, "b": 1.0, "c": 0.0}  # the Pearson chi^2 coding; the defaults are Eq. 9's 0-1 coding


def reference(real: list[float], fake: list[float], a: float, b: float, c: float) -> tuple[list[float], list[float]]:
    """Mao et al. 2017, Eq. 2, one sample at a time in float64: D's loss
    1/2 (D(x_i) - b)^2 + 1/2 (D(G(z_i)) - a)^2 and G's loss 1/2 (D(G(z_i)) - c)^2."""
    d_loss, g_loss = [], []
    for r, f in zip(real, fake):
        d_loss.append(0.5 * (r - b) * (r - b) + 0.5 * (f - a) * (f - a))
        g_loss.append(0.5 * (f - c) * (f - c))
    return d_loss, g_loss


@pytest.mark.parametrize("options", [{}, EQ8, {"a": 0.25, "b": -2, "c": 3.5}], ids=["eq9", "eq8", "other"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_loss_is_eq_2_of_the_paper_per_sample(options, dtype):
    coding = {"a": 0.0, "b": 1.0, "c": 1.0} | options
    loss = lsgan.LeastSquares(**options)
    assert (loss.a, loss.b, loss.c) == (coding["a"], coding["b"], coding["c"])
    generator = torch.Generator().manual_seed(len(options))
    real = (torch.randn(7, 1, generator=generator, dtype=torch.float64) * 3).to(dtype)
    fake = (torch.randn(7, 1, generator=generator, dtype=torch.float64) * 3 - 1).to(dtype)
    d_expected, g_expected = reference(real.double().flatten().tolist(), fake.double().flatten().tolist(), **coding)
    d_got, g_got = loss.discriminator(real, fake), loss.generator(fake, None)
    assert d_got.shape == g_got.shape == (7, 1) and d_got.dtype == g_got.dtype == dtype  # per sample
    rtol = 1e-12 if dtype == torch.float64 else 1e-6
    for got, expected in ((d_got, d_expected), (g_got, g_expected)):
        for value, want in zip(got.flatten().tolist(), expected):
            assert value == pytest.approx(want, rel=rtol, abs=1e-30)
    # The gradients of the paper's objectives in D's outputs: D(x) - b, D(G(z)) - a, and G's D(G(z)) - c.
    real64, fake64 = real.double().requires_grad_(), fake.double().requires_grad_()
    grad_real, grad_fake = torch.autograd.grad(loss.discriminator(real64, fake64).sum(), [real64, fake64])
    (grad_g,) = torch.autograd.grad(loss.generator(fake64, None).sum(), [fake64])
    for i in range(7):
        r, f = real64[i, 0].item(), fake64[i, 0].item()
        assert grad_real[i, 0].item() == pytest.approx(r - coding["b"], rel=1e-12, abs=1e-15)
        assert grad_fake[i, 0].item() == pytest.approx(f - coding["a"], rel=1e-12, abs=1e-15)
        assert grad_g[i, 0].item() == pytest.approx(f - coding["c"], rel=1e-12, abs=1e-15)


def test_the_optimal_discriminator_is_eq_4():
    """For fixed densities p_data(x), p_g(x), D's pointwise loss 1/2 p_d (D - b)^2 + 1/2 p_g (D - a)^2
    is least at D*(x) = (b p_d + a p_g) / (p_d + p_g) (Eq. 4): checked on a grid of D values."""
    loss = lsgan.LeastSquares(**EQ8)
    p_data, p_g = 0.3, 0.7
    grid = torch.linspace(-2, 2, 4001, dtype=torch.float64)[:, None]
    pointwise = p_data * 0.5 * (grid - 1) ** 2 + p_g * 0.5 * (grid + 1) ** 2
    # the plugin's per-sample loss, weighted as the expectation over reals and fakes weights it
    weighted = p_data * loss.discriminator(grid, torch.full_like(grid, -1.0)) + \
        p_g * loss.discriminator(torch.full_like(grid, 1.0), grid)
    assert torch.allclose(weighted, pointwise, rtol=1e-12, atol=0)
    best = grid[weighted.argmin()].item()
    assert best == pytest.approx((1 * p_data + -1 * p_g) / (p_data + p_g), abs=1e-3)


def test_generator_sees_only_the_fakes():
    loss = lsgan.LeastSquares()
    assert loss.generator_sees_reals is False
    fake = torch.tensor([[0.5], [2.0]])
    assert torch.equal(loss.generator(fake, None), loss.generator(fake, torch.tensor([[9.0], [-9.0]])))


@pytest.mark.parametrize("options, message", [
    ({"a": 1.0, "b": 1.0}, "a .*and b .*must differ"),
    ({"a": 1.0, "b": 0.0, "c": 1.0}, "c .*must differ from a"),
    ({"b": float("nan")}, "b must be a finite number"),
    ({"c": float("inf")}, "c must be a finite number"),
    ({"a": True}, "a must be a finite number"),
    ({"a": "0"}, "a must be a finite number"),
])
def test_invalid_codings_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        lsgan.LeastSquares(**options)


def test_the_training_module_checks_the_options():
    """Through ``model.loss`` / ``model.loss_options`` of the training module: an unknown key, a value
    of the wrong type and an invalid coding are configuration errors naming ``model.loss_options``."""
    from lightning_stylegan.training.module import StyleGAN2

    for options, message in [({"cc": 1.0}, r"model.loss_options: .*'lsgan' has no option 'cc'; did you mean 'c'"),
                             ({"a": "low"}, r"model.loss_options.a: .*expects float"),
                             ({"a": 1, "b": 1}, r"model.loss_options .*'lsgan'.*must differ")]:
        with pytest.raises(ConfigError, match=message):
            StyleGAN2(resolution=8, channels=1, loss="lsgan", loss_options=options)


def test_discovered_through_installed_entry_point():
    registry.clear_cache()
    found = registry.index("loss")
    assert "lsgan" in found
    assert (found["lsgan"].distribution, found["lsgan"].version) == (DISTRIBUTION, VERSION)
    assert found["lsgan"].target == "lightning_stylegan_lsgan:LeastSquares"
    assert registry.load("loss", "lsgan") is lsgan.LeastSquares
    assert lsgan.LeastSquares.api_version == registry.API_VERSION


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three commands of the installed console script, side by side on one thread each: a short fit
    with ``--model.loss lsgan`` and Eq. 8's coding, a fit with a misspelled option, and the listing."""
    root = tmp_path_factory.mktemp("lsgan_fit")
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    commands = {
        "fit": ["fit", *TINY, "--trainer.default_root_dir", str(root), "--model.loss", "lsgan",
                "--model.loss_options", '{"a": -1, "b": 1, "c": 0}'],
        "typo": ["fit", *TINY, "--trainer.default_root_dir", str(root / "typo"), "--model.loss", "lsgan",
                 "--model.loss_options", '{"cc": 0}'],
        "plugins": ["plugins", "--kind", "loss"],
    }
    procs = {name: subprocess.Popen([COMMAND, *args], cwd=REPO, env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for name, args in commands.items()}
    results = {}
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=240)
            results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return root, results


def test_fit_trains_with_lsgan_and_records_it(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, results = runs
    result = results["fit"]
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["counters"]["images_seen"] == STEPS * BATCH
    assert checkpoint["hyper_parameters"]["loss"] == "lsgan"
    assert checkpoint["hyper_parameters"]["loss_options"] == {"a": -1, "b": 1, "c": 0}
    assert checkpoint["plugins"]["loss"] == {"name": "lsgan", "distribution": DISTRIBUTION, "version": VERSION}
    assert all(torch.isfinite(value).all() for value in checkpoint["state_dict"].values()
               if value.is_floating_point())
    (events,) = (root / "lightning_logs" / "version_0").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0}).Reload()
    for tag in ("Loss/G/loss", "Loss/D/loss"):
        values = accumulator.Scalars(tag)
        assert [event.step for event in values] == [BATCH * (step + 1) for step in range(STEPS)], tag
        assert all(math.isfinite(event.value) and event.value >= 0 for event in values), (tag, values)


def test_an_unknown_option_fails_naming_the_key(runs):
    root, results = runs
    result = results["typo"]
    assert result.returncode == 2, result.stderr[-3000:]
    assert "error: model.loss_options: the loss plugin 'lsgan' has no option 'cc'; did you mean 'c'?" in result.stderr
    assert "a (float), b (float), c (float)" in result.stderr
    assert "Traceback" not in result.stderr and not (root / "typo" / "checkpoints").exists()


def test_cli_lists_lsgan(runs):
    _, results = runs
    result = results["plugins"]
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.split()[:2] == ["loss", "lsgan"]]
    assert len(rows) == 1, result.stdout
    assert rows[0].split()[2:4] == [DISTRIBUTION, VERSION] and "BROKEN" not in rows[0]
    assert "least squares GAN loss" in rows[0]
