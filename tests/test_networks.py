"""Every normalization x generator topology x discriminator topology builds, runs forward and
backward, and supports the double backward that R1 and path-length regularization need."""
from __future__ import annotations

import math

import pytest
import torch

from lightning_stylegan.networks import Generator, build_discriminator

NORMALIZATIONS = ["adain", "pixel", "pin", "demod", "modulate", "none"]
TOPOLOGIES = ["original", "skip", "residual"]
TINY = dict(channel_base=128, channel_max=16)


def tiny_generator(resolution=8, channels=3, topology="skip", normalization="demod", c_dim=0):
    return Generator(img_resolution=resolution, img_channels=channels, z_dim=16, w_dim=16, c_dim=c_dim,
                     topology=topology, normalization=normalization, mapping_layers=2, **TINY)


def tiny_discriminator(resolution=8, channels=3, topology="residual", c_dim=0):
    return build_discriminator(topology, img_resolution=resolution, img_channels=channels, c_dim=c_dim,
                               mapping_layers=2, mbstd_group_size=2, **TINY)


def assert_all_grads(module):
    missing = [name for name, p in module.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"
    assert all(torch.isfinite(p.grad).all() for p in module.parameters())


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("resolution", [8, 16, 32])
@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_generator_forward_backward(normalization, topology, resolution, channels):
    torch.manual_seed(0)
    G = tiny_generator(resolution, channels, topology, normalization)
    assert G.num_ws == 2 * int(math.log2(resolution)) - 2
    z = torch.randn(2, 16)
    img = G(z)
    assert img.shape == (2, channels, resolution, resolution) and img.dtype == torch.float32
    assert torch.isfinite(img).all()
    img.square().mean().backward()
    # noise_const is a buffer; every parameter (noise strengths included) must receive a gradient
    assert_all_grads(G)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("resolution", [8, 16, 32])
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_discriminator_forward_backward_and_r1_double_backward(topology, resolution, channels):
    torch.manual_seed(0)
    D = tiny_discriminator(resolution, channels, topology)
    img = torch.randn(4, channels, resolution, resolution, requires_grad=True)
    logits = D(img)
    assert logits.shape == (4, 1)
    (grad,) = torch.autograd.grad(logits.sum(), img, create_graph=True)
    r1 = grad.square().sum(dim=[1, 2, 3]).mean()
    (logits.mean() + r1).backward()
    assert_all_grads(D)


@pytest.mark.parametrize("d_topology", TOPOLOGIES)
@pytest.mark.parametrize("g_topology", TOPOLOGIES)
@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_every_combination_trains_one_step_with_both_regularizers(normalization, g_topology, d_topology):
    """G main + path length (double backward through G) and D main + R1 (through D and G's image)."""
    torch.manual_seed(0)
    G, D = tiny_generator(8, 3, g_topology, normalization), tiny_discriminator(8, 3, d_topology)
    G_opt = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.0, 0.99))
    D_opt = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.0, 0.99))
    z = torch.randn(4, 16)

    ws = G.mix_styles(G.mapping(z), None, mixing_prob=1.0)
    img = G.synthesis(ws)
    loss_G = torch.nn.functional.softplus(-D(img)).mean()
    y = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
    (pl_grad,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)
    pl = pl_grad.square().sum(dim=2).mean(dim=1).sqrt().mean()
    G_opt.zero_grad()
    (loss_G + pl).backward()
    G_opt.step()

    real = torch.randn(4, 3, 8, 8, requires_grad=True)
    real_logits, fake_logits = D(real), D(G(z).detach())
    (r1_grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    loss_D = (torch.nn.functional.softplus(fake_logits) + torch.nn.functional.softplus(-real_logits)).mean()
    D_opt.zero_grad()
    (loss_D + 5 * r1_grad.square().sum(dim=[1, 2, 3]).mean()).backward()
    D_opt.step()
    assert_all_grads(D)
    assert all(torch.isfinite(p).all() for p in [*G.parameters(), *D.parameters()])


def test_channel_counts_follow_channel_base_over_resolution():
    G = Generator(img_resolution=64, channel_base=2048, channel_max=128, z_dim=8, w_dim=8, mapping_layers=1)
    channels = {block.resolution: block.conv1.weight.shape[0] for block in G.synthesis.blocks()}
    assert channels == {4: 128, 8: 128, 16: 128, 32: 64, 64: 32}
    D = build_discriminator("residual", img_resolution=64, channel_base=2048, channel_max=128)
    assert D.b64.conv0.weight.shape[0] == 32 and D.b64.conv1.weight.shape[0] == 64
    assert D.b4.conv.weight.shape[0] == 128


def test_conditional_generator_and_discriminator():
    torch.manual_seed(0)
    G, D = tiny_generator(8, 3, c_dim=5), tiny_discriminator(8, 3, c_dim=5)
    z, c = torch.randn(4, 16), torch.eye(5)[:4]
    img = G(z, c)
    assert D(img, c).shape == (4, 1)
    assert not torch.allclose(G(z, c, noise_mode="const"), G(z, torch.eye(5)[1:], noise_mode="const"))
    with pytest.raises(ValueError, match=r"conditional: c must have shape \[N, 5\]"):
        G(z)


def test_style_mixing_takes_late_styles_from_a_second_latent():
    torch.manual_seed(0)
    G = tiny_generator(16)
    ws = G.mapping(torch.randn(3, 16))
    mixed = G.mix_styles(ws, None, mixing_prob=1.0)
    same = (mixed == ws).all(dim=2).all(dim=0)  # per style index
    cutoff = int(same.logical_not().nonzero()[0])
    assert 1 <= cutoff < G.num_ws
    assert same[:cutoff].all() and not same[cutoff:].any()
    assert torch.equal(G.mix_styles(ws, None, mixing_prob=0.0), ws)


@pytest.mark.parametrize("bad, message", [
    (dict(img_resolution=48), "power of two"),
    (dict(img_resolution=2048), "power of two"),
    (dict(img_resolution=4), "at least 8"),
    (dict(img_channels=2), "img_channels must be one of"),
    (dict(normalization="adaIN"), "Unknown normalization plugin 'adaIN'. Did you mean 'adain'"),
    (dict(topology="resnet"), "Unknown generator plugin 'resnet'"),
])
def test_bad_configurations_fail_with_a_clear_message(bad, message):
    kwargs = dict(z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=8) | bad
    with pytest.raises((ValueError, LookupError), match=message):
        Generator(**kwargs)


def test_discriminator_rejects_images_of_the_wrong_size():
    D = tiny_discriminator(16)
    with pytest.raises(ValueError, match=r"expects images of shape \[N, 3, R, R\] with R = 16, got \(2, 3, 32, 32\)"):
        D(torch.randn(2, 3, 32, 32))


def test_memory_layout_changes_no_value(monkeypatch):
    """G and D give the same images, logits and gradients in NCHW as in channels_last (the CPU
    default, nn/memory_format.py), up to float rounding."""
    from lightning_stylegan.nn import memory_format
    from tiny_networks import tiny_module

    module = tiny_module(resolution=16, seed=11)
    z = torch.randn(4, module.G.z_dim, generator=torch.Generator().manual_seed(12))

    def run():
        module.G.zero_grad(set_to_none=True)
        images = module.G(z, None, noise_mode="const")
        logits = module.D(images)
        logits.sum().backward()
        return images.detach(), logits.detach(), module.G.synthesis.b16.conv1.weight.grad.clone()

    assert memory_format.preferred_memory_format(z) == torch.channels_last
    channels_last = run()
    monkeypatch.setattr(memory_format, "preferred_memory_format", lambda x: torch.contiguous_format)
    nchw = run()
    for a, b in zip(channels_last, nchw):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_discriminator_plugin_takes_its_own_options_checked_against_its_signature():
    """``model.discriminator.topology_options``: the plugin's own keyword options (here residual's
    resample_filter), checked as the other plugin options; a checkpoint from before the option
    existed resumes as one without plugin options."""
    from lightning_stylegan.errors import ConfigError
    from lightning_stylegan.training.resume import network_differences
    from lightning_stylegan.training.run_networks import initial_networks, network_hparams

    hparams = network_hparams(16, 1, discriminator={"channel_base": 64, "channel_max": 8,
                                                    "topology_options": {"resample_filter": [1, 1]}})
    assert hparams["discriminator"]["topology_options"] == {"resample_filter": [1, 1]}
    D = initial_networks(hparams).D
    assert torch.allclose(D.b16.resample_filter, torch.full((2, 2), 0.25))
    with pytest.raises(ConfigError, match="model.discriminator.topology_options: the discriminator plugin "
                                          "'residual' has no option 'blocks'"):
        network_hparams(16, 1, discriminator={"topology_options": {"blocks": 2}})
    older = {"discriminator": {key: value for key, value in hparams["discriminator"].items() if key != "topology_options"}}
    assert network_differences(older, {"discriminator": network_hparams(16, 1, discriminator={
        "channel_base": 64, "channel_max": 8})["discriminator"]}) == []
