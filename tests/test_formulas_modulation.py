"""Formula tests for StyleGAN2 weight modulation / demodulation (002_0a18e98dc55024d1.txt,
Section 2.2 Eqs. 1-3, Appendix B "Weight demodulation") and the layers built on it.

References are explicit per-sample python loops over ``F.conv2d`` with weights modulated and
demodulated by hand, closed forms (Eq. 2: sigma_j = ||w'_j||) and statistical limits.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lightning_stylegan import registry
from lightning_stylegan.nn.filters import conv2d_resample, setup_filter
from lightning_stylegan.nn.modulated_conv import modulated_conv2d

DT = torch.float64


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=_gen(seed), dtype=DT)


def _styles(n, i, seed):
    """Positive styles far from 1, so modulation and demodulation both matter."""
    return 0.2 + 2.8 * torch.rand(n, i, generator=_gen(seed), dtype=DT)


def _loop_modconv(x, weight, styles, demodulate, up=1, padding=1, f=None):
    """Per-sample loop: w' = s_i * w (Eq. 1), w'' = w' / sqrt(sum_{i,k} w'^2 + 1e-8) (Eq. 3),
    then a plain (batch-1, ungrouped) convolution of that sample with its own weights."""
    outs = []
    for n in range(x.shape[0]):
        w1 = weight * styles[n].reshape(1, -1, 1, 1)  # Eq. 1
        if demodulate:
            for j in range(weight.shape[0]):  # Eq. 3, one output feature map at a time
                w1[j] = w1[j] / math.sqrt(float((w1[j] ** 2).sum()) + 1e-8)
        if up == 1:
            outs.append(F.conv2d(x[n:n + 1], w1, padding=padding))
        else:  # ungrouped conv2d_resample; its up-sampling semantics are tested in test_formulas_layers
            outs.append(conv2d_resample(x[n:n + 1], w1, f, up=up, padding=padding))
    return torch.cat(outs)


# ------------------------------------------------------------------------------------------------
# Eqs. 1-3 against an explicit per-sample loop
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_matches_per_sample_loop(demodulate):
    """StyleGAN2 (002_0a18e98dc55024d1.txt) Eq. 1 (w' = s_i w_ijk) and Eq. 3 (w'' = w' / sqrt(sum_{i,k} w'^2 + eps)): the
    fused grouped convolution equals a python loop over samples, each convolved with F.conv2d and
    its own hand-modulated (and, if demodulate, hand-demodulated) weights."""
    x = _rand(3, 4, 6, 5, seed=1)
    weight = _rand(5, 4, 3, 3, seed=2)
    styles = _styles(3, 4, seed=3)
    got = modulated_conv2d(x, weight, styles, padding=1, demodulate=demodulate, fused=True)
    expected = _loop_modconv(x, weight, styles, demodulate)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_demodulation_changes_the_result():
    """StyleGAN2 Eq. 3 is not a no-op for non-unit styles: the demodulated output differs from
    the Eq. 1-only output by exactly the per-(sample, output map) factor 1/sigma_j (Eq. 2)."""
    x = _rand(2, 3, 5, 5, seed=4)
    weight = _rand(4, 3, 3, 3, seed=5)
    styles = _styles(2, 3, seed=6)
    mod = modulated_conv2d(x, weight, styles, padding=1, demodulate=False)
    demod = modulated_conv2d(x, weight, styles, padding=1, demodulate=True)
    sigma = torch.empty(2, 4, dtype=DT)
    for n in range(2):
        for j in range(4):
            sigma[n, j] = math.sqrt(sum(float(styles[n, i]) ** 2 * float((weight[j, i] ** 2).sum())
                                        for i in range(3)))  # Eq. 2, written out
    torch.testing.assert_close(demod * (sigma ** 2 + 1e-8).sqrt()[:, :, None, None], mod,
                               rtol=1e-12, atol=1e-12)
    assert not torch.allclose(mod, demod)


def _effective_weights(weight, style, demodulate):
    """Read the per-sample effective weights out of modulated_conv2d by probing it with one-hot
    k x k inputs (no padding, 1x1 output): output j for the impulse at (i, a, b) is w_eff[j, i, a, b]."""
    o, i_ch, k, _ = weight.shape
    probes = torch.eye(i_ch * k * k, dtype=DT).reshape(-1, i_ch, k, k)
    out = modulated_conv2d(probes, weight, style.expand(probes.shape[0], -1), padding=0,
                           demodulate=demodulate)
    return out.reshape(i_ch, k, k, o).permute(3, 0, 1, 2)


def test_demodulated_effective_weights_have_unit_norm():
    """StyleGAN2 Eq. 2 -> sigma_j = 1 after Eq. 3: each output map's effective (modulated and
    demodulated) weights, read out of the layer with impulse inputs, have unit L2 norm (up to eps)
    and equal s_i w_ijk / ||s w_j|| (closed form); without demodulation they are s_i w_ijk (Eq. 1)."""
    weight = _rand(3, 2, 3, 3, seed=7)
    style = _styles(1, 2, seed=8)
    w_eff = _effective_weights(weight, style, demodulate=True)
    norms = w_eff.square().sum(dim=[1, 2, 3])
    torch.testing.assert_close(norms, torch.ones(3, dtype=DT), rtol=0, atol=1e-7)
    w_mod = weight * style.reshape(1, -1, 1, 1)
    torch.testing.assert_close(_effective_weights(weight, style, demodulate=False), w_mod, rtol=1e-12, atol=1e-12)
    closed = w_mod / w_mod.square().sum(dim=[1, 2, 3], keepdim=True).sqrt()
    torch.testing.assert_close(w_eff, closed, rtol=1e-7, atol=1e-9)


def test_demodulation_restores_unit_output_std_statistically():
    """StyleGAN2 Sec. 2.2 assumption behind Eq. 2: for i.i.d. unit-variance inputs (no padding
    effect: padding=0) the modulated conv output has std sigma_j = ||w'_j|| (Eq. 2), and after
    demodulation (Eq. 3) std 1; checked statistically on a large random input (loose tolerance)."""
    g = _gen(9)
    x = torch.randn(2, 8, 64, 64, generator=g, dtype=DT)
    weight = torch.randn(4, 8, 3, 3, generator=g, dtype=DT)
    styles = 0.2 + 2.8 * torch.rand(2, 8, generator=g, dtype=DT)
    demod = modulated_conv2d(x, weight, styles, padding=0, demodulate=True)
    std = demod.std(dim=[2, 3])
    assert torch.all((std - 1).abs() < 0.1), std
    mod = modulated_conv2d(x, weight, styles, padding=0, demodulate=False)
    sigma = (weight[None] * styles[:, None, :, None, None]).square().sum(dim=[2, 3, 4]).sqrt()
    assert (sigma - 1).abs().min() > 0.5  # the undemodulated std is far from 1 ...
    ratio = mod.std(dim=[2, 3]) / sigma
    assert torch.all((ratio - 1).abs() < 0.1), ratio  # ... and matches Eq. 2


@pytest.mark.parametrize("demodulate", [True, False])
def test_fused_up2_matches_per_sample_loop(demodulate):
    """StyleGAN2 Appendix B (grouped convolutions implement Eqs. 1 and 3): the fused path with 2x
    up-sampling (grouped transposed conv, N groups) equals a per-sample loop of ungrouped
    up-sampling convolutions with hand-(de)modulated weights."""
    x = _rand(3, 2, 4, 4, seed=10)
    weight = _rand(3, 2, 3, 3, seed=11)
    styles = _styles(3, 2, seed=12)
    f = setup_filter().to(DT)
    got = modulated_conv2d(x, weight, styles, up=2, padding=1, resample_filter=f,
                           demodulate=demodulate, fused=True)
    expected = _loop_modconv(x, weight, styles, demodulate, up=2, padding=1, f=f)
    assert got.shape == (3, 3, 8, 8)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# Fused (grouped) vs non-fused execution
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2)])
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("with_noise", [True, False])
def test_fused_and_nonfused_paths_agree(up, down, demodulate, with_noise):
    """StyleGAN2 Appendix B: the grouped-convolution implementation of Eqs. 1 and 3 (fused) and
    the "scale activations by s, shared conv, scale outputs by 1/sigma_j" implementation
    (non-fused) give the same result, with 2x up/down-sampling, with and without noise."""
    x = _rand(3, 4, 6, 6, seed=13)
    weight = _rand(5, 4, 3, 3, seed=14)
    styles = _styles(3, 4, seed=15)
    f = setup_filter().to(DT)
    out_hw = 6 * up // down
    noise = _rand(3, 1, out_hw, out_hw, seed=16) * 0.7 if with_noise else None
    kwargs = dict(noise=noise, up=up, down=down, padding=1, resample_filter=f, demodulate=demodulate)
    fused = modulated_conv2d(x, weight, styles, fused=True, **kwargs)
    nonfused = modulated_conv2d(x, weight, styles, fused=False, **kwargs)
    assert fused.shape == (3, 5, out_hw, out_hw)
    torch.testing.assert_close(fused, nonfused, rtol=1e-11, atol=1e-11)
    if with_noise:  # noise is added after (de)modulation, unscaled by it
        clean = modulated_conv2d(x, weight, styles, fused=True, **{**kwargs, "noise": None})
        torch.testing.assert_close(fused - clean, noise.expand_as(clean), rtol=0, atol=1e-11)


# ------------------------------------------------------------------------------------------------
# The StyleGAN2 synthesis layer and tRGB (Figure 2d)
# ------------------------------------------------------------------------------------------------

def _affine_by_hand(affine, w):
    """EqualizedLinear A(w) = w @ (W / sqrt(w_dim)).T + b, computed independently."""
    wd = affine.weight.shape[1]
    return w @ (affine.weight.detach() / math.sqrt(wd)).T + affine.bias.detach()


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("fused", [True, False])
def test_modulated_style_layer_forward_by_hand(up, fused):
    """StyleGAN2 Figure 2d / Eqs. 1-3: the demod style layer computes
    lrelu(demod_conv(x, A(w)) + noise_const * strength + b, 0.2) * sqrt(2): styles from the affine
    A(w) (bias init 1), per-sample hand-demodulated conv, noise added after demodulation and before
    the bias (noise_mode='const')."""
    torch.manual_seed(17)
    layer = registry.load("normalization", "demod")().style_layer(
        3, 4, w_dim=6, resolution=4 * up, up=up).double()
    with torch.no_grad():
        layer.bias.copy_(_rand(4, seed=18))
        layer.noise_strength.fill_(0.3)
    x = _rand(2, 3, 4, 4, seed=19)
    w = _rand(2, 6, seed=20)
    got = layer(x, w, noise_mode="const", fused_modconv=fused)
    styles = _affine_by_hand(layer.affine, w)
    f = setup_filter().to(DT)
    conv = _loop_modconv(x, layer.weight.detach(), styles, True, up=up, padding=1, f=f)
    pre = conv + layer.noise_const * 0.3 + layer.bias.detach().reshape(1, -1, 1, 1)
    expected = F.leaky_relu(pre, 0.2) * math.sqrt(2)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_modulated_torgb_by_hand():
    """StyleGAN2 Appendix B / Figure 2d tRGB: 1x1 modulated conv *without* demodulation (Eq. 1
    only) with styles A(w) / sqrt(in_channels) (equalized lr), then bias, linear."""
    torch.manual_seed(21)
    torgb = registry.load("normalization", "demod")().to_rgb(4, 3, w_dim=5).double()
    with torch.no_grad():
        torgb.bias.copy_(_rand(3, seed=22))
    x = _rand(2, 4, 3, 3, seed=23)
    w = _rand(2, 5, seed=24)
    styles = _affine_by_hand(torgb.affine, w) / math.sqrt(4)
    expected = _loop_modconv(x, torgb.weight.detach(), styles, False, padding=0)
    expected = expected + torgb.bias.detach().reshape(1, -1, 1, 1)
    torch.testing.assert_close(torgb(x, w), expected, rtol=1e-10, atol=1e-10)
