"""Activation rates (004_738a47e1aec6d700.txt Definitions 1-2, Eq. 1):
R^i_n = 1/N sum_k I(f^i_n(z_k) > 0), one rate per neuron (c, h, w), LR-neurons R <= R0, HR > R0."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_stylegan.analysis.activation_rates import ActivationRates, activation_rates
from lightning_stylegan.analysis.layers import synthesis_layers
from lightning_stylegan.networks import Generator

NUM = 10


def tiny_G(normalization="demod", seed=0):
    torch.manual_seed(seed)
    return Generator(img_resolution=16, img_channels=3, z_dim=8, w_dim=8, topology="original",
                     normalization=normalization, mapping_layers=1, channel_base=128, channel_max=16).eval()


def force_signs(G):
    """Layer 0: channel 0 always > 0, channel 1 never; layer 2: channel 3 always > 0."""
    layers = synthesis_layers(G)
    with torch.no_grad():
        layers[0].module.bias[0] = 1e3
        layers[0].module.bias[1] = -1e3
        layers[2].module.bias[3] = 1e3
    return layers


def explicit_activations(G, num, seed=0):
    """The activations of Eq. 1 by an explicit loop: one latent at a time (z_k = RandomState(seed + k)
    .randn), the original topology's layers called one after the other (layer i takes ws[:, i]).
    One tensor [num, C, H, W] per layer."""
    layers = synthesis_layers(G)
    per_layer = [[] for _ in layers]
    for k in range(seed, seed + num):
        z = torch.from_numpy(np.random.RandomState(k).randn(1, G.z_dim)).float()
        ws = G.mapping(z, None)
        x = G.synthesis.b4.input(None, 1)  # as G feeds it: channels_last, non-fused on the CPU
        for i, layer in enumerate(layers):
            x = layer.module(x, ws[:, i], noise_mode="const", fused_modconv=False)
            per_layer[i].append(x[0])
    return [torch.stack(maps) for maps in per_layer]


def assert_counts_match(counts, activations, relative=1e-3):
    """Counts of f > 0 taken in batches equal those of the one-at-a-time ``activations`` except where
    an activation lies within ``relative`` x the layer's median |f| of 0: a convolution of another
    batch layout sums its K <= 144 terms in another order, which moves a float32 result by at most
    about K x 2^-24 ~ 1e-5 of the sum of the terms' magnitudes (a few times the typical |f|), and
    only such a near-zero value can change sign. Those are few (checked), so the counts are still
    compared neuron by neuron."""
    for index, acts in enumerate(activations):
        margin = relative * float(acts.abs().median())
        expected, unsure = (acts > 0).sum(0), (acts.abs() <= margin).sum(0)
        assert ((counts[index] - expected).abs() <= unsure).all(), index
        assert int(unsure.sum()) <= 0.01 * acts.numel(), (index, int(unsure.sum()))


@torch.no_grad()
def test_rates_match_an_explicit_count_loop_and_known_signs():
    G = tiny_G()
    force_signs(G)
    rates = activation_rates(G, NUM, batch=3)
    assert_counts_match(rates.counts, explicit_activations(G, NUM))
    for i in rates.counts:
        torch.testing.assert_close(rates.rate(i), rates.counts[i].double() / NUM)
    assert (rates.rate(0)[0] == 1).all() and (rates.rate(0)[1] == 0).all() and (rates.rate(2)[3] == 1).all()
    rate = rates.rate(1)
    assert 0 < float(rate.mean()) < 1  # unforced layers are neither all on nor all off
    # LR: R <= R0, HR: R > R0, a partition.
    low, high = rates.low_rate(1, 0.3), rates.high_rate(1, 0.3)
    assert torch.equal(low, rate <= 0.3) and torch.equal(high, ~low)
    assert rates.low_rate(0, 0.0)[1].all() and not rates.low_rate(0, 0.999)[0].any()


@torch.no_grad()
def test_rates_of_a_normalized_layer_are_taken_before_the_normalization():
    """StyleGAN v1 layer: the activation is the normalization's input; a +/- bias fixes its sign
    there (after IN the sign of a constant channel would be undefined)."""
    G = tiny_G("adain")
    force_signs(G)
    rates = activation_rates(G, 4, layers=synthesis_layers(G)[:1], batch=4)
    assert list(rates.counts) == [0]
    assert (rates.rate(0)[0] == 1).all() and (rates.rate(0)[1] == 0).all()


@torch.no_grad()
def test_streaming_is_independent_of_the_batch_size_and_files_round_trip(tmp_path):
    G = tiny_G()
    one = activation_rates(G, 7, batch=7, seed=5)
    other = activation_rates(G, 7, batch=2, seed=5)
    activations = explicit_activations(G, 7, seed=5)
    assert_counts_match(one.counts, activations)
    assert_counts_match(other.counts, activations)
    path = one.save(tmp_path / "rates")
    assert path.name == "rates.npz" and path.with_suffix(".json").is_file()
    loaded = ActivationRates.load(path)
    assert loaded.num == 7 and loaded.names == one.names and loaded.settings["seed"] == 5
    assert all(torch.equal(loaded.counts[i], one.counts[i]) for i in one.counts)
    loaded.check(synthesis_layers(G))
    with pytest.raises(ValueError, match="do not fit layer 0"):
        small = Generator(img_resolution=16, img_channels=3, z_dim=8, w_dim=8, mapping_layers=1,
                          channel_base=64, channel_max=8)
        loaded.check(synthesis_layers(small))
    with pytest.raises(FileNotFoundError, match="analyze rates"):
        ActivationRates.load(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not an activation-rates file"):
        ActivationRates.load(tmp_path / "bad.npz")


@torch.no_grad()
def test_conditional_generators_get_labels_from_the_seed_or_the_class():
    from lightning_stylegan.analysis.latents import seed_inputs

    torch.manual_seed(0)
    G = Generator(img_resolution=8, img_channels=1, z_dim=8, w_dim=8, c_dim=5, mapping_layers=1,
                  channel_base=64, channel_max=8).eval()
    z, c = seed_inputs(G, [3, 4])
    state = np.random.RandomState(3)
    torch.testing.assert_close(z[0], torch.from_numpy(state.randn(8)).float())
    assert int(c[0].argmax()) == state.randint(5) and torch.equal(c.sum(dim=1), torch.ones(2))
    assert (seed_inputs(G, [3, 4], class_idx=2)[1].argmax(dim=1) == 2).all()
    with pytest.raises(ValueError, match=r"classes 0\.\.4"):
        seed_inputs(G, [0], class_idx=5)
    assert activation_rates(G, 3, class_idx=1).num == 3
