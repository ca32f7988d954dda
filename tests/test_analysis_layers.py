"""Layer access for the artifact analyses (``lightning_stylegan.analysis.layers``): the papers'
layer numbering (004_738a47e1aec6d700.txt Section 4.1: layer 0 = the first 4x4 conv, layers 0, 1,
3 are 4x4, 8x8, 16x16) for every normalization x topology and for plugins, and hooks that read and
edit exactly the addressed layer."""
from __future__ import annotations

import pytest
import torch

from lightning_stylegan import registry
from lightning_stylegan.analysis.layers import (edit_features, find_layer, forward_until, layers_at_resolution,
                                                parse_layers, read_features, synthesis_layers)
from lightning_stylegan.network_files import export_generator, load_generator
from lightning_stylegan.nn.memory_format import to_preferred_memory_format
from lightning_stylegan.nn.norms import instance_norm
from plugin_site import write_distribution

NORMALIZATIONS = ["adain", "pixel", "pin", "demod", "modulate", "none", "groupnorm"]
TOPOLOGIES = ["original", "skip", "residual"]
EXPECTED_NAMES = ["synthesis.b4.conv1", "synthesis.b8.conv0", "synthesis.b8.conv1",
                  "synthesis.b16.conv0", "synthesis.b16.conv1"]


def tiny_G(normalization="demod", topology="skip", resolution=16, seed=0, **kwargs):
    from lightning_stylegan.networks import Generator

    torch.manual_seed(seed)
    return Generator(img_resolution=resolution, img_channels=3, z_dim=8, w_dim=8, topology=topology,
                     normalization=normalization, mapping_layers=1, channel_base=128, channel_max=16,
                     **kwargs).eval()


def ws_of(G, n=2, seed=1):
    return G.mapping(torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed)), None)


def no_hooks_left(G):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in G.modules())


@pytest.mark.skipif("groupnorm" not in registry.names("normalization"),
                    reason="pip install ./plugins/groupnorm to test the plugin normalization")
@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_layers_in_paper_order_for_every_normalization_and_topology(normalization, topology):
    G = tiny_G(normalization, topology)
    layers = synthesis_layers(G)
    assert [layer.name for layer in layers] == EXPECTED_NAMES
    assert [layer.index for layer in layers] == list(range(5))
    assert [layer.resolution for layer in layers] == [4, 8, 8, 16, 16]
    assert [layer.channels for layer in layers] == [16, 16, 16, 8, 8]
    normalized = normalization not in ("demod", "modulate")
    assert all(("normalized" in layer.points) == normalized for layer in layers)
    with read_features(G, layers, "activation") as maps:
        G.synthesis(ws_of(G), noise_mode="const")
    assert [tuple(maps[i].shape) for i in range(5)] == [(2, l.channels, l.resolution, l.resolution) for l in layers]
    assert no_hooks_left(G)


def test_progressive_and_exported_generators_have_the_same_layers(tmp_path, tiny_ckpt):
    G = load_generator(tiny_ckpt)
    exported = load_generator(export_generator(G, tmp_path / "g.pt"))
    assert [(l.name, l.channels) for l in synthesis_layers(exported)] == [(l.name, l.channels) for l in synthesis_layers(G)]
    assert [l.name for l in synthesis_layers(tiny_G(progressive=True))] == EXPECTED_NAMES


def test_plugin_layer_class_is_found_once(site):
    """A plugin's own layer (``is_style_layer = True``) wrapping a built-in layer counts once."""
    write_distribution(site, "lsg-test-own-layer", {"lightning_stylegan.normalizations": {
        "ownlayer": "lsg_test_ownlayer:Own"}}, {"lsg_test_ownlayer": """
        from torch import nn
        from lightning_stylegan.nn.style_layers import ModulatedStyleLayer
        from lightning_stylegan.normalizations.base import Normalization

        class Wrapped(nn.Module):
            is_style_layer = True

            def __init__(self, *args, **kwargs):
                super().__init__()
                self.inner = ModulatedStyleLayer(*args, **kwargs)
                self.resolution, self.weight = self.inner.resolution, self.inner.weight

            def forward(self, x, w, noise_mode="random", fused_modconv=True, gain=1):
                return -self.inner(x, w, noise_mode, fused_modconv, gain)

        class Own(Normalization):
            api_version = 1
            description = "test"

            def style_layer(self, in_channels, out_channels, *, w_dim, resolution, up=1, kernel_size=3,
                            use_noise=True, resample_filter=None, conv_clamp=None):
                return Wrapped(in_channels, out_channels, w_dim, resolution, up=up, use_noise=use_noise)
        """})
    G = tiny_G("ownlayer")
    layers = synthesis_layers(G)
    assert [layer.name for layer in layers] == EXPECTED_NAMES
    assert type(layers[0].module).__name__ == "Wrapped" and layers[0].points == ("output", "activation")
    ws = ws_of(G)
    with read_features(G, [0], "output") as maps:
        G.synthesis(ws, noise_mode="const")
    inner = layers[0].module.inner(G.synthesis.b4.input(None, 2), ws[:, 0], "const", False)
    torch.testing.assert_close(maps[0], -inner)  # the wrapper's output, not the inner layer's


def test_lookup_by_index_name_resolution_and_clear_errors():
    G = tiny_G()
    assert find_layer(G, 3).name == "synthesis.b16.conv0" == find_layer(G, "b16.conv0").name
    assert find_layer(G, "synthesis.b8.conv1").index == 2
    assert [l.index for l in layers_at_resolution(G, 8)] == [1, 2]
    assert [l.index for l in parse_layers(G, "0,1,3")] == [0, 1, 3]
    assert [l.index for l in parse_layers(G, "16x16,0,3")] == [3, 4, 0]
    assert len(parse_layers(G, "all")) == 5
    with pytest.raises(ValueError, match=r"layers 0\.\.4 .*b16.conv1"):
        find_layer(G, 7)
    with pytest.raises(ValueError, match="No layer named 'b32.conv0'.*b4.conv1"):
        find_layer(G, "b32.conv0")
    with pytest.raises(ValueError, match=r"resolutions are \[4, 8, 16\]"):
        parse_layers(G, "32x32")
    with pytest.raises(ValueError, match="offers the tap points .* not 'normalized'"):
        with read_features(G, [0], "normalized"):
            pass


@pytest.mark.parametrize("normalization", ["demod", "adain"])
def test_read_hooks_see_the_maps_of_a_manual_forward(normalization):
    """Original topology: each layer feeds the next, layer i takes ws[:, i]; the ``output`` maps
    must equal that manual chain, ``normalized`` = norm(``activation``) and ``output`` = the style
    affine of ``normalized`` (StyleGAN v1 layer order)."""
    G = tiny_G(normalization, "original")
    ws = ws_of(G)
    layers = synthesis_layers(G)
    points = [p for p in ("output", "activation", "normalized") if p in layers[0].points]
    maps = {}
    for point in points:
        with read_features(G, layers, point) as found:
            G.synthesis(ws, noise_mode="const")
        maps[point] = found
    x = G.synthesis.b4.input(None, 2)  # the constant as G feeds it (channels_last on the CPU)
    for layer in layers:
        x = layer.module(x, ws[:, layer.index], noise_mode="const", fused_modconv=False)
        torch.testing.assert_close(maps["output"][layer.index], x, rtol=0, atol=0)
        if normalization == "adain":
            act, normed = maps["activation"][layer.index], maps["normalized"][layer.index]
            torch.testing.assert_close(normed, instance_norm(act), rtol=1e-5, atol=1e-5)
            scale, shift = layer.module.affine(ws[:, layer.index])[..., None, None].chunk(2, dim=1)
            torch.testing.assert_close(x, normed * scale + shift, rtol=1e-5, atol=1e-5)
        else:
            torch.testing.assert_close(maps["activation"][layer.index], x, rtol=0, atol=0)


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("normalization,point", [("demod", "output"), ("adain", "normalized"),
                                                 ("pin", "activation"), ("adain", "output")])
def test_edit_changes_the_addressed_layer_and_downstream_only(normalization, point, topology):
    G = tiny_G(normalization, topology)
    ws = ws_of(G)
    layers = synthesis_layers(G)
    with read_features(G, layers, point) as before:
        image = G.synthesis(ws, noise_mode="const")
    target = 2
    ramp = torch.linspace(0, 1, layers[target].resolution)  # not a per-channel affine map: IN does not undo it
    with edit_features(G, target, lambda f: f + ramp, point=point), read_features(G, layers, point) as after:
        edited = G.synthesis(ws, noise_mode="const")
    for i in range(len(layers)):
        if i < target:
            torch.testing.assert_close(after[i], before[i], rtol=0, atol=0)
        elif i == target:
            torch.testing.assert_close(after[i], before[i] + ramp, rtol=0, atol=1e-6)
        else:
            assert (after[i] - before[i]).abs().max() > 1e-4, f"layer {i} downstream of {target} unchanged"
    assert (edited - image).abs().max() > 1e-4
    assert no_hooks_left(G)
    torch.testing.assert_close(G.synthesis(ws, noise_mode="const"), image, rtol=0, atol=0)


def test_hooks_are_removed_on_error_and_bad_edits_are_refused():
    G = tiny_G("adain")
    with pytest.raises(RuntimeError, match="boom"):
        with edit_features(G, 1, lambda f: f * 0, point="activation"), read_features(G, [0, 1, 2], "normalized"):
            raise RuntimeError("boom")
    assert no_hooks_left(G)
    with pytest.raises(ValueError, match=r"must return a tensor of shape \(2, 16, 8, 8\)"):
        with edit_features(G, 1, lambda f: f[:, :3]):
            G.synthesis(ws_of(G), noise_mode="const")
    assert no_hooks_left(G)


@pytest.mark.parametrize("normalization", ["demod", "adain"])
def test_forward_until_runs_the_layers_up_to_the_last_one_only(normalization):
    G = tiny_G(normalization, "residual")
    ws = ws_of(G)
    layers = synthesis_layers(G)
    with read_features(G, layers, "activation") as full:
        G.synthesis(ws, noise_mode="const")
    with read_features(G, layers, "activation") as early:
        forward_until(G, layers[2], ws)
    assert sorted(early) == [0, 1, 2]
    assert all(torch.equal(early[i], full[i]) for i in early)
    assert no_hooks_left(G)


@pytest.mark.parametrize("normalization", ["adain", "pixel", "pin"])
def test_stylegan1_layer_0_is_the_epilogue_on_the_constant(normalization):
    """StyleGAN v1 (``stylegan1``): layer 0 is the layer epilogue on the 4x4 constant (style 0),
    layer 1 the 4x4 conv (style 1), then two layers per resolution; the hooks see the manual chain."""
    G = tiny_G(normalization, "stylegan1")
    layers = synthesis_layers(G)
    assert [layer.name for layer in layers] == ["synthesis.b4.const_epilogue"] + EXPECTED_NAMES
    assert [layer.resolution for layer in layers] == [4, 4, 8, 8, 16, 16]
    assert [layer.channels for layer in layers] == [16, 16, 16, 16, 8, 8]
    assert len(layers) == G.num_ws and all("normalized" in layer.points for layer in layers)
    ws = ws_of(G)
    with read_features(G, layers, "output") as maps:
        G.synthesis(ws, noise_mode="const")
    x = to_preferred_memory_format(G.synthesis.b4.const.unsqueeze(0).repeat(2, 1, 1, 1))
    for layer in layers:
        x = layer.module(x, ws[:, layer.index], noise_mode="const", fused_modconv=False)
        torch.testing.assert_close(maps[layer.index], x, rtol=0, atol=0)
    assert find_layer(G, 0).name == "synthesis.b4.const_epilogue" and find_layer(G, "b4.conv1").index == 1
    assert no_hooks_left(G)
