"""Formula tests for the training terms against closed forms (002_0a18e98dc55024d1.txt):
R1, path length (Section 3.2, Eqs. 4-5), lazy-regularization Adam adjustment (Appendix B) and the
generator EMA (NVlabs' half-life form)."""
from __future__ import annotations

import math

import pytest
import torch

from lightning_stylegan.networks import Generator
from lightning_stylegan.training.ema import ema_beta, update_ema
from lightning_stylegan.training.penalties import gamma_pl, gradient_penalty, path_lengths
from lightning_stylegan.training.regularizers import PathLength, R1


def test_r1_of_a_quadratic_discriminator_is_the_squared_image_norm():
    """R1 (Mescheder et al. 2018, used in StyleGAN2 Appendix B): for D(x) = 1/2 ||x||^2 the
    gradient is x, so the penalty is ||x||^2 per sample; for D(x) = <a, x> it is ||a||^2."""
    x = torch.randn(5, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    logits = 0.5 * x.square().sum(dim=[1, 2, 3])
    assert torch.allclose(gradient_penalty(logits, x), x.detach().square().sum(dim=[1, 2, 3]))
    a = torch.randn(3, 4, 4, dtype=torch.float64)
    linear = (x * a).sum(dim=[1, 2, 3])
    assert torch.allclose(gradient_penalty(linear, x), a.square().sum().expand(5))
    assert torch.allclose(R1(gamma=10.0).loss(torch.tensor([2.0]), images_seen=0), torch.tensor([10.0]))  # gamma / 2


def test_r1_penalty_is_differentiable_for_its_minimization():
    w = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    x = torch.randn(4, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    penalty = gradient_penalty((w * x.square()).sum(dim=[1, 2, 3]), x)  # grad = 2 w x, penalty 4 w^2 |x|^2
    (dw,) = torch.autograd.grad(penalty.sum(), w)
    assert torch.allclose(dw, 8 * w.detach() * x.detach().square().sum())


def test_path_length_of_a_linear_generator_is_the_projected_noise_norm():
    """Eq. 4 on g(w) = sum_l M_l w_l: J_{w_l}^T y = M_l^T y, so the length is
    sqrt(mean_l ||M_l^T y||^2) with y the noise path_lengths draws (N(0, I) / sqrt(H W))."""
    n, layers, w_dim, c, h, w = 3, 4, 5, 2, 4, 4
    mats = torch.randn(layers, c * h * w, w_dim, dtype=torch.float64)
    ws = torch.randn(n, layers, w_dim, dtype=torch.float64, requires_grad=True)
    images = torch.einsum("lpd,nld->np", mats, ws).reshape(n, c, h, w)
    torch.manual_seed(7)
    lengths = path_lengths(images, ws)
    torch.manual_seed(7)
    y = (torch.randn(n, c, h, w, dtype=torch.float64) / math.sqrt(h * w)).reshape(n, -1)
    expected = torch.stack([
        torch.stack([(mats[l].T @ y[i]).square().sum() for l in range(layers)]).mean().sqrt()
        for i in range(n)])
    assert torch.allclose(lengths, expected)


def test_path_length_expectation_is_the_scaled_frobenius_norm():
    """E ||J^T y||^2 = ||J||_F^2 / (H W) for y ~ N(0, I) / sqrt(H W) (one layer)."""
    torch.manual_seed(0)
    h = w = 8
    mat = torch.randn(h * w, 6, dtype=torch.float64)
    ws = torch.zeros(20000, 1, 6, dtype=torch.float64, requires_grad=True)
    images = (ws[:, 0] @ mat.T).reshape(-1, 1, h, w)
    mean_square = path_lengths(images, ws).square().mean()
    assert mean_square.item() == pytest.approx(mat.square().sum().item() / (h * w), rel=0.03)


@pytest.mark.parametrize("log2_r", [3, 5, 8, 10])
def test_gamma_pl_closed_form(log2_r):
    """Eq. 5 with r = 2^k: ln 2 / (r^2 (k ln 2 - ln 2)) = 1 / ((k - 1) r^2)."""
    r = 2 ** log2_r
    assert gamma_pl(r) == pytest.approx(1 / ((log2_r - 1) * r * r), rel=1e-12)
    assert PathLength(weight=2.0).weight_at(r, num_ws=7) == 2.0


@pytest.mark.parametrize("resolution", [8, 16, 32, 64, 128, 256, 512, 1024])
def test_paper_path_length_weight_is_nvlabs_2_for_the_stylegan2_layouts(resolution):
    """Eq. 5's gamma_pl = ln 2 / (r^2 (ln r - ln 2)), for the lengths averaged over the generator's
    num_ws styles (NVlabs' pl_grads.square().sum(2).mean(1)), is NVlabs' pl_weight = 2: num_ws = 2 log2 r - 2
    and ln 2 / (ln r - ln 2) = 1 / (log2 r - 1)."""
    G = Generator(resolution, 1, z_dim=4, w_dim=4, mapping_layers=1, channel_base=4 * resolution, channel_max=4)
    assert G.num_ws == 2 * round(math.log2(resolution)) - 2
    weight = PathLength(weight="paper").weight_at(resolution, G.num_ws)
    assert weight == pytest.approx(G.num_ws * math.log(2) / (math.log(resolution) - math.log(2)), rel=1e-12)
    assert weight == pytest.approx(2.0, rel=1e-12)


def test_path_length_target_is_an_exponential_moving_average():
    """a <- a + 0.01 (mean length - a), i.e. decay 0.99 (Appendix B); penalty (length - a)^2."""
    regularizer = PathLength(decay=0.01)
    target = 0.0
    for step in range(5):
        lengths = torch.full([4], float(step + 1))
        penalty = regularizer.penalty(lengths)
        target = target + 0.01 * ((step + 1) - target)
        assert float(regularizer.pl_mean) == pytest.approx(target)
        assert torch.allclose(penalty, (lengths - target).square())
    restored = PathLength()
    restored.load_state_dict(regularizer.state_dict())
    assert float(restored.pl_mean) == pytest.approx(target)


@pytest.mark.parametrize("interval, c", [(16, 16 / 17), (8, 8 / 9), (4, 0.8), (1, 1.0)])
def test_lazy_regularization_adjustment(interval, c):
    """Appendix B: c = k / (k + 1) scales Adam's lr and is the exponent of its betas; the lazy
    loss is multiplied by k. k = 1 is the non-lazy baseline: no adjustment, no separate pass."""
    r1 = R1(gamma=1.0, interval=interval)
    assert r1.adam_ratio == pytest.approx(c)
    assert r1.loss_scale == (interval if interval > 1 else 1)
    assert r1.lazy == (interval > 1)
    assert [step for step in range(20) if r1.due(step)] == list(range(0, 20, interval))
    # As NVlabs' training loops (TF and PyTorch): c depends on the interval alone, so G's Adam of
    # config C (lazy R1, no path length, G_reg_interval 4) still runs at lr x 4/5 and betas ** 4/5.
    assert R1(gamma=0.0, interval=interval).adam_ratio == pytest.approx(c)
    assert PathLength(weight=0, interval=interval).adam_ratio == pytest.approx(c)


def test_ema_half_life_and_rampup():
    """beta = 0.5 ** (batch / half_life): after half_life images of a constant model, the EMA
    has moved half way; ramp-up caps the half-life at rampup * images seen."""
    batch, half_life_kimg = 32, 2.0
    beta = ema_beta(batch, images_seen=10 ** 9, ema_kimg=half_life_kimg, ema_rampup=0.05)
    steps = int(half_life_kimg * 1000 / batch)  # 62.5 -> use the exact power instead
    assert beta ** (half_life_kimg * 1000 / batch) == pytest.approx(0.5)
    assert beta ** steps > 0.5 > beta ** (steps + 1)
    assert ema_beta(batch, images_seen=4000, ema_kimg=10.0, ema_rampup=0.05) == pytest.approx(0.5 ** (32 / 200))
    assert ema_beta(batch, images_seen=0, ema_kimg=10.0, ema_rampup=0.05) == 0.0  # starts as a copy
    assert ema_beta(batch, images_seen=0, ema_kimg=10.0, ema_rampup=None) == pytest.approx(0.5 ** (32 / 10000))


def test_ema_update_averages_parameters_and_copies_buffers():
    model, ema = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        model.weight.fill_(2.0)
        ema.weight.fill_(1.0)
        model.running_mean.fill_(5.0)
    update_ema(ema, model, beta=0.75)
    assert torch.allclose(ema.weight, torch.full([3], 0.75 * 1.0 + 0.25 * 2.0))
    assert torch.equal(ema.running_mean, model.running_mean)
