"""R2: the zero-centred gradient penalty on generated images (Roth et al. 2017; R3GAN, Huang et al.
2024, Eq. 3: gamma / 2 E ||grad_x D(x)||^2 over x = G(z)), a callback with R1's rules."""
from __future__ import annotations

import pytest
import torch

from lightning_stylegan.errors import ConfigError
from lightning_stylegan.networks import build_discriminator
from lightning_stylegan.training.penalties import gradient_penalty
from lightning_stylegan.training.regularizers import R1, R2, PathLength
from test_train_loop import steps, tiny_data, tiny_model, trainer


def test_the_penalty_is_the_squared_norm_of_a_finite_difference_gradient():
    """Central differences of sum_i D(x_i) (minibatch stddev couples the samples, so the sum is
    what the penalty differentiates) in float64: error O(h^2) ~ 1e-10 of the values."""
    torch.manual_seed(0)
    D = build_discriminator("residual", img_resolution=8, img_channels=1, channel_base=64, channel_max=8,
                            mbstd_group_size=2).double()
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    h, grad = 1e-5, torch.zeros_like(x)
    with torch.no_grad():
        for index in range(x.numel()):
            step = torch.zeros(x.numel(), dtype=torch.float64)
            step[index] = h
            step = step.view_as(x)
            grad.view(-1)[index] = (D(x + step).sum() - D(x - step).sum()) / (2 * h)
    x_in = x.clone().requires_grad_(True)
    torch.testing.assert_close(gradient_penalty(D(x_in), x_in), grad.square().sum(dim=[1, 2, 3]), rtol=1e-7, atol=0)
    assert R2(gamma=4.0).loss(torch.tensor([3.0]), images_seen=0).item() == 6.0  # gamma / 2 x penalty


def count_d_calls(model) -> list[bool]:
    """Whether each D call's input requires grad (a penalty is taken at it), in order."""
    calls = []
    model.D.register_forward_pre_hook(lambda d, args: calls.append(args[0].requires_grad) if d.training else None)
    return calls


def test_r1_and_r2_not_lazy_share_ds_main_pass(tmp_path):
    """As R3GAN's official trainer: one D pass scores reals and fakes, both penalties join D's loss."""
    model = tiny_model(total_kimg=steps(3))
    calls, recorded, record = count_d_calls(model), [], model._record
    model._record = lambda values: recorded.extend(values) or record(values)
    trainer(tmp_path, R1(gamma=1.0, interval=1), R2(gamma=1.0, interval=1), PathLength(weight=0)).fit(model, tiny_data())
    # per step: G's phase (fakes with G's graph), D's phase (fakes, reals; both require grad)
    assert calls == [True, True, True] * 3 and model.counters["d_reg_steps"] == 0
    assert recorded.count("Loss/r1_penalty") == recorded.count("Loss/r2_penalty") == 3


def test_lazy_r1_and_r2_share_ds_regularization_pass(tmp_path):
    model = tiny_model(total_kimg=steps(4))
    calls = count_d_calls(model)
    fit = trainer(tmp_path, R1(gamma=1.0, interval=2), R2(gamma=1.0, interval=2), PathLength(weight=0))
    fit.fit(model, tiny_data())
    main = [True, False, False]  # G's fakes carry G's graph; D's main pass takes no penalty
    assert calls == (main + [True, True]) + main + (main + [True, True]) + main
    assert model.counters["d_reg_steps"] == 2
    assert fit.optimizers[1].param_groups[0]["lr"] == pytest.approx(0.002 * 2 / 3)  # c = k / (k + 1)


def test_r2_alone_is_lazy_on_the_d_step_fakes_and_adjusts_ds_adam(tmp_path):
    model = tiny_model(total_kimg=steps(2))
    calls = count_d_calls(model)
    fit = trainer(tmp_path, R1(gamma=0.0), R2(gamma=1.0, interval=4), PathLength(weight=0))
    fit.fit(model, tiny_data())
    assert calls == [True, False, False, True] + [True, False, False]
    assert fit.optimizers[1].param_groups[0]["lr"] == pytest.approx(0.002 * 4 / 5)


def test_r1_and_r2_with_different_intervals_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="R1 and R2 share D's regularization pass.*--r1.interval 16 and --r2.interval 4"):
        trainer(tmp_path, R1(gamma=1.0), R2(gamma=1.0, interval=4)).fit(tiny_model(total_kimg=steps(1)), tiny_data())
