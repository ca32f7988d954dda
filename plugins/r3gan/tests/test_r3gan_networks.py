"""R3GAN's G and D (``pip install -e plugins/r3gan``): forward passes against the float64 reference of
``r3gan_reference`` (the paper's equations, explicit ops), fix-up initialization, parameter counts of
the official presets against a formula, the state-dict keys of the official modules, R1's double
backward, option checks, and the plugins as core builds them through their entry points."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

r3gan = pytest.importorskip("lightning_stylegan_r3gan",
                            reason="lightning-stylegan-r3gan is not installed; run `pip install -e plugins/r3gan`")

import r3gan_reference as reference  # noqa: E402
from lightning_stylegan import registry  # noqa: E402
from lightning_stylegan.errors import ConfigError  # noqa: E402
from lightning_stylegan.networks import Generator, build_discriminator, check_synthesis_options  # noqa: E402
from lightning_stylegan.training.penalties import gradient_penalty  # noqa: E402
from lightning_stylegan_r3gan.discriminator import R3GANDiscriminator  # noqa: E402
from lightning_stylegan_r3gan.generator import R3GANGenerator  # noqa: E402
from lightning_stylegan_r3gan.layers import LRELU_GAIN  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

RES, Z_DIM, C_DIM = 16, 6, 3
G_OPTIONS = {"WidthPerStage": [8, 8, 4], "CardinalityPerStage": [2, 4, 2], "BlocksPerStage": [1, 2, 1],
             "ConditionEmbeddingDimension": 5}  # 4x4, 8x8, 16x16: widths kept, then changed
D_OPTIONS = {"WidthPerStage": [4, 8, 8], "CardinalityPerStage": [2, 4, 2], "BlocksPerStage": [1, 2, 1],
             "ConditionEmbeddingDimension": 6}  # 16x16, 8x8, 4x4


def tiny_g(c_dim: int, **options) -> R3GANGenerator:
    with torch.random.fork_rng():
        torch.manual_seed(c_dim)
        return R3GANGenerator(z_dim=Z_DIM, c_dim=c_dim, img_resolution=RES, img_channels=3, **(G_OPTIONS | options))


def tiny_d(c_dim: int, **options) -> R3GANDiscriminator:
    with torch.random.fork_rng():
        torch.manual_seed(10 + c_dim)
        return R3GANDiscriminator(RES, 3, c_dim=c_dim, **(D_OPTIONS | options))


def perturbed(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter moved off its initial value (the last conv of every block starts at zero,
    the biases too), so that every path of the network shows in its output."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * 0.3)
    return net


def labels(n: int, c_dim: int, dtype) -> torch.Tensor | None:
    return F.one_hot(torch.arange(n) % c_dim, c_dim).to(dtype) if c_dim else None


def max_rel(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.double() - want).abs().max() / want.abs().max()).item()


@pytest.mark.parametrize("c_dim", [0, C_DIM], ids=["unconditional", "labels"])
@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-13), (torch.float32, 2e-6)], ids=["f64", "f32"])
def test_generator_is_the_reference(c_dim, dtype, tolerance):
    """G(z, c) against ``r3gan_reference.generator`` in float64 on G's own parameters, read by name.
    Max relative error (over the largest |pixel|) measured: 5.4e-16 / 4.8e-16 (without / with
    labels) in float64, 2.8e-7 / 2.3e-7 in float32."""
    G = perturbed(tiny_g(c_dim), seed=c_dim).to(dtype)
    z = torch.randn(5, Z_DIM, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    c = labels(5, c_dim, torch.float64)
    want = reference.generator(G.state_dict(), z, c, G_OPTIONS["CardinalityPerStage"], G_OPTIONS["BlocksPerStage"])
    with torch.no_grad():
        got = G(z.to(dtype), None if c is None else c.to(dtype))
    assert got.shape == (5, 3, RES, RES) and got.dtype == dtype
    assert max_rel(got, want) < tolerance
    if c_dim:  # the labels matter
        with torch.no_grad():
            assert not torch.allclose(got, G(z.to(dtype), labels(5, c_dim, dtype).roll(1, dims=0)))


@pytest.mark.parametrize("c_dim", [0, C_DIM], ids=["unconditional", "labels"])
@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-13), (torch.float32, 4e-6)], ids=["f64", "f32"])
def test_discriminator_is_the_reference(c_dim, dtype, tolerance):
    """D(img, c) against ``r3gan_reference.discriminator`` in float64 on D's own parameters, read by
    name. Max relative error (over the largest |logit|) measured: 7.1e-16 / 1.3e-15 (without / with
    labels) in float64, 8.3e-7 / 5.9e-7 in float32."""
    D = perturbed(tiny_d(c_dim), seed=10 + c_dim).to(dtype)
    img = torch.randn(5, 3, RES, RES, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    c = labels(5, c_dim, torch.float64)
    want = reference.discriminator(D.state_dict(), img, c, D_OPTIONS["CardinalityPerStage"],
                                   D_OPTIONS["BlocksPerStage"])
    with torch.no_grad():
        got = D(img.to(dtype), None if c is None else c.to(dtype))
    assert got.shape == (5, 1) and got.dtype == dtype
    assert max_rel(got, want) < tolerance


def test_fp16_stages_change_nothing_on_the_cpu():
    """FP16Stages run in bfloat16 on CUDA only: on the CPU the outputs are bit for bit the same."""
    G, G16 = tiny_g(C_DIM), tiny_g(C_DIM, FP16Stages=[-1, -2])
    D, D16 = tiny_d(C_DIM), tiny_d(C_DIM, FP16Stages=[0, 1])
    for plain, reduced in ((G, G16), (D, D16)):
        reduced.load_state_dict(perturbed(plain, seed=3).state_dict())
        assert [stage.reduced_precision for stage in reduced.MainLayers] != [False] * 3
    z, c = torch.randn(2, Z_DIM), labels(2, C_DIM, torch.float32)
    with torch.no_grad():
        assert torch.equal(G(z, c), G16(z, c))
        assert torch.equal(D(G(z, c), c), D16(G(z, c), c))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bfloat16 stages run on CUDA only")
def test_fp16_stages_run_in_bfloat16_on_cuda():
    """On CUDA the FP16Stages (and only they) compute in bfloat16; the outputs come back in float32."""
    G = tiny_g(C_DIM, FP16Stages=[-1]).cuda()
    D = tiny_d(C_DIM, FP16Stages=[0]).cuda()
    seen = {}
    for name, net in (("G", G), ("D", D)):
        for i, stage in enumerate(net.MainLayers):
            stage.register_forward_hook(lambda m, a, out, key=(name, i): seen.__setitem__(key, out.dtype))
    c = labels(2, C_DIM, torch.float32).cuda()
    img = G(torch.randn(2, Z_DIM, device="cuda"), c)
    logits = D(img, c)
    assert img.dtype == logits.dtype == torch.float32
    assert seen == {("G", 0): torch.float32, ("G", 1): torch.float32, ("G", 2): torch.bfloat16,
                    ("D", 0): torch.bfloat16, ("D", 1): torch.float32, ("D", 2): torch.float32}


def test_fixup_initialization():
    """Fixup (Zhang et al. 2019) with L = all blocks of the network and m = 3 layers per block: the
    last 1x1 of every block is zero; the first two are N(0, (g L^(-1/4))^2 / fan_in), g the leaky
    ReLU gain sqrt(2 / 1.04); biases zero; transitions, basis maps and G's embedding N(0, 1 / fan_in);
    G's basis N(0, 1); D's label embedding N(0, 1 / (E fan_in)). So G and D start as a chain of
    identity blocks, and a fresh G is its basis, resampled and aggregated."""
    blocks = [2, 3, 1]
    G = R3GANGenerator(z_dim=64, c_dim=40, img_resolution=RES, img_channels=3, WidthPerStage=[64, 64, 32],
                       CardinalityPerStage=[4, 8, 2], BlocksPerStage=blocks, ConditionEmbeddingDimension=32)
    D = R3GANDiscriminator(RES, 3, c_dim=40, WidthPerStage=[32, 64, 64], CardinalityPerStage=[2, 8, 4],
                           BlocksPerStage=blocks[::-1], ConditionEmbeddingDimension=48)
    branch_gain = LRELU_GAIN * sum(blocks) ** -0.25
    for net in (G, D):
        checked = 0
        for name, p in net.named_parameters():
            fan_in = p[0].numel()
            if name.endswith("LinearLayer3.Layer.weight") or name.endswith(".Bias"):
                assert torch.count_nonzero(p) == 0, name
                continue
            if name.endswith(("LinearLayer1.Layer.weight", "LinearLayer2.Layer.weight")):
                std = branch_gain / math.sqrt(fan_in)
            elif name.endswith("Layers.0.Basis"):
                std = 1.0
            elif net is D and name == "EmbeddingLayer.weight":
                std = 1 / math.sqrt(48 * fan_in)
            else:
                std = 1 / math.sqrt(fan_in)
            assert abs(p.mean().item()) < 4 * std / math.sqrt(p.numel()), name
            assert p.std().item() == pytest.approx(std, rel=max(0.1, 5 / math.sqrt(p.numel()))), name
            checked += 1
        assert checked > 10
    z, c = torch.randn(3, 64), labels(3, 40, torch.float32)
    with torch.no_grad():  # every block an identity: the output is the upsampled, aggregated basis
        x = G.MainLayers[0].Layers[0](torch.cat([z, c @ G.EmbeddingLayer.weight.T], dim=1))
        for stage in G.MainLayers[1:]:
            x = stage.Layers[0](x)
        assert torch.allclose(G(z, c), G.AggregationLayer(x), atol=1e-6)


def parameter_count(z_dim: int, c_dim: int, embedding: int, widths, cardinalities, blocks, expansion: int,
                    kernel_size: int, img_channels: int, discriminator: bool) -> int:
    """The parameters of the official G (or D, widths from the input) from its structure: per block
    C E + E (E / g) k^2 + E C + 2 E (E = C x expansion), a 1x1 W_i W_{i+1} where the width changes,
    G's basis (z + emb) W_0 + 16 W_0 and aggregation W_last c_img, D's extraction c_img W_0 and basis
    16 W_last + W_last (emb or 1), the label embedding c_dim emb."""
    total = c_dim * embedding
    for width, cardinality, count in zip(widths, cardinalities, blocks):
        wide = width * expansion
        total += count * (2 * width * wide + wide * (wide // cardinality) * kernel_size ** 2 + 2 * wide)
    total += sum(a * b for a, b in zip(widths, widths[1:]) if a != b)
    if discriminator:
        return total + img_channels * widths[0] + 16 * widths[-1] + widths[-1] * (embedding or 1)
    return total + (z_dim + embedding) * widths[0] + 16 * widths[0] + widths[-1] * img_channels


# train.py's presets: CIFAR10 (--cond 1: z 64, G embedding 64, D embedding 768) and FFHQ-256.
PRESETS = {"CIFAR10": (32, 10, [768] * 4, [96] * 4, [2] * 4),
           "FFHQ-256": (256, 0, [768, 768, 768, 768, 384, 192, 96], [96, 96, 96, 96, 48, 24, 12], [2] * 7)}


@pytest.mark.parametrize("preset", PRESETS)
def test_parameter_count_of_the_official_presets(preset):
    """G and D of the official ``train.py --preset CIFAR10 --cond 1`` and ``FFHQ-256`` (built on the
    meta device) against ``parameter_count``; the preset rule that fills in a recipe's missing
    lists (``stages``) gives the same networks. CIFAR10: G 20,781,952, D 21,280,512."""
    resolution, c_dim, widths, cardinalities, blocks = PRESETS[preset]
    g_embedding, d_embedding = (64, widths[0]) if c_dim else (0, 0)
    with torch.device("meta"):
        G = R3GANGenerator(z_dim=64, c_dim=c_dim, img_resolution=resolution, img_channels=3, WidthPerStage=widths,
                           CardinalityPerStage=cardinalities, BlocksPerStage=blocks, ExpansionFactor=2)
        D = R3GANDiscriminator(resolution, 3, c_dim=c_dim, WidthPerStage=widths[::-1],
                               CardinalityPerStage=cardinalities[::-1], BlocksPerStage=blocks[::-1])
        G_default = R3GANGenerator(z_dim=64, c_dim=c_dim, img_resolution=resolution, img_channels=3)
        D_default = R3GANDiscriminator(resolution, 3, c_dim=c_dim)
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert count(G) == parameter_count(64, c_dim, g_embedding, widths, cardinalities, blocks, 2, 3, 3, False)
    assert count(D) == parameter_count(64, c_dim, d_embedding, widths[::-1], cardinalities[::-1], blocks, 2, 3, 3,
                                       True)
    assert {k: v.shape for k, v in G_default.state_dict().items()} == {k: v.shape for k, v in G.state_dict().items()}
    assert {k: v.shape for k, v in D_default.state_dict().items()} == {k: v.shape for k, v in D.state_dict().items()}
    if preset == "CIFAR10":
        assert (count(G), count(D)) == (20_781_952, 21_280_512)


def official_keys(c_dim: int) -> tuple[list[str], list[str]]:
    """The state-dict keys of the official ``R3GAN.Networks.Generator`` / ``Discriminator`` for the
    tiny config, spelled out from their module tree (the official pickles' ``training.networks``
    wrappers add ``Model.`` in front)."""
    def block(prefix):
        return [f"{prefix}.LinearLayer1.Layer.weight", f"{prefix}.LinearLayer2.Layer.weight",
                f"{prefix}.LinearLayer3.Layer.weight", f"{prefix}.NonLinearity1.Bias", f"{prefix}.NonLinearity2.Bias"]

    g = ["MainLayers.0.Layers.0.Basis", "MainLayers.0.Layers.0.LinearLayer.weight", *block("MainLayers.0.Layers.1"),
         "MainLayers.1.Layers.0.Resampler.Kernel", *block("MainLayers.1.Layers.1"), *block("MainLayers.1.Layers.2"),
         "MainLayers.2.Layers.0.Resampler.Kernel", "MainLayers.2.Layers.0.LinearLayer.Layer.weight",
         *block("MainLayers.2.Layers.1"), "AggregationLayer.Layer.weight"]
    d = ["ExtractionLayer.Layer.weight", *block("MainLayers.0.Layers.0"), "MainLayers.0.Layers.1.Resampler.Kernel",
         "MainLayers.0.Layers.1.LinearLayer.Layer.weight", *block("MainLayers.1.Layers.0"),
         *block("MainLayers.1.Layers.1"), "MainLayers.1.Layers.2.Resampler.Kernel", *block("MainLayers.2.Layers.0"),
         "MainLayers.2.Layers.1.Basis.weight", "MainLayers.2.Layers.1.LinearLayer.weight"]
    return g + ["EmbeddingLayer.weight"] * bool(c_dim), d + ["EmbeddingLayer.weight"] * bool(c_dim)


@pytest.mark.parametrize("c_dim", [0, C_DIM], ids=["unconditional", "labels"])
def test_state_dict_keys_are_the_official_ones(c_dim):
    """The plugins' keys are the official modules' keys, in the official order; in core's Generator
    the plugin is ``G.synthesis``, so G's keys are ``synthesis.<official key>``; D is the plugin."""
    g_keys, d_keys = official_keys(c_dim)
    G, D = tiny_g(c_dim), tiny_d(c_dim)
    assert list(G.state_dict()) == g_keys
    assert list(D.state_dict()) == d_keys
    assert G.state_dict()["MainLayers.1.Layers.0.Resampler.Kernel"].shape == (4, 4)
    assert D.state_dict()["MainLayers.2.Layers.1.LinearLayer.weight"].shape == (6 if c_dim else 1, 8)
    wrapped = Generator(img_resolution=RES, img_channels=3, z_dim=Z_DIM, c_dim=c_dim, topology="r3gan",
                        synthesis_options=G_OPTIONS)
    assert list(wrapped.state_dict()) == [f"synthesis.{key}" for key in g_keys]
    built = build_discriminator("r3gan", img_resolution=RES, img_channels=3, c_dim=c_dim, topology_options=D_OPTIONS)
    assert list(built.state_dict()) == d_keys


def test_resampling_kernel_is_the_interpolation_filter():
    """[1, 2, 1] convolved with [1, 1]: the separable [1, 3, 3, 1] / 8, 2-D sum 1."""
    kernel = tiny_g(0).state_dict()["MainLayers.1.Layers.0.Resampler.Kernel"]
    assert torch.equal(kernel, torch.outer(torch.tensor([1., 3, 3, 1]), torch.tensor([1., 3, 3, 1])) / 64)


@pytest.mark.parametrize("c_dim", [0, C_DIM], ids=["unconditional", "labels"])
def test_r1_penalty_double_backward(c_dim):
    """R1 (core's ``gradient_penalty``) through D reaches every weight, and its gradient is right:
    ``gradgradcheck`` in float64 on an 8x8 D, and the parameter gradient of the penalty against a
    central difference along a random direction. (D is piecewise linear in its input, so grad_x D,
    and R1, do not depend on the activations' biases: their R1 gradients are exactly zero.)"""
    D = perturbed(R3GANDiscriminator(8, 1, c_dim=c_dim, WidthPerStage=[4, 4], CardinalityPerStage=[2, 2],
                                     BlocksPerStage=[1, 1]), seed=4).double()
    img = torch.randn(2, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    c = labels(2, c_dim, torch.float64)
    assert torch.autograd.gradgradcheck(lambda x: D(x, c), (img,))
    penalty = gradient_penalty(D(img, c), img).sum()
    names, params = zip(*D.named_parameters())
    grads = torch.autograd.grad(penalty, params)
    assert all(bool(torch.count_nonzero(g)) != name.endswith(".Bias") for name, g in zip(names, grads))
    direction = [torch.randn_like(p) for p in params]

    def penalty_at(t: float) -> float:
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.add_(d, alpha=t)
        x = img.detach().requires_grad_(True)
        value = gradient_penalty(D(x, c), x).sum().item()
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.sub_(d, alpha=t)
        return value

    eps = 1e-6
    numeric = (penalty_at(eps) - penalty_at(-eps)) / (2 * eps)
    analytic = sum((g * d).sum() for g, d in zip(grads, direction)).item()
    assert analytic == pytest.approx(numeric, rel=1e-6)


def test_stylegan_arguments_are_accepted_and_growth_refused():
    """Core passes every D plugin StyleGAN's arguments: R3GAN's D takes and ignores all but c_dim;
    ``progressive=True`` and an alpha below 1 are refused, naming the fix."""
    D = tiny_d(0)
    ignored = R3GANDiscriminator(RES, 3, c_dim=0, channel_base=1024, channel_max=16, mbstd_group_size=2,
                                 mbstd_num_channels=4, mapping_layers=2, conv_clamp=256, **D_OPTIONS)
    ignored.load_state_dict(D.state_dict())
    img = torch.randn(2, 3, RES, RES)
    assert torch.equal(D(img), ignored(img))
    with pytest.raises(ConfigError, match="cannot grow progressively; train it with model.growth none"):
        tiny_d(0, progressive=True)
    with pytest.raises(ValueError, match="alpha must be 1"):
        D(img, alpha=0.5)
    with pytest.raises(ValueError, match="conditional .*pass labels"):
        tiny_d(C_DIM)(img)
    with pytest.raises(ValueError, match="conditional .*pass labels"):
        tiny_g(C_DIM)(torch.randn(2, Z_DIM))


@pytest.mark.parametrize("options, message", [
    ({"WidthPerStage": [8, 8]}, r"synthesis_options.WidthPerStage: 16x16 images need 3 positive integers, "
                                r"one per stage from 4x4 \(4x4, 8x8, 16x16\)"),
    ({"CardinalityPerStage": [2, 3, 2]}, r"width times ExpansionFactor \(8 x 2\) must be divisible by .*\(3\)"),
    ({"KernelSize": 4}, r"KernelSize: an odd size"),
    ({"FP16Stages": [3]}, r"FP16Stages: stage indices from -3 to 2"),
    ({"ConditionEmbeddingDimension": 0}, r"ConditionEmbeddingDimension: a positive integer .*c_dim=3"),
])
def test_invalid_options_are_configuration_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        tiny_g(C_DIM, **options)


def test_option_defaults_follow_the_official_code():
    """Left out: two blocks per stage, 768 channels and cardinality 96 up to 32x32, halved per octave
    above (train.py's presets), ExpansionFactor 2, KernelSize 3, filter [1, 2, 1], no FP16 stage,
    label embeddings of z_dim (G) and the 4x4 width (D)."""
    with torch.device("meta"):
        G = R3GANGenerator(z_dim=64, c_dim=10, img_resolution=128, img_channels=3)
        D = R3GANDiscriminator(128, 3, c_dim=10)
    assert [stage.Layers[-1].LinearLayer1.Layer.weight.shape[1] for stage in G.MainLayers] == [768] * 4 + [384, 192]
    assert [stage.Layers[-1].LinearLayer2.Layer.groups for stage in G.MainLayers] == [96] * 4 + [48, 24]
    assert [len(stage.Layers) for stage in G.MainLayers] == [3] * 6 and G.EmbeddingLayer.weight.shape == (64, 10)
    assert G.MainLayers[1].Layers[1].LinearLayer2.Layer.weight.shape == (1536, 16, 3, 3)
    assert [stage.Layers[0].LinearLayer1.Layer.weight.shape[1] for stage in D.MainLayers] == [192, 384] + [768] * 4
    assert D.EmbeddingLayer.weight.shape == (768, 10)
    assert not any(stage.reduced_precision for net in (G, D) for stage in net.MainLayers)


def test_core_finds_and_builds_both_plugins():
    """Through the installed entry points: the names, the distribution, a generator without a W
    space in core's ``Generator`` (``G(z, c)`` is the plugin's output), options checked by core."""
    registry.clear_cache()
    generators, discriminators = registry.index("generator"), registry.index("discriminator")
    assert generators["r3gan"].distribution == discriminators["r3gan"].distribution == "lightning-stylegan-r3gan"
    assert registry.load("generator", "r3gan") is R3GANGenerator
    assert registry.load("discriminator", "r3gan") is R3GANDiscriminator
    G = Generator(img_resolution=RES, img_channels=3, z_dim=Z_DIM, c_dim=C_DIM, topology="r3gan",
                  synthesis_options=G_OPTIONS)
    assert G.w_space is False and G.mapping is None and isinstance(G.synthesis, R3GANGenerator)
    z, c = torch.randn(2, Z_DIM), labels(2, C_DIM, torch.float32)
    assert torch.equal(G(z, c), G.synthesis(z, c))
    with pytest.raises(ConfigError, match="has no option 'WidthsPerStage'; did you mean 'WidthPerStage'"):
        check_synthesis_options("r3gan", {"WidthsPerStage": [8, 8, 8]})
    assert check_synthesis_options("r3gan", {"BlocksPerStage": "[1, 1, 1]"}) == {"BlocksPerStage": [1, 1, 1]}
    D = build_discriminator("r3gan", img_resolution=RES, img_channels=3, c_dim=C_DIM, channel_base=None,
                            mbstd_group_size=4, topology_options=D_OPTIONS)
    assert D(G(z, c), c).shape == (2, 1)
    assert [name for name, _ in D.layers_from_input()] == [
        "ExtractionLayer", "MainLayers.0.Layers.0", "MainLayers.0.Layers.1", "MainLayers.1.Layers.0",
        "MainLayers.1.Layers.1", "MainLayers.1.Layers.2"]
