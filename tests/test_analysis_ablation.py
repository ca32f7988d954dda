"""Sequential Ablation (004_738a47e1aec6d700.txt Algorithm 1, Table 1's HR and random ablation)
and GANDissect unit ablation (000_2d004fc061d5976e.txt Figures 6, 7, 9, 10)."""
from __future__ import annotations

import pytest
import torch

from lightning_stylegan.analysis import ablation, units
from lightning_stylegan.analysis.activation_rates import activation_rates
from lightning_stylegan.analysis.latents import seed_ws
from lightning_stylegan.analysis.layers import edit_features, parse_layers, read_features, synthesis_layers
from lightning_stylegan.networks import Generator

SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    G = Generator(img_resolution=16, img_channels=3, z_dim=8, w_dim=8, topology="skip", normalization="demod",
                  mapping_layers=1, channel_base=128, channel_max=16).eval()
    rates = activation_rates(G, 12, batch=12)  # seeds 0..11: SEEDS are among the sampled latents
    return G, rates, seed_ws(G, SEEDS), parse_layers(G, "0,1,3")


@torch.no_grad()
def test_rate_zero_changes_nothing(setup):
    """R = 0: LR-neurons are those never activated over the sampled latents, so for a sampled
    latent no neuron is both activated and LR, and Algorithm 1 leaves the image as it is."""
    G, rates, ws, layers = setup
    result = ablation.sequential_ablation(G, ws, rates, layers, rate=0.0)
    torch.testing.assert_close(result.images, G.synthesis(ws, noise_mode="const"), rtol=0, atol=0)
    assert all(int(z.sum()) == 0 for z in result.zeroed.values())


@torch.no_grad()
def test_rate_one_zeroes_every_activated_neuron_of_the_chosen_layers(setup):
    """R = 1: every neuron is an LR-neuron, so [f^i]^+ <- 0 in each layer of M: the same as
    replacing f^i by min(f^i, 0) there, computed independently with plain edit hooks."""
    G, rates, ws, layers = setup
    result = ablation.sequential_ablation(G, ws, rates, layers, rate=1.0)
    for layer in layers:
        assert torch.equal(result.zeroed[layer.index], result.activated[layer.index])
        assert int(result.activated[layer.index].min()) > 0
    with edit_features(G, 0, lambda f: f.clamp(max=0), "activation"), \
            edit_features(G, 1, lambda f: f.clamp(max=0), "activation"), \
            edit_features(G, 3, lambda f: f.clamp(max=0), "activation"), \
            read_features(G, synthesis_layers(G), "activation") as maps:
        expected = G.synthesis(ws, noise_mode="const")
    torch.testing.assert_close(result.images, expected, rtol=0, atol=0)
    assert all(int((maps[i] > 0).sum()) == 0 for i in (0, 1, 3))
    assert int((maps[2] > 0).sum()) > 0 and int((maps[4] > 0).sum()) > 0  # layers outside M keep theirs


@torch.no_grad()
def test_ablation_is_sequential(setup):
    """Algorithm 1 line 3: f^i is computed from the already ablated f^(i-1); the LR-neurons zeroed
    at layer 1 are those activated in the map that follows the ablation of layer 0."""
    G, rates, ws, layers = setup
    both = ablation.sequential_ablation(G, ws, rates, layers[:2], rate=0.3)
    first = ablation.sequential_ablation(G, ws, rates, layers[:1], rate=0.3)
    low0 = rates.low_rate(0, 0.3)
    with edit_features(G, 0, lambda f: f.masked_fill((f > 0) & low0, 0), "activation"), \
            read_features(G, [1], "activation") as maps:
        G.synthesis(ws, noise_mode="const")
    expected = ((maps[1] > 0) & rates.low_rate(1, 0.3)).flatten(1).sum(dim=1)
    assert torch.equal(both.zeroed[1], expected)
    assert torch.equal(both.zeroed[0], first.zeroed[0])
    torch.testing.assert_close(first.images, ablation.sequential_ablation(G, ws, rates, layers[:1]).images)


@torch.no_grad()
def test_high_rate_and_random_ablation(setup):
    G, rates, ws, layers = setup
    low = ablation.sequential_ablation(G, ws, rates, layers, mode="low")
    high = ablation.sequential_ablation(G, ws, rates, layers, mode="high")
    rand = ablation.sequential_ablation(G, ws, rates, layers, mode="random")
    # Layer 0 is the first of M: all three see the same map; LR and HR split its activated neurons.
    assert torch.equal(low.zeroed[0] + high.zeroed[0], low.activated[0])
    assert torch.equal(rand.zeroed[0], low.zeroed[0])  # same count, other neurons
    assert not torch.equal(rand.images, low.images)
    frac = ablation.sequential_ablation(G, ws, rates, layers, mode="random", random_fraction=0.3)
    for i in frac.zeroed:
        assert torch.equal(frac.zeroed[i], (frac.activated[i].double() * 0.3).round().long())
    with pytest.raises(ValueError, match="mode must be one of"):
        ablation.sequential_ablation(G, ws, rates, layers, mode="medium")


def test_random_pick_takes_the_asked_number_of_candidates():
    candidates = torch.rand(4, 50, generator=torch.Generator().manual_seed(0)) > 0.5
    counts = torch.tensor([0, 3, 10, int(candidates[3].sum())])
    picked = ablation._random_pick(candidates, counts, torch.Generator().manual_seed(1))
    assert torch.equal(picked.sum(dim=1), counts)
    assert not (picked & ~candidates).any()


@torch.no_grad()
def test_unit_ablation(setup):
    G, _, ws, _ = setup
    layer = synthesis_layers(G)[2]
    fmap = torch.randn(2, layer.channels, 8, 8)
    zeroed = units.zero_units(fmap, [1, 4])
    assert (zeroed[:, [1, 4]] == 0).all() and torch.equal(zeroed[:, 0], fmap[:, 0])
    kept = units.zero_units(fmap, [1], keep_only=True)
    assert torch.equal(kept[:, 1], fmap[:, 1]) and (kept[:, [0, 2, 3]] == 0).all()
    with read_features(G, [layer], "output") as before:
        image = G.synthesis(ws, noise_mode="const")
    after = units.ablate_units(G, ws, layer, [3])
    assert (after - image).abs().max() > 1e-5
    with edit_features(G, layer, lambda f: f * (torch.arange(layer.channels) != 3).float()[:, None, None]):
        torch.testing.assert_close(after, G.synthesis(ws, noise_mode="const"), rtol=0, atol=0)
    strongest = units.strongest_unit(before[2][0], factor=1e9)  # no region: the peak pixel decides
    peak = before[2][0].abs().mean(dim=0).argmax()
    assert strongest == int(before[2][0].flatten(1)[:, peak].argmax())
    steps = units.iterative_unit_ablation(G, ws[:1], layer, steps=3)
    assert [len(step.units) for step in steps] == [1, 2, 3] and len(set(steps[-1].units)) == 3
    with pytest.raises(ValueError, match=r"units 0\.\.15"):
        units.ablate_units(G, ws, layer, [16])


@torch.no_grad()
def test_ablation_in_batches_equals_one_batch(setup):
    """What `analyze ablate --batch` does: samples are ablated independently, so batches concatenate."""
    G, rates, ws, layers = setup
    with read_features(G, layers, "activation") as maps:  # hooked first: each layer's map before its ablation
        whole = ablation.sequential_ablation(G, ws, rates, layers, rate=0.3)
    halves = ablation.concat([ablation.sequential_ablation(G, part, rates, layers, rate=0.3) for part in ws.split(2)])
    torch.testing.assert_close(halves.images, whole.images, rtol=0, atol=1e-5)
    # A batch of 2 runs other convolution kernels than a batch of 3: the same sums in another order,
    # which can flip only the sign of an activation within a few float32 ulps of 0 (counted here
    # with a 1e-3 x median |f| margin, as test_analysis_rates.assert_counts_match derives).
    for index, fmap in maps.items():
        unsure = (fmap.abs() <= 1e-3 * float(fmap.abs().median())).flatten(1).sum(dim=1)
        assert int(unsure.sum()) <= 0.01 * fmap.numel(), (index, int(unsure.sum()))
        for field in ("activated", "zeroed"):
            assert ((getattr(halves, field)[index] - getattr(whole, field)[index]).abs() <= unsure).all(), field
