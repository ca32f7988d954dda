"""The ``stylegan1`` generator and discriminator topologies equal an independent float64 reference
of NVlabs' TF StyleGAN v1 (``tests/reference_stylegan1.py``): at 4x4, mid fade-in, at full
resolution, conditional, with the fused re-sampling convs from 128 px; plus v1's style count, the
constant's initialisation and the re-sampling of reals."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

import reference_stylegan1 as ref
from lightning_stylegan.analysis.layers import synthesis_layers
from lightning_stylegan.errors import ConfigError
from lightning_stylegan.networks import Generator, build_discriminator
from lightning_stylegan.nn.norms import apply_constraints
from lightning_stylegan.nn.stylegan1_ops import conv2d_downscale2d, upscale2d_conv2d
from lightning_stylegan.training.run_networks import initial_networks, network_hparams

NORMALIZATIONS = ["adain", "pixel", "pin"]
RTOL = 1e-5


def tiny_G(resolution=32, normalization="adain", progressive=True, channel_base=128, channel_max=8, seed=0):
    torch.manual_seed(seed)
    G = Generator(img_resolution=resolution, img_channels=3, z_dim=8, w_dim=8, topology="stylegan1",
                  normalization=normalization, mapping_layers=1, channel_base=channel_base,
                  channel_max=channel_max, progressive=progressive).eval()
    randomize(G)
    return G


def tiny_D(resolution=32, progressive=True, c_dim=0, channel_base=128, channel_max=8, seed=0):
    torch.manual_seed(seed)
    D = build_discriminator("stylegan1", img_resolution=resolution, img_channels=3, c_dim=c_dim,
                            channel_base=channel_base, channel_max=channel_max, progressive=progressive)
    randomize(D)
    return D


@torch.no_grad()
def randomize(module):
    """Give the zero / one initialised parameters (biases, noise strengths, const, rho) random
    values so that every parameter shows in the outputs."""
    for name, p in module.named_parameters():
        if name.endswith("rho"):
            p.uniform_(0.2, 0.8)
        elif name.endswith(("bias", "noise_strength", "const")):
            p.copy_(torch.randn_like(p) * 0.5 + (1 if name.endswith("const") else 0))


def max_rel(ours, reference):
    ours, reference = ours.detach().double(), reference.detach().double()
    err = (ours - reference).abs().max() / reference.abs().max()
    return float(err)


def ws_for(G, n=4, seed=1):
    return torch.randn(n, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
@pytest.mark.parametrize("resolution,alpha", [(4, 1.0), (16, 0.3), (32, 1.0)])
def test_generator_equals_the_reference(normalization, resolution, alpha):
    G = tiny_G(32, normalization)
    ws = ws_for(G)
    ours = G.synthesis(ws, noise_mode="const", resolution=resolution, alpha=alpha)
    expected = ref.synthesis(G.state_dict(), ws, normalization, resolution, alpha)
    assert ours.shape == expected.shape == (4, 3, resolution, resolution)
    assert max_rel(ours, expected) < RTOL


def test_fixed_generator_has_torgb_at_the_output_only_and_equals_the_reference():
    G = tiny_G(16, progressive=False)
    assert [name for name, _ in G.synthesis.named_modules() if name.endswith("torgb")] == ["b16.torgb"]
    ws = ws_for(G)
    assert max_rel(G.synthesis(ws, noise_mode="const"), ref.synthesis(G.state_dict(), ws, "adain", 16)) < RTOL


@pytest.mark.parametrize("resolution,alpha,c_dim", [(32, 1.0, 0), (16, 0.3, 0), (32, 1.0, 3), (16, 0.6, 3)])
def test_discriminator_equals_the_reference(resolution, alpha, c_dim):
    D = tiny_D(32, progressive=True, c_dim=c_dim)
    img = torch.randn(8, 3, resolution, resolution, generator=torch.Generator().manual_seed(2))
    c = torch.eye(c_dim)[torch.arange(8) % c_dim] if c_dim else None
    ours = D(img, c, alpha=alpha)
    expected = ref.discriminator(D.state_dict(), img, c, alpha)
    assert ours.shape == expected.shape == (8, 1)
    assert max_rel(ours, expected) < RTOL


def test_discriminator_head_sizes_follow_d_basic():
    D = tiny_D(32, progressive=False, c_dim=5, channel_base=64, channel_max=64)
    assert not hasattr(D.b16, "fromrgb") and hasattr(D.b32, "fromrgb")
    assert tuple(D.b32.fromrgb.weight.shape) == (2, 3, 1, 1)  # nf(res - 1) = channel_base // res
    assert tuple(D.b4.fc.weight.shape) == (32, 16 * 16)  # nf(0) = min(channel_base // 2, channel_max)
    assert tuple(D.b4.out.weight.shape) == (5, 32)  # one score per label


def test_fused_resampling_convs_equal_the_separate_ops():
    """D's fused conv + box down is the separate ops with the same kernel; G's fused transposed
    conv (as TF applies it, unflipped) is nearest up + conv with the kernel rotated by 180 degrees,
    and equals the reference's explicit scatter form of TF's conv2d_transpose."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    for k in (1, 3, 5):
        w = torch.randn(4, 3, k, k, dtype=torch.float64)
        fused = upscale2d_conv2d(x, w, fused=True)
        torch.testing.assert_close(fused, upscale2d_conv2d(x, w.flip(2, 3), fused=False))
        torch.testing.assert_close(fused, ref.fused_up_conv(x, w, math.sqrt(x.shape[1] * k * k)))
        torch.testing.assert_close(conv2d_downscale2d(x, w, fused=True), conv2d_downscale2d(x, w, fused=False))


def test_networks_at_128_fuse_from_128_and_equal_the_reference():
    G = tiny_G(128, channel_base=256, channel_max=4)
    assert [block.conv0.fused for block in G.synthesis.blocks()[1:]] == [False] * 4 + [True]
    ws = ws_for(G, n=2)
    fused = G.synthesis(ws, noise_mode="const")
    assert max_rel(fused, ref.synthesis(G.state_dict(), ws, "adain", 128)) < RTOL
    conv0 = G.synthesis.b128.conv0
    conv0.fused = False
    with torch.no_grad():
        conv0.weight.copy_(conv0.weight.flip(2, 3))  # the separate ops' equivalent kernel
    assert max_rel(fused, G.synthesis(ws, noise_mode="const").double()) < RTOL

    D = tiny_D(128, progressive=False, channel_base=256, channel_max=4)
    assert [getattr(D, f"b{r}").conv1.fused for r in D.block_resolutions] == [True] + [False] * 4
    img = torch.randn(4, 3, 128, 128, generator=torch.Generator().manual_seed(3))
    scores = D(img)
    assert max_rel(scores, ref.discriminator(D.state_dict(), img)) < RTOL
    D.b128.conv1.fused = False
    assert max_rel(scores, D(img).double()) < RTOL


@pytest.mark.parametrize("resolution", [8, 32, 256])
def test_one_style_per_layer_and_the_constant_starts_at_ones(resolution):
    torch.manual_seed(0)
    G = Generator(img_resolution=resolution, z_dim=8, w_dim=8, topology="stylegan1", normalization="adain",
                  mapping_layers=1, channel_base=1024, channel_max=4)
    assert G.num_ws == G.synthesis.num_ws == 2 * int(math.log2(resolution)) - 2
    assert torch.equal(G.synthesis.b4.const, torch.ones(4, 4, 4))
    layers = synthesis_layers(G)
    assert [layer.name for layer in layers[:4]] == ["synthesis.b4.const_epilogue", "synthesis.b4.conv1",
                                                    "synthesis.b8.conv0", "synthesis.b8.conv1"]
    assert len(layers) == G.num_ws and [layer.resolution for layer in layers[:3]] == [4, 4, 8]
    # v1's style_mod starts as the identity: the affine part is x * (0 + 1) + 0 for w = 0.
    layer = G.synthesis.b8.conv1
    assert torch.equal(layer.affine.bias, torch.zeros(8)) and torch.equal(layer.noise_strength, torch.zeros(4))


def test_pin_rho_is_clipped_by_apply_constraints():
    G = tiny_G(16, "pin")
    with torch.no_grad():
        G.synthesis.b8.conv0.norm.rho.fill_(1.7)
    apply_constraints(G)
    assert torch.equal(G.synthesis.b8.conv0.norm.rho, torch.ones(G.synthesis.b8.conv0.out_channels))


def test_demodulation_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="make_normalizer.*normalization to adain"):
        Generator(img_resolution=16, z_dim=8, w_dim=8, topology="stylegan1", normalization="demod",
                  mapping_layers=1, channel_base=64, channel_max=4)


def test_reals_and_fades_use_box_and_nearest_resampling():
    """The training module fades reals with the synthesis network's own re-sampling: v1's box
    pyramid and nearest up-scaling (its training loop's process_reals)."""
    from lightning_stylegan.training.module import StyleGAN2

    G = tiny_G(32)
    real = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    host = SimpleNamespace(G=G)
    faded = StyleGAN2._reals_at(host, real, SimpleNamespace(resolution=16, alpha=0.3))
    at16 = ref.box_down(real)
    expected = 0.3 * at16 + 0.7 * ref.nearest_up(ref.box_down(at16))
    torch.testing.assert_close(faded, expected)


def test_gradients_and_r1_double_backward_flow_through_g_and_d():
    G, D = tiny_G(16), tiny_D(16, c_dim=2)
    G.train()
    c = torch.eye(2)[[0, 1, 0, 1]]
    fake = G(torch.randn(4, 8), resolution=16, alpha=0.5)
    D(fake, c, alpha=0.5).sum().backward()
    assert all(p.grad is not None for name, p in G.synthesis.named_parameters() if "b16" in name or "b8" in name)
    real = torch.randn(4, 3, 16, 16, requires_grad=True)
    (grad,) = torch.autograd.grad(D(real, c).sum(), real, create_graph=True)
    grad.square().sum().backward()
    assert D.b16.conv1.weight.grad is not None and torch.isfinite(D.b16.conv1.weight.grad).all()


def test_a_stylegan1_topology_named_alone_has_v1s_widths():
    """TF StyleGAN's fmap_base 8192 (nf(stage) = fmap_base / 2^stage) is channel_base 16384 here; the
    other topologies keep NVlabs' cbase 32768. The run's hyper-parameters hold the resolved number."""
    hparams = network_hparams(64, 3, generator={"topology": "stylegan1", "normalization": "adain"},
                              discriminator={"topology": "stylegan1"}, growth="progressive")
    assert hparams["generator"]["channel_base"] == hparams["discriminator"]["channel_base"] == 16384
    G, D, _ = initial_networks(hparams)
    assert G.synthesis.b64.conv1.weight.shape[0] == 16384 // 64 == D.b64.conv0.weight.shape[0]
    others = network_hparams(64, 3)
    assert others["generator"]["channel_base"] == others["discriminator"]["channel_base"] == 32768
    assert Generator(img_resolution=64, topology="stylegan1", normalization="adain").init_kwargs["channel_base"] == 16384
