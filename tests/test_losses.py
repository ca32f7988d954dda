"""The adversarial loss plugins (``lightning_stylegan.losses``): each built-in against an explicit
per-sample computation of its paper's equations (Python loops, ``math`` in float64), which inputs
G's phase shows D, a few real training steps with ``hinge`` and ``rpgan`` (the D calls of each phase
and the logged G loss), the errors of an unknown name or option, and RpGAN's pairing under DDP:
two gloo processes (``loss_ddp_worker.py``) against one process."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import Logger

from lightning_stylegan import registry
from lightning_stylegan.errors import ConfigError
from lightning_stylegan.losses.base import AdversarialLoss
from lightning_stylegan.losses.hinge import Hinge
from lightning_stylegan.losses.logistic import Logistic
from lightning_stylegan.losses.rpgan import RelativisticPairing

from cli_run import TINY, cli, free_port
from test_train_loop import BATCH, steps, tiny_data, tiny_model, trainer

BUILT_INS = {"logistic": Logistic, "hinge": Hinge, "rpgan": RelativisticPairing}
TESTS = os.path.dirname(os.path.abspath(__file__))


def logits(seed: int, n: int = 9, scale: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(real, fake) logits [n, 1] in float64, within +-8 so that the paper's literal formulas (log of a
    sigmoid) keep float64's precision, with the fakes shifted below the reals as in training."""
    generator = torch.Generator().manual_seed(seed)
    real = (torch.randn(n, 1, generator=generator, dtype=torch.float64) * scale + 0.5).clamp(-8, 8)
    fake = (torch.randn(n, 1, generator=generator, dtype=torch.float64) * scale - 0.5).clamp(-8, 8)
    return real, fake


def sigmoid(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t))


def assert_per_sample(got: torch.Tensor, expected: list[float], rel: float) -> None:
    assert got.shape == (len(expected), 1), got.shape  # one loss per sample, D's logits' shape
    for value, want in zip(got.flatten().tolist(), expected):
        assert value == pytest.approx(want, rel=rel, abs=1e-300)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("dtype, rel", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_logistic_is_goodfellows_eq_1_with_the_non_saturating_generator(seed, dtype, rel):
    """Goodfellow et al. 2014, Eq. 1: D maximizes log D(x) + log(1 - D(G(z))) with D(.) = sigmoid of the
    logit, i.e. minimizes -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z)))); G, non-saturating (Section 3),
    maximizes log D(G(z)), i.e. minimizes -log sigmoid(D(G(z)))."""
    real, fake = logits(seed)
    d_expected, g_expected = [], []
    for r, f in zip(real.flatten().tolist(), fake.flatten().tolist()):
        d_expected.append(-math.log(sigmoid(r)) - math.log(1.0 - sigmoid(f)))
        g_expected.append(-math.log(sigmoid(f)))
    loss = Logistic()
    assert_per_sample(loss.discriminator(real.to(dtype), fake.to(dtype)), d_expected, rel)
    assert_per_sample(loss.generator(fake.to(dtype), None), g_expected, rel)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("dtype, rel", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_hinge_is_lim_and_ye_eqs_8_9(seed, dtype, rel):
    """Lim & Ye 2017, Eqs. 8-9 (SAGAN, Zhang et al. 2019, Eq. 7): D minimizes
    E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]; G minimizes -E[D(G(z))]."""
    real, fake = logits(seed, scale=1.0)  # around the margins +-1, so both sides of each max occur
    d_expected, g_expected = [], []
    for r, f in zip(real.flatten().tolist(), fake.flatten().tolist()):
        d_expected.append(max(0.0, 1.0 - r) + max(0.0, 1.0 + f))
        g_expected.append(-f)
    loss = Hinge()
    assert_per_sample(loss.discriminator(real.to(dtype), fake.to(dtype)), d_expected, rel)
    assert_per_sample(loss.generator(fake.to(dtype), real.to(dtype)), g_expected, rel)
    assert any(r > 1 for r in real.flatten().tolist()) and any(r < 1 for r in real.flatten().tolist())


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("dtype, rel", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_rpgan_is_the_relativistic_pairing_of_r3gan_eq_2(seed, dtype, rel):
    """Jolicoeur-Martineau 2018 (RpGAN); Huang et al. 2024, Eq. 2, with f(t) = -log sigmoid(t) =
    softplus(-t): D minimizes E[f(D(x_i) - D(G(z_i)))], G minimizes E[f(D(G(z_i)) - D(x_i))], fake i
    paired with real i of the batch."""
    real, fake = logits(seed)
    d_expected, g_expected = [], []
    for i in range(len(real)):
        r, f = real[i, 0].item(), fake[i, 0].item()
        d_expected.append(math.log(1.0 + math.exp(-(r - f))))
        g_expected.append(math.log(1.0 + math.exp(-(f - r))))
    loss = RelativisticPairing()
    assert_per_sample(loss.discriminator(real.to(dtype), fake.to(dtype)), d_expected, rel)
    assert_per_sample(loss.generator(fake.to(dtype), real.to(dtype)), g_expected, rel)
    # The pairing matters: fake i with real i + 1 is another objective.
    rolled = loss.discriminator(real, fake.roll(1, 0)).mean().item()
    assert abs(rolled - sum(d_expected) / len(d_expected)) > 1e-3


def test_which_losses_show_g_the_reals():
    assert {name: cls.generator_sees_reals for name, cls in BUILT_INS.items()} == \
        {"logistic": False, "hinge": False, "rpgan": True}
    for name, cls in BUILT_INS.items():
        assert registry.load("loss", name) is cls and issubclass(cls, AdversarialLoss)
        assert cls.api_version == registry.API_VERSION and cls.description
        assert registry.spec("loss", name).distribution == "lightning-stylegan"
    assert AdversarialLoss.generator_sees_reals is False


def test_the_default_loss_is_logistic():
    model = tiny_model()
    assert model.hparams["loss"] == "logistic" and model.hparams["loss_options"] == {}
    assert isinstance(model.loss, Logistic) and model.plugins()["loss"] == "logistic"


class Capture(Logger):
    """The metrics the module writes to its logger, in memory."""

    def __init__(self):
        super().__init__()
        self.logged: list[tuple[int, dict]] = []

    @property
    def name(self) -> str:
        return "capture"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.logged.append((step, dict(metrics)))


class DCalls(pl.Callback):
    """Each D call of the training steps: which input (``real`` when it is the step's real batch,
    else ``fake``) and D's logits, in order."""

    def __init__(self, D: torch.nn.Module):
        self.calls: list[tuple[str, torch.Tensor]] = []
        self.real: torch.Tensor | None = None
        D.register_forward_pre_hook(self._input)
        D.register_forward_hook(lambda module, args, output: self.calls.append((self.kind, output.detach().clone())))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.real = batch[0].detach().clone()

    def _input(self, module, args) -> None:
        self.kind = "real" if torch.equal(args[0], self.real) else "fake"


def run_steps(tmp_path, loss: str, n: int) -> tuple[pl.LightningModule, DCalls, Capture]:
    """``n`` training steps of the tiny 8x8 networks with ``loss``, without R1, R2 or path length
    (their passes would call D more) and without validation."""
    model = tiny_model(total_kimg=steps(n), loss=loss)
    calls, capture = DCalls(model.D), Capture()
    trainer(tmp_path, calls, logger=capture, limit_val_batches=0).fit(model, tiny_data())
    assert model.counters["g_steps"] == n
    return model, calls, capture


def losses_logged(capture: Capture, tag: str) -> list[float]:
    return [metrics[tag] for _, metrics in capture.logged if tag in metrics]


def test_hinge_trains_and_shows_g_only_the_fakes(tmp_path):
    model, calls, capture = run_steps(tmp_path, "hinge", 3)
    assert model.hparams["loss"] == "hinge" and isinstance(model.loss, Hinge)
    # per step: G phase D(fake); D phase D(fake), D(real)
    assert [kind for kind, _ in calls.calls] == ["fake", "fake", "real"] * 3
    for tag in ("Loss/G/loss", "Loss/D/loss"):
        values = losses_logged(capture, tag)
        assert len(values) == 3 and all(math.isfinite(v) for v in values), (tag, values)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # the logged D loss of a step is Eqs. 8-9 on that step's D-phase logits
    for step in range(3):
        (_, fake), (_, real) = calls.calls[3 * step + 1:3 * step + 3]
        expected = sum(max(0.0, 1 - r) + max(0.0, 1 + f)
                       for r, f in zip(real.flatten().tolist(), fake.flatten().tolist()))
        assert losses_logged(capture, "Loss/D/loss")[step] == pytest.approx(expected / BATCH, rel=1e-6)


def test_rpgan_trains_and_g_phase_scores_the_fakes_and_the_steps_reals(tmp_path):
    """RpGAN's G loss needs D's logits of the step's reals: D is called on the fakes and then on the
    reals in both phases, and the logged ``Loss/G/loss`` of a step is R3GAN Eq. 2 (G's side) on the
    logits recorded in that step's G phase, fake i paired with real i."""
    model, calls, capture = run_steps(tmp_path, "rpgan", 3)
    assert model.hparams["loss"] == "rpgan" and isinstance(model.loss, RelativisticPairing)
    assert [kind for kind, _ in calls.calls] == ["fake", "real", "fake", "real"] * 3
    g_logged, d_logged = losses_logged(capture, "Loss/G/loss"), losses_logged(capture, "Loss/D/loss")
    assert len(g_logged) == len(d_logged) == 3
    for step in range(3):
        (_, g_fake), (_, g_real), (_, d_fake), (_, d_real) = calls.calls[4 * step:4 * step + 4]
        g_expected = d_expected = 0.0
        for i in range(BATCH):
            g_expected += math.log(1 + math.exp(-(g_fake[i, 0].item() - g_real[i, 0].item())))
            d_expected += math.log(1 + math.exp(-(d_real[i, 0].item() - d_fake[i, 0].item())))
        assert g_logged[step] == pytest.approx(g_expected / BATCH, rel=1e-6)
        assert d_logged[step] == pytest.approx(d_expected / BATCH, rel=1e-6)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_an_unknown_loss_name_lists_the_installed_ones():
    with pytest.raises(registry.PluginError) as error:
        tiny_model(loss="hingee")
    message = str(error.value)
    assert "Unknown loss plugin 'hingee'. Did you mean 'hinge'?" in message
    assert "Available loss plugins: " in message and all(name in message for name in BUILT_INS)


@pytest.mark.parametrize("loss, options, message", [
    ("rpgan", {"margin": 1.0},
     "model.loss_options: the loss plugin 'rpgan' has no option 'margin'; its options are: none"),
    ("hinge", {"gamma": 1.0}, "model.loss_options: the loss plugin 'hinge' has no option 'gamma'"),
])
def test_an_unknown_option_names_model_loss_options(loss, options, message):
    with pytest.raises(ConfigError) as error:
        tiny_model(loss=loss, loss_options=options)
    assert message in str(error.value)


def test_the_command_line_reports_a_bad_loss_name_or_option():
    name = cli("fit", *TINY, "--model.loss", "rpgann", timeout=120)
    assert name.returncode == 2 and "error: Unknown loss plugin 'rpgann'. Did you mean 'rpgan'?" in name.stderr, \
        name.stderr[-2000:]
    assert "Traceback" not in name.stderr
    option = cli("fit", *TINY, "--model.loss", "rpgan", "--model.loss_options", '{"margin": 1}', timeout=120)
    assert option.returncode == 2, option.stderr[-2000:]
    assert "error: model.loss_options: the loss plugin 'rpgan' has no option 'margin'" in option.stderr


# ----------------------------------------------------------------------------- RpGAN under DDP
def single_process(pairing: str) -> dict:
    """The reference: one process runs G and D on each rank's half as that rank does (D's
    minibatch-stddev groups stay within a half), then takes the mean over all 8 pairs as one
    objective, fake i with real i (``pairing="within"``: no pair crosses the halves) or fake i with
    real i + 4 mod 8 (``"crossed"``: every pair crosses), and back-propagates it once per phase.

    Also ``spread``: per gradient element, the sum of the absolute contributions of the network's
    calls (each G call, each D call) to it, for the rounding bound of the test below."""
    from loss_ddp_worker import PER_RANK, WORLD, batches, grads, networks

    G, D = networks()
    z, reals = batches()
    halves = [slice(r * PER_RANK, (r + 1) * PER_RANK) for r in range(WORLD)]
    loss = RelativisticPairing()
    pair = (lambda fake: fake) if pairing == "within" else (lambda fake: fake.roll(PER_RANK, 0))

    def spread(value: torch.Tensor, network: torch.nn.Module, calls: list[torch.Tensor]) -> dict:
        names, params = zip(*network.named_parameters())
        upstream = torch.autograd.grad(value, calls, retain_graph=True)
        total = [torch.zeros_like(p) for p in params]
        for output, grad_output in zip(calls, upstream):
            parts = torch.autograd.grad(output, params, grad_output, retain_graph=True, allow_unused=True)
            total = [t + (part.abs() if part is not None else 0) for t, part in zip(total, parts)]
        return dict(zip(names, total))

    fakes = [G(z[h]) for h in halves]
    fake_calls, real_calls = [D(fake) for fake in fakes], [D(reals[h]) for h in halves]
    fake_logits, real_logits = torch.cat(fake_calls), torch.cat(real_calls)
    loss_g = loss.generator(pair(fake_logits), real_logits).mean()
    out = {"G_spread": spread(loss_g, G, fakes), "D_spread_g_phase": spread(loss_g, D, fake_calls + real_calls)}
    loss_g.backward()
    out |= {"loss_g": loss_g.detach(), "g_fake": fake_logits.detach(), "G_grad": grads(G),
            "D_grad_g_phase": grads(D)}
    D.zero_grad(set_to_none=True)
    fake_calls, real_calls = [D(fake.detach()) for fake in fakes], [D(reals[h]) for h in halves]
    loss_d = loss.discriminator(torch.cat(real_calls), pair(torch.cat(fake_calls))).mean()
    out["D_spread"] = spread(loss_d, D, fake_calls + real_calls)
    loss_d.backward()
    return out | {"loss_d": loss_d.detach(), "D_grad": grads(D)}


def test_rpgan_under_ddp_pairs_within_each_rank_and_averages_the_ranks(tmp_path, one_thread):
    """Two gloo processes, each with its own 4 fakes and 4 reals, G and D in DistributedDataParallel:
    each rank pairs its own samples and DDP averages the ranks' gradients, so every gradient is that
    of the mean over all 8 within-rank pairs, and not that of a pairing across ranks.

    Tolerance, derived: each rank runs exactly the float32 operations the reference runs on its half
    (one thread everywhere, batches of 4, the same minibatch-stddev groups; the reference's 1/8 is
    the rank's 1/4 times DDP's 1/2, and scaling by a power of 2 is exact). What differs is only how a
    parameter's gradient sums the contributions c of the network's calls: the reference adds D's 4
    (fakes and reals of both halves) in autograd's order, <= 3 float32 additions; a rank adds its 2,
    and the all-reduce adds the ranks' sums, 2 more. Each addition is off by at most u times the sum
    of |c| (u = 2^-24), so |DDP - reference| <= 5u sum|c| per element, checked with 8u (``spread`` is
    sum|c|). G, called once per half, has one addition on each side of two terms: exact. The crossed
    pairing is off by more than 1e-3 of the largest gradient."""
    out = tmp_path / "out"
    out.mkdir()
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [TESTS, os.environ.get("PYTHONPATH")])),
                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2",
                        "OMP_NUM_THREADS": "1"}
    command = [sys.executable, os.path.join(TESTS, "loss_ddp_worker.py"), str(out)]
    procs = [subprocess.Popen(command, env=env | {"RANK": str(rank), "LOCAL_RANK": str(rank)}, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for rank in range(2)]
    try:
        results = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (_, err) in zip(procs, results):
        assert proc.returncode == 0, err[-3000:]
    ranks = [torch.load(out / f"rank{rank}.pt", weights_only=True) for rank in range(2)]
    within, crossed = single_process("within"), single_process("crossed")

    # Each rank's D saw exactly the reference's half: the same logits, bit for bit.
    assert torch.equal(torch.cat([r["g_fake"] for r in ranks]), within["g_fake"])
    # The objective: the mean of the ranks' losses is the mean over all within-rank pairs.
    # (D is untrained, its logits close together: the crossed loss is off by 2e-4 of it, 200x the tolerance.)
    for key in ("loss_g", "loss_d"):
        mean = float(sum(r[key] for r in ranks) / 2)
        assert mean == pytest.approx(float(within[key]), rel=1e-6)
        assert abs(mean - float(crossed[key])) > 2e-5 * abs(mean), key
    u = 2.0 ** -24
    for key, spread in (("G_grad", "G_spread"), ("D_grad_g_phase", "D_spread_g_phase"), ("D_grad", "D_spread")):
        assert ranks[0][key].keys() == within[key].keys() and len(within[key]) > 1
        largest = max(g.abs().max().item() for g in within[key].values())
        far = 0.0
        for name, expected in within[key].items():
            got = ranks[0][key][name]
            assert torch.equal(got, ranks[1][key][name]), (key, name)  # all-reduced: the same on both
            error, bound = (got - expected).abs(), 8 * u * within[spread][name]
            assert (error <= bound).all(), (key, name, (error - bound).max().item())
            far = max(far, (crossed[key][name] - expected).abs().max().item() / largest)
        assert far > 1e-3, key  # a pairing across ranks would have been seen
    assert all(torch.equal(ranks[0]["G_grad"][name], g) for name, g in within["G_grad"].items())
    # RpGAN sees only differences of logits: D's output bias gets no gradient.
    assert within["D_grad"]["b4.out.bias"].abs().max() <= 1e-6 * largest
