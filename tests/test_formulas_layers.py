"""Formula tests for the FIR resampling filters, the up/down-sampling convolution, the
equalized-learning-rate layers and the minibatch-stddev layer.

Every library result is compared with an independent computation: explicit numpy loops over
pixels, a closed form (bilinear / box / nearest interpolation) or a known limit.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lightning_stylegan.nn.filters import (conv2d_resample, downsample2d, setup_filter, upfirdn2d,
                                           upsample2d)
from lightning_stylegan.nn.layers import EqualizedConv2d, EqualizedLinear
from lightning_stylegan.nn.minibatch_std import MinibatchStd

DT = torch.float64


def _rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=DT)


# ------------------------------------------------------------------------------------------------
# Independent numpy references (explicit loops)
# ------------------------------------------------------------------------------------------------

def np_upfirdn2d_direct(x, f, up, down, pad, gain):
    """Direct-sum definition, one output pixel at a time, looping over *input* pixels.

    1-D derivation (applied per axis): after zero insertion ``U[up*i] = x[i]``, padding ``p0``
    before, a true convolution with the K-tap filter and keeping every ``down``-th sample,
    ``y[r] = gain * sum_i x[i] * f[K-1 - (up*i + p0 - down*r)]`` for ``0 <= up*i + p0 - down*r < K``.
    ``pad`` is (x_before, x_after, y_before, y_after); x is the last (width) axis.
    """
    x = np.asarray(x, dtype=np.float64)
    f = np.asarray(f, dtype=np.float64)
    n, c, h, w = x.shape
    kh, kw = f.shape
    px0, px1, py0, py1 = pad
    oh = (h * up + py0 + py1 - kh) // down + 1
    ow = (w * up + px0 + px1 - kw) // down + 1
    out = np.zeros((n, c, oh, ow))
    for r in range(oh):
        for s in range(ow):
            for i in range(h):
                ty = up * i + py0 - down * r
                if not 0 <= ty < kh:
                    continue
                for j in range(w):
                    tx = up * j + px0 - down * s
                    if not 0 <= tx < kw:
                        continue
                    out[:, :, r, s] += gain * x[:, :, i, j] * f[kh - 1 - ty, kw - 1 - tx]
    return out


def np_zero_insert(x, up):
    """``U[.., up*i, up*j] = x[.., i, j]``, zeros elsewhere, size ``up`` times larger."""
    n, c, h, w = x.shape
    u = np.zeros((n, c, h * up, w * up))
    for i in range(h):
        for j in range(w):
            u[:, :, up * i, up * j] = x[:, :, i, j]
    return u


def np_true_conv_full(x, k):
    """Full 2-D *convolution* (kernel flipped) of each [N, C] plane with the 2-D kernel k."""
    n, c, h, w = x.shape
    kh, kw = k.shape
    out = np.zeros((n, c, h + kh - 1, w + kw - 1))
    for i in range(h):
        for j in range(w):
            for a in range(kh):
                for b in range(kw):
                    out[:, :, i + a, j + b] += x[:, :, i, j] * k[a, b]
    return out


def np_correlate_multi(x, w, stride=1, padding=0):
    """Plain cross-correlation (what torch calls conv2d) with explicit loops: x [N,I,H,W],
    w [O,I,k,k], zero padding on every side."""
    x = np.pad(x, [(0, 0), (0, 0), (padding, padding), (padding, padding)])
    n, i_ch, h, wd = x.shape
    o_ch, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, o_ch, oh, ow))
    for r in range(oh):
        for s in range(ow):
            patch = x[:, :, r * stride:r * stride + kh, s * stride:s * stride + kw]  # [N,I,kh,kw]
            for o in range(o_ch):
                out[:, o, r, s] = (patch * w[o][None]).sum(axis=(1, 2, 3))
    return out


# ------------------------------------------------------------------------------------------------
# FIR filter (StyleGAN2 Appendix B: bilinear [1,3,3,1] filtering in all up/down-sampling layers)
# ------------------------------------------------------------------------------------------------

def test_setup_filter_is_normalized_outer_product():
    """StyleGAN2 Appendix B ("bilinear filtering in all up/downsampling layers"): the 2-D filter is
    the separable [1,3,3,1] x [1,3,3,1] kernel normalized to unit DC gain, i.e. np.outer / 64."""
    f = setup_filter().double().numpy()
    expected = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0
    np.testing.assert_allclose(f, expected, rtol=0, atol=1e-7)
    assert abs(f.sum() - 1) < 1e-6
    # Separable: rank one, and each row proportional to [1,3,3,1].
    assert np.linalg.matrix_rank(f, tol=1e-6) == 1
    np.testing.assert_allclose(setup_filter([1, 2, 1]).double().numpy(), np.outer([1, 2, 1], [1, 2, 1]) / 16,
                               atol=1e-7)


@pytest.mark.parametrize("taps", [(1, 3, 3, 1), (1, 1)])
def test_upsample2d_dc_gain_and_shape(taps):
    """StyleGAN2 Appendix B: up-sampling with gain up**2 keeps the DC level -- a constant image
    stays exactly constant away from the zero-padded border; output is exactly 2x the size."""
    f = setup_filter(taps)
    x = torch.full((1, 2, 6, 5), 3.25, dtype=DT)
    y = upsample2d(x, f)
    assert y.shape == (1, 2, 12, 10)
    torch.testing.assert_close(y[..., 2:-2, 2:-2], torch.full_like(y[..., 2:-2, 2:-2], 3.25),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("taps", [(1, 3, 3, 1), (1, 1)])
def test_downsample2d_dc_gain_and_shape(taps):
    """StyleGAN2 Appendix B: the unit-sum FIR low-pass keeps a constant image constant in the
    interior; output is exactly half the size."""
    f = setup_filter(taps)
    x = torch.full((2, 1, 8, 12), -1.5, dtype=DT)
    y = downsample2d(x, f)
    assert y.shape == (2, 1, 4, 6)
    torch.testing.assert_close(y[..., 1:-1, 1:-1], torch.full_like(y[..., 1:-1, 1:-1], -1.5),
                               rtol=0, atol=1e-12)


def test_upsample2d_is_bilinear_interpolation_in_the_interior():
    """StyleGAN2 Appendix B "bilinear filtering": the [1,3,3,1] 2x up-sampler is, away from the
    border, exactly half-pixel-centred bilinear interpolation: out[2m] = .25 x[m-1] + .75 x[m],
    out[2m+1] = .75 x[m] + .25 x[m+1] per axis (closed form = F.interpolate align_corners=False)."""
    x = _rand(2, 3, 5, 6, seed=1)
    y = upsample2d(x, setup_filter())
    ref = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(y[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], rtol=0, atol=1e-12)
    # The explicit per-axis closed form at one interior pixel, too.
    m, k = 2, 3
    row = lambda a, b: 0.75 * x[..., a, :] + 0.25 * x[..., b, :]  # noqa: E731
    r_even = row(m, m - 1)  # out row 2m
    expected = 0.75 * r_even[..., k] + 0.25 * r_even[..., k + 1]  # out column 2k+1
    torch.testing.assert_close(y[..., 2 * m, 2 * k + 1], expected, rtol=0, atol=1e-12)


def test_box_filter_limits():
    """Known limits of the FIR resampler (StyleGAN2 Appendix B machinery): with the [1,1] box
    filter, downsample2d is 2x2 average pooling and upsample2d is nearest-neighbour up-sampling."""
    x = _rand(2, 2, 6, 8, seed=2)
    f = setup_filter([1, 1])
    torch.testing.assert_close(downsample2d(x, f), F.avg_pool2d(x, 2), rtol=0, atol=1e-12)
    torch.testing.assert_close(upsample2d(x, f), F.interpolate(x, scale_factor=2, mode="nearest"),
                               rtol=0, atol=1e-12)


def test_downsample2d_closed_form():
    """StyleGAN2 Appendix B: the [1,3,3,1] 2x down-sampler averages (x[2r-1] + 3x[2r] + 3x[2r+1]
    + x[2r+2]) / 8 per axis, centred on each 2x2 block (closed form, checked at interior pixels)."""
    x = _rand(1, 1, 8, 8, seed=3)[0, 0].numpy()
    y = downsample2d(torch.from_numpy(x)[None, None], setup_filter())[0, 0].numpy()
    t = np.array([1, 3, 3, 1]) / 8
    for r in (1, 2):
        for s in (1, 2):
            expected = sum(t[a] * t[b] * x[2 * r - 1 + a, 2 * s - 1 + b] for a in range(4) for b in range(4))
            assert abs(y[r, s] - expected) < 1e-12


@pytest.mark.parametrize("up,down,pad", [
    (2, 1, (2, 1, 2, 1)),      # the upsample2d padding
    (2, 1, (3, 0, 1, 2)),      # asymmetric, different per axis
    (1, 2, (1, 1, 1, 1)),      # the downsample2d padding
    (1, 2, (2, 0, 0, 3)),
    (2, 1, (-1, 2, 1, -2)),    # negative padding crops
    (3, 2, (1, 2, 2, 1)),      # up and down together
])
def test_upfirdn2d_matches_direct_sum(up, down, pad):
    """upfirdn2d (StyleGAN2 Appendix B resampling, NVlabs upfirdn2d semantics: zero insertion,
    pad, true convolution with the FIR filter times gain, keep every down-th pixel) against the
    direct-sum formula evaluated with explicit numpy loops. The filter is separable with unit sum
    (upfirdn2d's documented contract, like setup_filter's) but asymmetric and different per axis
    (3 y-taps x 4 x-taps), so that filter flipping and the x/y axis order are both checked."""
    x = _rand(2, 2, 5, 6, seed=4)
    ty = torch.tensor([1.0, 2.0, 5.0], dtype=DT) / 8
    tx = torch.tensor([4.0, 1.0, 3.0, 2.0], dtype=DT) / 10
    f = torch.outer(ty, tx)  # rows: y taps, columns: x taps
    got = upfirdn2d(x, f, up=up, down=down, padding=pad, gain=1.7).numpy()
    expected = np_upfirdn2d_direct(x.numpy(), f.numpy(), up, down, pad, 1.7)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11)


@pytest.mark.parametrize("up,down,pad", [
    (2, 1, (2, 1, 2, 1)), (2, 1, (-1, 2, 1, -2)), (1, 2, (1, 1, 1, 1)), (1, 2, (2, 0, 0, 3)),
    (3, 2, (1, 2, 2, 1)), (1, 3, (0, 2, 1, 1)), (1, 1, (1, 1, 1, 1)),
])
def test_upfirdn2d_backward_is_its_adjoint_and_twice_differentiable(up, down, pad):
    """upfirdn2d's own backward (the adjoint upfirdn2d: flipped filter, up and down swapped) and
    double backward (R1, path length) against finite differences, odd sizes included."""
    ty = torch.tensor([1.0, 2.0, 5.0], dtype=DT) / 8
    tx = torch.tensor([4.0, 1.0, 3.0, 2.0], dtype=DT) / 10
    f = torch.outer(ty, tx)
    x = _rand(2, 2, 5, 6, seed=21).requires_grad_(True)

    def op(t):
        return upfirdn2d(t, f, up=up, down=down, padding=pad, gain=1.7)

    assert torch.autograd.gradcheck(op, (x,))
    assert torch.autograd.gradgradcheck(op, (x,))


# ------------------------------------------------------------------------------------------------
# Convolution with 2x up/down-sampling (NVlabs conv2d_resample semantics)
# ------------------------------------------------------------------------------------------------

def _np_up_conv_reference(x, w, f, padding, up=2):
    """Transposed conv with *unflipped* w (NVlabs flip_weight=False for up-sampling layers) then
    FIR, built independently: zero-insert, true full convolution with w, true full convolution with
    f * up**2, then crop.

    NVlabs pads the up-sampled image by ``p0 = padding + (fk + up - 1) // 2`` in front of the
    combined kernel (w then f, support kw + fk - 1); a full convolution has ``(kw-1) + (fk-1)`` in
    front, so the output starts at ``crop = (kw - 1) + (fk - 1) - p0`` and is ``up * H`` long.
    """
    kw, fk = w.shape[-1], f.shape[-1]
    u = np_zero_insert(x, up)
    # true convolution with w: sum over input channels of per-channel full convolutions
    n, i_ch, hu, wu = u.shape
    o_ch = w.shape[0]
    t = np.zeros((n, o_ch, hu + kw - 1, wu + kw - 1))
    for o in range(o_ch):
        for i in range(i_ch):
            t[:, o] += np_true_conv_full(u[:, i:i + 1], w[o, i])[:, 0]
    t = np_true_conv_full(t, f * up ** 2)
    p0 = padding + (fk + up - 1) // 2
    crop = (kw - 1) + (fk - 1) - p0
    h, wd = x.shape[-2:]
    return t[:, :, crop:crop + up * h, crop:crop + up * wd]


@pytest.mark.parametrize("kw,padding", [(3, 1), (1, 0)])
def test_conv2d_resample_up_matches_zero_insert_true_conv_fir(kw, padding):
    """StyleGAN2 Appendix B up-sampling conv (NVlabs semantics): conv2d_resample(up=2) equals
    zero insertion, then a *true* convolution with w (i.e. conv2d with w flipped = transposed
    conv with the unflipped weight), then [1,3,3,1] filtering with gain 4; output exactly 2H x 2W.
    Reference computed with explicit numpy loops."""
    x = _rand(2, 3, 4, 5, seed=6)
    w = _rand(2, 3, kw, kw, seed=7)
    f = setup_filter().to(DT)
    got = conv2d_resample(x, w, f, up=2, padding=padding).numpy()
    expected = _np_up_conv_reference(x.numpy(), w.numpy(), f.numpy(), padding)
    assert got.shape == (2, 2, 8, 10) == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11)


def test_conv2d_resample_up_uses_unflipped_weight():
    """NVlabs semantics of StyleGAN2 up-sampling layers: with a one-hot 3x3 kernel the up-conv
    equals upsample2d shifted by the *unflipped* offset of the hot tap (a centred delta reduces
    exactly to upsample2d -- the known limit); a flipped-weight implementation would shift the
    other way."""
    x = _rand(1, 1, 6, 6, seed=8)
    f = setup_filter().to(DT)
    up_x = upsample2d(x, f)
    delta = torch.zeros(1, 1, 3, 3, dtype=DT)
    delta[0, 0, 1, 1] = 1
    torch.testing.assert_close(conv2d_resample(x, delta, f, up=2, padding=1), up_x, rtol=0, atol=1e-12)
    corner = torch.zeros(1, 1, 3, 3, dtype=DT)
    corner[0, 0, 0, 0] = 1
    # transposed conv, unflipped: T[o] = sum_i U[i] w[o - i]; the hot tap at 0 gives T[o] = U[o]
    # where the centre tap gives U[o - 1], so the result is upsample2d advanced by one pixel
    # (a flipped weight would put the hot tap at 2 and delay it by one pixel instead).
    y = conv2d_resample(x, corner, f, up=2, padding=1)
    torch.testing.assert_close(y[..., :-1, :-1], up_x[..., 1:, 1:], rtol=0, atol=1e-12)
    assert not torch.allclose(y[..., 1:, 1:], up_x[..., :-1, :-1])


@pytest.mark.parametrize("kw,padding", [(3, 1), (1, 0)])
def test_conv2d_resample_down_matches_filter_then_strided_conv(kw, padding):
    """StyleGAN2 Appendix B down-sampling conv (NVlabs semantics): [1,3,3,1] low-pass with
    padding ``padding + (fk-down+1)//2`` / ``padding + (fk-down)//2``, then a stride-2 correlation
    with w; for a 1x1 kernel the same as filtering+decimating then the 1x1 conv. Reference: numpy
    loops (direct-sum FIR, explicit strided correlation)."""
    x = _rand(2, 3, 8, 6, seed=9)
    w = _rand(2, 3, kw, kw, seed=10)
    f = setup_filter().to(DT)
    got = conv2d_resample(x, w, f, down=2, padding=padding).numpy()
    p0, p1 = padding + 1, padding + 1  # (4-2+1)//2, (4-2)//2
    if kw == 1:
        y = np_upfirdn2d_direct(x.numpy(), f.numpy(), 1, 2, (p0, p1, p0, p1), 1.0)
        expected = np_correlate_multi(y, w.numpy())
    else:
        y = np_upfirdn2d_direct(x.numpy(), f.numpy(), 1, 1, (p0, p1, p0, p1), 1.0)
        expected = np_correlate_multi(y, w.numpy(), stride=2)
    assert got.shape == (2, 2, 4, 3) == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11)
    if kw == 3:  # known limit: a centred delta kernel reduces to downsample2d
        delta = torch.zeros(1, 1, 3, 3, dtype=DT)
        delta[0, 0, 1, 1] = 1
        torch.testing.assert_close(conv2d_resample(x[:, :1], delta, f, down=2, padding=1),
                                   downsample2d(x[:, :1], f), rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# Equalized learning rate (PGGAN; StyleGAN2 Appendix B "equalized learning rate")
# ------------------------------------------------------------------------------------------------

def test_equalized_linear_formula_with_explicit_numbers():
    """Equalized lr (StyleGAN2 Appendix B, PGGAN Sec. 4.1): EqualizedLinear computes
    x @ (W * lr_mul / sqrt(in)).T + b * lr_mul, checked against hand-computed numbers."""
    layer = EqualizedLinear(4, 2, lr_multiplier=0.5, bias_init=0.0).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0, 0.0, -1.0], [0.5, 0.0, 4.0, 2.0]]))
        layer.bias.copy_(torch.tensor([2.0, -4.0]))
    x = torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 0.0, -1.0, 3.0]], dtype=DT)
    # gain = 0.5 / sqrt(4) = 0.25; row0: W0.x = 2 -> 0.5 + 2*0.5 = 1.5; W1.x = 6.5 -> 1.625 - 2
    # row1: W0.x = 2 - 3 = -1 -> -0.25 + 1 = 0.75; W1.x = 1 - 4 + 6 = 3 -> 0.75 - 2 = -1.25
    expected = torch.tensor([[1.5, -0.375], [0.75, -1.25]], dtype=DT)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-12)


def test_equalized_linear_lrelu_and_lr_multiplier():
    """Equalized lr with the mapping network's 100x lower learning rate (StyleGAN2 Appendix B):
    stored weights ~ N(0, 1/lr_mul^2) so the effective weight 0.01 * stored / sqrt(in) is ~N(0,
    1/in); output is lrelu(x @ W_eff.T + b * lr_mul, 0.2) * sqrt(2) (numpy reference)."""
    torch.manual_seed(11)
    layer = EqualizedLinear(64, 64, activation="lrelu", lr_multiplier=0.01, bias_init=3.0)
    stored = layer.weight.detach().double().numpy()
    assert abs(stored.std() - 100.0) / 100.0 < 0.05  # initial std ~ 1 / lr_mul
    assert abs(stored.mean()) < 5.0
    x = _rand(3, 64, seed=12)
    w_eff = 0.01 * stored / math.sqrt(64)
    assert abs(w_eff.std() - 1 / 8) < 0.01
    pre = x.numpy() @ w_eff.T + 3.0 * 0.01
    expected = np.where(pre >= 0, pre, 0.2 * pre) * math.sqrt(2)
    np.testing.assert_allclose(layer.double()(x).detach().numpy(), expected, rtol=1e-10, atol=1e-10)


def test_equalized_linear_gradient_scaling():
    """Equalized lr (PGGAN Sec. 4.1): since W_eff = lr_mul / sqrt(in) * W_stored, the gradient
    w.r.t. the stored weight is the gradient w.r.t. W_eff times lr_mul / sqrt(in) (and the bias
    gradient is scaled by lr_mul); closed form for loss = sum(output): dL/dW[j,i] = g * sum_n x[n,i]."""
    layer = EqualizedLinear(16, 3, lr_multiplier=0.01).double()
    x = _rand(5, 16, seed=13)
    layer(x).sum().backward()
    gain = 0.01 / math.sqrt(16)
    expected = gain * x.sum(dim=0).expand(3, 16)
    torch.testing.assert_close(layer.weight.grad, expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(layer.bias.grad, torch.full((3,), 0.01 * 5, dtype=DT), rtol=1e-12, atol=0)


def test_equalized_conv2d_lrelu_formula():
    """Equalized lr for convolutions (StyleGAN2 Appendix B): output = lrelu(conv(x, W / sqrt(in *
    k * k)) + b, 0.2) * sqrt(2), 'same' padding, checked with explicit numpy loops; with gain g
    and conv_clamp c the result is (that * g) clamped to [-c*g, c*g] (NVlabs bias_act)."""
    torch.manual_seed(14)
    layer = EqualizedConv2d(3, 4, kernel_size=3, activation="lrelu").double()
    with torch.no_grad():
        layer.bias.copy_(_rand(4, seed=15))
    x = _rand(2, 3, 5, 5, seed=16)
    w = layer.weight.detach().numpy() / math.sqrt(3 * 9)
    pre = np_correlate_multi(x.numpy(), w, padding=1) + layer.bias.detach().numpy()[None, :, None, None]
    expected = np.where(pre >= 0, pre, 0.2 * pre) * math.sqrt(2)
    np.testing.assert_allclose(layer(x).detach().numpy(), expected, rtol=1e-10, atol=1e-12)

    layer.conv_clamp = 0.3
    clamped = np.clip(expected * 0.5, -0.15, 0.15)
    np.testing.assert_allclose(layer(x, gain=0.5).detach().numpy(), clamped, rtol=1e-10, atol=1e-12)
    assert (np.abs(expected * 0.5) > 0.15).any()  # the clamp is actually exercised


# ------------------------------------------------------------------------------------------------
# Minibatch standard deviation (PGGAN Sec. 3; StyleGAN2 Appendix B)
# ------------------------------------------------------------------------------------------------

def np_mbstd(x, group_size, num_channels):
    """Explicit loop: sample n is grouped with n % M + k*M (M = N / G), NVlabs' interleaved
    grouping; population std over the group (+1e-8 under the sqrt), averaged over the channels of
    each of the ``num_channels`` slices and all pixels, appended as constant feature maps."""
    n, c, h, w = x.shape
    g = n if group_size is None else min(group_size, n)
    m = n // g
    cf = c // num_channels
    extra = np.zeros((n, num_channels, h, w))
    for s in range(n):
        members = [s % m + k * m for k in range(g)]
        for fi in range(num_channels):
            acc = 0.0
            for ch in range(fi * cf, (fi + 1) * cf):
                for i in range(h):
                    for j in range(w):
                        vals = [x[t, ch, i, j] for t in members]
                        mean = sum(vals) / g
                        acc += math.sqrt(sum((v - mean) ** 2 for v in vals) / g + 1e-8)
            extra[s, fi] = acc / (cf * h * w)
    return np.concatenate([x, extra], axis=1)


@pytest.mark.parametrize("n,group_size,num_channels", [
    (8, 4, 1), (8, 2, 2), (6, 3, 1), (4, 8, 1), (4, None, 2), (3, 4, 1),
])
def test_minibatch_std_matches_group_loop(n, group_size, num_channels):
    """Minibatch stddev (PGGAN Sec. 3, StyleGAN2 Appendix B) with NVlabs grouping
    (reshape(G, -1, ...): samples i and i + k*N/G form a group), also with group_size larger than
    the batch (one group = whole batch) and group_size=None, against an explicit per-sample loop."""
    x = _rand(n, 4, 3, 2, seed=17)
    got = MinibatchStd(group_size=group_size, num_channels=num_channels)(x).numpy()
    expected = np_mbstd(x.numpy(), group_size, num_channels)
    assert got.shape == (n, 4 + num_channels, 3, 2)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_minibatch_std_interleaved_grouping():
    """PGGAN/StyleGAN2 minibatch stddev, NVlabs grouping: with G=2 and N=4 the groups are {0, 2}
    and {1, 3} (not {0, 1}, {2, 3}); closed form for one channel, one pixel: std = |a - b| / 2."""
    x = torch.tensor([0.0, 10.0, 2.0, 30.0], dtype=DT).reshape(4, 1, 1, 1)
    y = MinibatchStd(group_size=2)(x)[:, 1, 0, 0]
    expected = torch.tensor([1.0, 10.0, 1.0, 10.0], dtype=DT)
    torch.testing.assert_close(y, expected, rtol=1e-6, atol=0)


def test_minibatch_std_rejects_indivisible_batch():
    """Minibatch stddev (PGGAN Sec. 3): the group size must divide the batch."""
    with pytest.raises(ValueError):
        MinibatchStd(group_size=4)(torch.zeros(6, 2, 2, 2))
