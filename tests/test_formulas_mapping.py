"""Formula tests for the mapping network's input normalization, the truncation trick with the
tracked w_avg (StyleGAN v1, Karras et al. 2019, Appendix B "Truncation trick in W":
w' = w_avg + psi (w - w_avg); used with psi = 0.5 in StyleGAN2 Fig. 12, 002_0a18e98dc55024d1.txt;
NVlabs semantics for w_avg tracking and truncation_cutoff) and the noise inputs.

References are hand computations (lerp written out, norms of differences) and known limits
(psi = 0 -> the average image, psi = 1 -> unchanged, zero noise strength == no noise).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lightning_stylegan.networks import Generator
from lightning_stylegan.nn.mapping import truncate
from lightning_stylegan.nn.norms import normalize_2nd_moment

DT = torch.float64


def small_generator(normalization="demod", seed=0):
    torch.manual_seed(seed)
    return Generator(img_resolution=16, img_channels=3, z_dim=32, w_dim=32, channel_base=256,
                     channel_max=32, mapping_layers=2, normalization=normalization)


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


# ------------------------------------------------------------------------------------------------
# Mapping input normalization (StyleGAN Sec. 2 / PGGAN pixel norm on z)
# ------------------------------------------------------------------------------------------------

def test_normalize_2nd_moment_unit_mean_square():
    """StyleGAN mapping-network input normalization (PGGAN pixelwise norm; same form as PIN
    paper 000_2d004fc061d5976e.txt Eq. 3 over features): z / sqrt(mean(z^2) + 1e-8) gives
    every row unit mean square; explicit per-row loop reference."""
    z = _rand(4, 7, seed=1) * torch.tensor([[0.1], [1.0], [10.0], [300.0]], dtype=DT)
    y = normalize_2nd_moment(z)
    ms = z.square().mean(dim=1)
    # exactly ms / (ms + eps), i.e. 1 up to the eps of the smallest row (ms ~ 3e-3 there)
    torch.testing.assert_close(y.square().mean(dim=1), ms / (ms + 1e-8), rtol=1e-12, atol=0)
    torch.testing.assert_close(y.square().mean(dim=1), torch.ones(4, dtype=DT), rtol=0, atol=1e-5)
    zn = z.numpy()
    for r in range(4):
        ms = sum(v * v for v in zn[r]) / 7
        np.testing.assert_allclose(y[r].numpy(), zn[r] / math.sqrt(ms + 1e-8), rtol=1e-12, atol=0)
    # along another dimension: unit mean square per column
    torch.testing.assert_close(normalize_2nd_moment(z, dim=0).square().mean(dim=0), torch.ones(7, dtype=DT),
                               rtol=0, atol=1e-7)


def test_mapping_is_invariant_to_the_scale_of_z():
    """Consequence of the 2nd-moment normalization of z (StyleGAN mapping network): scaling z by a
    positive constant leaves w unchanged."""
    G = small_generator().eval()
    z = torch.randn(3, 32)
    torch.testing.assert_close(G.mapping(z * 7.5), G.mapping(z), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# Truncation trick (StyleGAN v1 Appendix B; StyleGAN2 Fig. 12 uses psi = 0.5; NVlabs cutoff)
# ------------------------------------------------------------------------------------------------

def test_truncate_limits_and_scaling():
    """Truncation trick (StyleGAN v1 Appendix B) w' = w_avg + psi (w - w_avg): psi = 0 gives w_avg exactly, psi = 1 leaves
    ws unchanged, and every style vector's distance to w_avg scales by exactly psi (also for psi
    < 0 and > 1, where the direction flips / extrapolates)."""
    ws = _rand(3, 4, 6, seed=2)
    w_avg = _rand(6, seed=3)
    torch.testing.assert_close(truncate(ws, w_avg, 0.0), w_avg.expand_as(ws), rtol=0, atol=0)
    torch.testing.assert_close(truncate(ws, w_avg, 1.0), ws, rtol=0, atol=1e-15)
    d0 = ws - w_avg
    for psi in (0.3, 0.7, -0.5, 1.8):
        d = truncate(ws, w_avg, psi) - w_avg
        torch.testing.assert_close(d.norm(dim=-1), abs(psi) * d0.norm(dim=-1), rtol=1e-12, atol=1e-12)
        cos = (d * d0).sum(-1) / (d.norm(dim=-1) * d0.norm(dim=-1))
        torch.testing.assert_close(cos, torch.full_like(cos, math.copysign(1.0, psi)), rtol=0, atol=1e-12)
    # 2-D ws [N, w_dim] too
    torch.testing.assert_close(truncate(ws[:, 0], w_avg, 0.25), w_avg + 0.25 * (ws[:, 0] - w_avg),
                               rtol=1e-12, atol=1e-12)


def test_truncate_cutoff_only_touches_first_styles():
    """Truncation trick (StyleGAN v1 Appendix B) with truncation_cutoff (NVlabs): only ws[:, :cutoff] move towards w_avg, the
    remaining styles are returned unchanged, and the input is not modified in place."""
    ws = _rand(2, 5, 4, seed=4)
    original = ws.clone()
    w_avg = _rand(4, seed=5)
    out = truncate(ws, w_avg, 0.5, cutoff=2)
    torch.testing.assert_close(out[:, :2], w_avg + 0.5 * (ws[:, :2] - w_avg), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out[:, 2:], ws[:, 2:], rtol=0, atol=0)
    torch.testing.assert_close(ws, original, rtol=0, atol=0)


def test_generator_truncation_psi():
    """Truncation trick (StyleGAN v1 Appendix B) through Generator(z, truncation_psi): psi = 0 maps every z to w_avg, hence
    the same image for all z (= synthesis of w_avg); psi = 1 is untruncated; intermediate psi
    scales each w's distance to w_avg by psi; the cutoff leaves later styles alone."""
    G = small_generator().eval()
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn(32))
    w_avg = G.mapping.w_avg.clone()
    z = torch.randn(3, 32)
    ws = G.mapping(z)
    ws0 = G.mapping(z, truncation_psi=0)
    torch.testing.assert_close(ws0, w_avg.expand_as(ws0), rtol=0, atol=0)
    torch.testing.assert_close(G.mapping(z, truncation_psi=1), ws, rtol=0, atol=0)
    ws_half = G.mapping(z, truncation_psi=0.4)
    torch.testing.assert_close((ws_half - w_avg).norm(dim=-1), 0.4 * (ws - w_avg).norm(dim=-1),
                               rtol=1e-5, atol=1e-6)
    ws_cut = G.mapping(z, truncation_psi=0.4, truncation_cutoff=3)
    torch.testing.assert_close(ws_cut[:, :3], ws_half[:, :3], rtol=0, atol=0)
    torch.testing.assert_close(ws_cut[:, 3:], ws[:, 3:], rtol=0, atol=0)

    img0 = G(z, truncation_psi=0, noise_mode="const")
    torch.testing.assert_close(img0, img0[:1].expand_as(img0), rtol=0, atol=1e-6)
    avg_img = G.synthesis(w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1), noise_mode="const")
    torch.testing.assert_close(img0[:1], avg_img, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(G(z, noise_mode="const"), img0, atol=1e-4)
    torch.testing.assert_close(G.mapping.w_avg, w_avg, rtol=0, atol=0)  # eval: never updated


def test_w_avg_update_in_train_mode_only():
    """Tracked average of W, w_avg = E[f(z)] of StyleGAN v1 Appendix B, as NVlabs' running
    average (w_avg_beta = 0.995): after a forward in train
    mode w_avg == mean_n(w) + 0.995 (w_avg_old - mean_n(w)) (lerp written out); in eval mode, or
    with update_w_avg=False, w_avg is unchanged."""
    G = small_generator()
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn(32))
    old = G.mapping.w_avg.clone().double()
    z = torch.randn(5, 32)
    G.eval()
    w = G.mapping(z)[:, 0].double()  # untruncated w, all ws identical
    torch.testing.assert_close(G.mapping.w_avg.double(), old, rtol=0, atol=0)
    G.mapping(z, update_w_avg=True)
    torch.testing.assert_close(G.mapping.w_avg.double(), old, rtol=0, atol=0)

    G.train()
    G.mapping(z, update_w_avg=False)
    torch.testing.assert_close(G.mapping.w_avg.double(), old, rtol=0, atol=0)
    G(z)
    mean = w.mean(dim=0)
    expected = mean + 0.995 * (old - mean)
    torch.testing.assert_close(G.mapping.w_avg.double(), expected, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(G.mapping.w_avg.double(), old, atol=1e-4)


# ------------------------------------------------------------------------------------------------
# Noise inputs (StyleGAN Sec. 2 "B"; StyleGAN2 Appendix B)
# ------------------------------------------------------------------------------------------------

def _set_noise_strength(G, value):
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(value)


@pytest.mark.parametrize("normalization", ["demod", "adain"])
def test_noise_modes(normalization):
    """Per-pixel noise inputs (StyleGAN Sec. 2, StyleGAN2 Appendix B), with non-zero strength:
    noise_mode='const' is deterministic, 'random' differs between calls, and 'none' equals the
    known limit of zero noise strength (with either of the other modes)."""
    G = small_generator(normalization).eval()
    _set_noise_strength(G, 0.5)
    z = torch.randn(2, 32)
    const1, const2 = G(z, noise_mode="const"), G(z, noise_mode="const")
    torch.testing.assert_close(const1, const2, rtol=0, atol=0)
    rand1, rand2 = G(z, noise_mode="random"), G(z, noise_mode="random")
    assert not torch.allclose(rand1, rand2, atol=1e-4)
    none = G(z, noise_mode="none")
    assert not torch.allclose(none, const1, atol=1e-4)

    _set_noise_strength(G, 0.0)
    torch.testing.assert_close(G(z, noise_mode="random"), none, rtol=0, atol=1e-7)
    torch.testing.assert_close(G(z, noise_mode="const"), none, rtol=0, atol=1e-7)
