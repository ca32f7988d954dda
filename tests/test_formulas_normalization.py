"""Formula tests for the feature normalizations: PN (Eq. 3), IN (Eqs. 4-6) and PIN (Eq. 7) of
the circular-artifact paper (000_2d004fc061d5976e.txt), AdaIN of StyleGAN v1 (Huang & Belongie),
and PIN's rho constraint.

References are explicit numpy loops over (n, c, h, w) and closed-form limits.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lightning_stylegan import registry
from lightning_stylegan.networks import Generator
from lightning_stylegan.nn.norms import (InstanceNorm, PixelInstanceNorm, PixelNorm, apply_constraints,
                                         instance_norm, pixel_norm)

DT = torch.float64
EPS = 1e-8


def _rand(*shape, seed=0, scale=1.0, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=DT) * scale + shift


def np_pixel_norm(x):
    """Eq. 3: y_chw = x_chw / sqrt(1/C sum_i x_ihw^2 + eps), one pixel at a time."""
    n, c, h, w = x.shape
    y = np.empty_like(x)
    for b in range(n):
        for i in range(h):
            for j in range(w):
                ms = sum(x[b, k, i, j] ** 2 for k in range(c)) / c
                for k in range(c):
                    y[b, k, i, j] = x[b, k, i, j] / math.sqrt(ms + EPS)
    return y


def np_instance_norm(x):
    """Eqs. 4-6: mu_c = mean over H, W (Eq. 5), sigma_c^2 = biased variance (Eq. 6),
    y = (x - mu_c) / sqrt(sigma_c^2 + eps) (Eq. 4), one feature map at a time."""
    n, c, h, w = x.shape
    y = np.empty_like(x)
    for b in range(n):
        for k in range(c):
            vals = [x[b, k, i, j] for i in range(h) for j in range(w)]
            mu = sum(vals) / (h * w)
            var = sum((v - mu) ** 2 for v in vals) / (h * w)
            for i in range(h):
                for j in range(w):
                    y[b, k, i, j] = (x[b, k, i, j] - mu) / math.sqrt(var + EPS)
    return y


# ------------------------------------------------------------------------------------------------
# PN, IN, PIN (000_2d004fc061d5976e.txt Eqs. 3-7)
# ------------------------------------------------------------------------------------------------

def test_pixel_norm_eq3():
    """PIN paper (000_2d004fc061d5976e.txt) Eq. 3 (PN): every pixel's feature vector divided by its RMS over channels;
    explicit loop reference, plus the defining property mean_c(y^2) = 1 at every pixel."""
    x = _rand(2, 5, 3, 4, seed=1, scale=3.0, shift=0.5)
    y = pixel_norm(x)
    np.testing.assert_allclose(y.numpy(), np_pixel_norm(x.numpy()), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(y.square().mean(dim=1), torch.ones(2, 3, 4, dtype=DT), rtol=0, atol=1e-7)
    torch.testing.assert_close(PixelNorm()(x), y, rtol=0, atol=0)


def test_instance_norm_eqs4_to_6():
    """PIN paper Eqs. 4-6 (IN, as in StyleGAN's AdaIN): per-feature-map zero mean and unit
    (biased) variance; explicit loop reference, plus the defining moments of the output."""
    x = _rand(2, 3, 4, 5, seed=2, scale=2.5, shift=-1.0)
    y = instance_norm(x)
    np.testing.assert_allclose(y.numpy(), np_instance_norm(x.numpy()), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(y.mean(dim=[2, 3]), torch.zeros(2, 3, dtype=DT), rtol=0, atol=1e-12)
    torch.testing.assert_close(y.var(dim=[2, 3], unbiased=False), torch.ones(2, 3, dtype=DT), rtol=0, atol=1e-7)
    torch.testing.assert_close(InstanceNorm()(x), y, rtol=0, atol=0)


def test_pin_init_and_limits():
    """PIN paper Eq. 7 and Sec. "Proposed Solution": rho is initialised at 0 (vanilla StyleGAN);
    PIN reduces to IN (Eqs. 4-6) at rho = 0 and to PN (Eq. 3) at rho = 1 (loop references)."""
    pin = PixelInstanceNorm(4).double()
    torch.testing.assert_close(pin.rho.detach(), torch.zeros(4, dtype=DT), rtol=0, atol=0)
    x = _rand(2, 4, 3, 3, seed=3, scale=2.0, shift=1.0)
    np.testing.assert_allclose(pin(x).detach().numpy(), np_instance_norm(x.numpy()), rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        pin.rho.fill_(1.0)
    np.testing.assert_allclose(pin(x).detach().numpy(), np_pixel_norm(x.numpy()), rtol=1e-12, atol=1e-12)


def test_pin_channelwise_blend_eq7():
    """PIN paper Eq. 7: y = rho . y^P + (1 - rho) . y^I with a channel-wise product, for random rho
    in (0, 1), against an explicit per-channel loop over the PN and IN loop references."""
    pin = PixelInstanceNorm(5).double()
    rho = torch.rand(5, generator=torch.Generator().manual_seed(4), dtype=DT)
    with torch.no_grad():
        pin.rho.copy_(rho)
    x = _rand(2, 5, 4, 3, seed=5, scale=1.5, shift=0.3)
    yp, yi = np_pixel_norm(x.numpy()), np_instance_norm(x.numpy())
    expected = np.empty_like(yp)
    for c in range(5):
        r = float(rho[c])
        expected[:, c] = r * yp[:, c] + (1 - r) * yi[:, c]
    np.testing.assert_allclose(pin(x).detach().numpy(), expected, rtol=1e-12, atol=1e-12)


def test_apply_constraints_clips_rho_after_sgd_step():
    """PIN paper Sec. "Proposed Solution" ("We constrained the components of rho to be 0 <= rho_i
    <= 1 by clipping"): an SGD step pushes rho outside [0, 1]; apply_constraints projects it back
    (clamp), leaving in-range components untouched."""
    pin = PixelInstanceNorm(4).double()
    opt = torch.optim.SGD(pin.parameters(), lr=1.0)
    push = torch.tensor([2.0, -3.0, 0.25, -0.5], dtype=DT)  # d loss / d rho = -push
    (-(pin.rho * push).sum()).backward()
    opt.step()
    torch.testing.assert_close(pin.rho.detach(), push, rtol=0, atol=0)  # outside for channels 0, 1
    apply_constraints(pin)
    torch.testing.assert_close(pin.rho.detach(), torch.tensor([1.0, 0.0, 0.25, 0.0], dtype=DT), rtol=0, atol=0)


def test_apply_constraints_clips_every_rho_in_a_pin_generator():
    """PIN paper Sec. "Proposed Solution" (rho in [0, 1]^C by clipping) inside a full
    Generator(normalization='pin'): after an Adam step with a huge lr every rho left [0, 1] by ~lr;
    apply_constraints(G) clamps all of them back, and only rho (no other parameter) is touched."""
    torch.manual_seed(6)
    G = Generator(img_resolution=16, img_channels=3, z_dim=32, w_dim=32, channel_base=256, channel_max=32,
                  mapping_layers=2, normalization="pin")
    rhos = [m.rho for m in G.modules() if isinstance(m, PixelInstanceNorm)]
    assert len(rhos) == 5  # b4.conv1, b8.conv0/1, b16.conv0/1
    assert all(bool((r == 0).all()) for r in rhos)
    opt = torch.optim.Adam(G.parameters(), lr=10.0)
    G(torch.randn(4, 32), noise_mode="const").square().mean().backward()
    opt.step()
    before = torch.cat([r.detach().clone() for r in rhos])
    others = {k: v.detach().clone() for k, v in G.named_parameters() if not k.endswith("rho")}
    outside = (before < 0) | (before > 1)
    assert outside.sum() > before.numel() // 2  # many really left [0, 1]
    assert (before < 0).any() and (before > 1).any()
    apply_constraints(G)
    after = torch.cat([r.detach() for r in rhos])
    assert bool(((after >= 0) & (after <= 1)).all())
    torch.testing.assert_close(after, before.clamp(0, 1), rtol=0, atol=0)
    for k, v in G.named_parameters():
        if not k.endswith("rho"):
            assert torch.equal(v.detach(), others[k]), k


# ------------------------------------------------------------------------------------------------
# AdaIN (StyleGAN v1, Huang & Belongie) through the full NormalizedStyleLayer
# ------------------------------------------------------------------------------------------------

def _np_conv_same(x, w):
    """3x3 'same' cross-correlation with explicit loops (x [N,I,H,W], w [O,I,3,3])."""
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
    n, _, h, wd = x.shape
    out = np.zeros((n, w.shape[0], h, wd))
    for i in range(h):
        for j in range(wd):
            patch = xp[:, :, i:i + 3, j:j + 3]
            for o in range(w.shape[0]):
                out[:, o, i, j] = (patch * w[o][None]).sum(axis=(1, 2, 3))
    return out


@pytest.mark.parametrize("noise_mode", ["none", "const"])
def test_adain_style_layer_forward_by_hand(noise_mode):
    """StyleGAN v1 AdaIN (Huang & Belongie; PIN paper Eqs. 4-6 inside): the adain layer computes
    y_s(w) * IN(lrelu(conv(x, W / sqrt(in*9)) + noise + b, 0.2) * sqrt(2)) + y_b(w), with
    (y_s, y_b) = A(w) = w @ (W_A / sqrt(w_dim)).T + b_A and A's scale bias initialised at 1,
    shift bias at 0; per-channel noise strength (StyleGAN v1). Explicit numpy loops."""
    torch.manual_seed(7)
    layer = registry.load("normalization", "adain")().style_layer(3, 4, w_dim=5, resolution=5).double()
    torch.testing.assert_close(layer.affine.bias.detach(), torch.tensor([1.0] * 4 + [0.0] * 4, dtype=DT))
    with torch.no_grad():
        layer.bias.copy_(_rand(4, seed=8))
        layer.noise_strength.copy_(_rand(4, seed=9))
        layer.affine.bias.add_(_rand(8, seed=10, scale=0.3))
    x = _rand(2, 3, 5, 5, seed=11)
    w = _rand(2, 5, seed=12)
    got = layer(x, w, noise_mode=noise_mode).detach().numpy()

    xn, wn = x.numpy(), w.numpy()
    pre = _np_conv_same(xn, layer.weight.detach().numpy() / math.sqrt(3 * 9))
    if noise_mode == "const":
        strength = layer.noise_strength.detach().numpy()
        pre = pre + layer.noise_const.numpy()[None, None] * strength[None, :, None, None]
    pre = pre + layer.bias.detach().numpy()[None, :, None, None]
    act = np.where(pre >= 0, pre, 0.2 * pre) * math.sqrt(2)
    normed = np_instance_norm(act)
    a = wn @ (layer.affine.weight.detach().numpy() / math.sqrt(5)).T + layer.affine.bias.detach().numpy()
    expected = np.empty_like(normed)
    for b in range(2):
        for c in range(4):
            expected[b, c] = a[b, c] * normed[b, c] + a[b, 4 + c]
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)

    # AdaIN's defining property: each output map has mean y_b and std |y_s| (up to eps).
    got_t = torch.from_numpy(got)
    torch.testing.assert_close(got_t.mean(dim=[2, 3]), torch.from_numpy(a[:, 4:]), rtol=0, atol=1e-10)
    torch.testing.assert_close(got_t.std(dim=[2, 3], unbiased=False), torch.from_numpy(np.abs(a[:, :4])),
                               rtol=1e-6, atol=1e-8)


def test_pin_style_layer_uses_eq7_then_affine():
    """PIN paper Eq. 7 followed by the retained style affine y' = gamma . y + beta: a pin style
    layer with rho set to 1 equals the same layer built with the pixel (PN) plugin and identical
    weights, and with rho = 0 the adain (IN) one -- the limits of Eq. 7 at layer level."""
    torch.manual_seed(13)
    pin_layer = registry.load("normalization", "pin")().style_layer(3, 4, w_dim=5, resolution=4).double()
    with torch.no_grad():
        pin_layer.bias.copy_(_rand(4, seed=16))
    x, w = _rand(2, 3, 4, 4, seed=14), _rand(2, 5, seed=15)
    outs = {}
    for rho, other in [(1.0, "pixel"), (0.0, "adain")]:
        ref = registry.load("normalization", other)().style_layer(3, 4, w_dim=5, resolution=4).double()
        state = {k: v for k, v in pin_layer.state_dict().items() if not k.endswith("rho")}
        ref.load_state_dict(state)
        with torch.no_grad():
            pin_layer.norm.rho.fill_(rho)
        outs[other] = pin_layer(x, w, noise_mode="none")
        torch.testing.assert_close(outs[other], ref(x, w, noise_mode="none"), rtol=1e-12, atol=1e-12)
    assert not torch.allclose(outs["pixel"], outs["adain"], atol=1e-3)  # the two limits do differ
