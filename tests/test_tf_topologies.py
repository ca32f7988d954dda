"""The networks of NVlabs' TF code that differ from stylegan2-ada-pytorch's: the TF mapping
networks (``nn/tf_mapping.py``) against explicit float64 loops, and the ``revised`` topologies of
StyleGAN2 configs B-D (002_0a18e98dc55024d1.txt Table 1; TF ``G_synthesis_stylegan_revised`` and
``D_stylegan``) at the limits of their nearest / box fades and with the label switch."""
from __future__ import annotations

import math

import pytest
import torch

from lightning_stylegan.networks import Generator, build_discriminator
from lightning_stylegan.nn.tf_mapping import ConcatLabelMapping, Stylegan1Mapping

LRMUL = 0.01


@torch.no_grad()
def randomize_biases(module):
    for name, p in module.named_parameters():
        if name.endswith(("bias", "noise_strength")):
            p.copy_(torch.randn_like(p) * 0.5 / LRMUL if "mapping" in name or name.startswith("fc")
                    else torch.randn_like(p) * 0.5)


def lrelu(x):
    return torch.where(x >= 0, x, 0.2 * x)


def reference_mapping(params, z, c, num_layers, gain_inside):
    """TF G_mapping, written as loops: x = concat(z, c @ W_embed) normalized once; per layer
    v1: lrelu(x @ W sqrt2 lrmul / sqrt(in) + b lrmul); StyleGAN2: sqrt2 lrelu(x @ W lrmul / sqrt(in) + b lrmul)."""
    x = z.double()
    if c is not None:
        x = torch.cat([x, c.double() @ params["embed.weight"].double().t()], dim=1)
    x = x / torch.sqrt((x * x).mean(dim=1, keepdim=True) + 1e-8)
    for idx in range(num_layers):
        weight, bias = params[f"fc{idx}.weight"].double(), params[f"fc{idx}.bias"].double() * LRMUL
        fan_in = weight.shape[1]
        out = torch.zeros(x.shape[0], weight.shape[0], dtype=torch.float64)
        for o in range(weight.shape[0]):
            for i in range(fan_in):
                out[:, o] += x[:, i] * weight[o, i]
        if gain_inside:
            x = lrelu(out * (math.sqrt(2) * LRMUL / math.sqrt(fan_in)) + bias)
        else:
            x = math.sqrt(2) * lrelu(out * (LRMUL / math.sqrt(fan_in)) + bias)
    return x


@pytest.mark.parametrize("mapping_class,gain_inside", [(Stylegan1Mapping, True), (ConcatLabelMapping, False)])
@pytest.mark.parametrize("c_dim", [0, 3])
def test_tf_mapping_networks_equal_the_explicit_loops(mapping_class, gain_inside, c_dim):
    torch.manual_seed(0)
    mapping = mapping_class(z_dim=6, c_dim=c_dim, w_dim=5, num_ws=None, num_layers=2,
                            lr_multiplier=LRMUL, w_avg_beta=None)
    randomize_biases(mapping)
    z = torch.randn(4, 6)
    c = torch.eye(3)[[0, 2, 1, 2]] if c_dim else None
    params = dict(mapping.state_dict())
    if c_dim:  # the label embedding is unscaled, at z's width, without bias
        assert set(k for k in params if k.startswith("embed")) == {"embed.weight"}
        assert params["embed.weight"].shape == (6, 3)
    ours = mapping(z, c)
    expected = reference_mapping(params, z, c, 2, gain_inside)
    torch.testing.assert_close(ours.double(), expected, rtol=1e-5, atol=1e-6)


def test_v1_and_tf_mapping_differ_only_in_the_bias_scale():
    """lrelu(sqrt2 a + b) = sqrt2 lrelu(a + b / sqrt2): the same function once the biases are
    rescaled, so the v1 parametrization changes the learning dynamics, not the function class."""
    torch.manual_seed(0)
    v1 = Stylegan1Mapping(z_dim=6, c_dim=0, w_dim=5, num_ws=None, num_layers=3, w_avg_beta=None)
    randomize_biases(v1)
    tf = ConcatLabelMapping(z_dim=6, c_dim=0, w_dim=5, num_ws=None, num_layers=3, w_avg_beta=None)
    state = {k: (v / math.sqrt(2) if k.endswith("bias") else v) for k, v in v1.state_dict().items()}
    tf.load_state_dict(state)
    z = torch.randn(4, 6)
    torch.testing.assert_close(v1(z), tf(z), rtol=1e-5, atol=1e-6)


def test_generators_pick_their_topologys_mapping_network():
    kwargs = dict(img_resolution=16, z_dim=8, w_dim=8, c_dim=2, mapping_layers=1, channel_base=64, channel_max=4)
    assert type(Generator(topology="stylegan1", normalization="adain", **kwargs).mapping) is Stylegan1Mapping
    assert type(Generator(topology="revised", **kwargs).mapping) is ConcatLabelMapping
    assert type(Generator(topology="original", **kwargs).mapping).__name__ == "MappingNetwork"


def tiny_revised_G(seed=0):
    torch.manual_seed(seed)
    G = Generator(img_resolution=32, img_channels=3, z_dim=8, w_dim=8, topology="revised", mapping_layers=1,
                  channel_base=128, channel_max=8, progressive=True).eval()
    randomize_biases(G.synthesis)
    return G


def nearest_up(x):
    out = torch.zeros(*x.shape[:2], 2 * x.shape[2], 2 * x.shape[3], dtype=x.dtype)
    for dy in range(2):
        for dx in range(2):
            out[:, :, dy::2, dx::2] = x
    return out


def box_down(x):
    return (x[:, :, 0::2, 0::2] + x[:, :, 0::2, 1::2] + x[:, :, 1::2, 0::2] + x[:, :, 1::2, 1::2]) / 4


@torch.no_grad()
def test_revised_generator_fades_with_nearest_up_scaling():
    """TF G_synthesis_stylegan_revised: image = lerp(upsample_2d(torgb(R/2)), torgb(R), alpha),
    upsample_2d with its default (box) kernel = nearest neighbours."""
    G = tiny_revised_G()
    ws = torch.randn(2, G.num_ws, 8)
    low = G.synthesis(ws, noise_mode="const", resolution=16, alpha=1.0)
    high = G.synthesis(ws, noise_mode="const", resolution=32, alpha=1.0)
    for alpha in (0.0, 0.3):
        faded = G.synthesis(ws, noise_mode="const", resolution=32, alpha=alpha)
        torch.testing.assert_close(faded, alpha * high + (1 - alpha) * nearest_up(low), rtol=1e-5, atol=1e-6)
    real = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(G.synthesis.downsample_image(real), box_down(real))


def tiny_revised_D(c_dim=0, seed=0):
    torch.manual_seed(seed)
    D = build_discriminator("revised", img_resolution=32, img_channels=3, c_dim=c_dim, channel_base=128,
                            channel_max=8, progressive=True)
    randomize_biases(D)
    return D


@torch.no_grad()
def test_revised_discriminator_fades_with_box_down_scaling():
    """TF D_stylegan: at alpha 0 the features entering b16 are fromRGB_16(naive_downsample_2d(img)),
    so D(img at 32, alpha 0) = D(box(img) at 16)."""
    D = tiny_revised_D()
    img = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(D(img, alpha=0.0), D(box_down(img)), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(D(img, alpha=0.5), D(box_down(img)))


@torch.no_grad()
def test_revised_discriminator_head_is_d_stylegans():
    """Dense0 has nf(0) = min(channel_base / 2, channel_max) features; Output one score per class,
    the label's selected (sum(scores * c)); no label mapping network."""
    D = tiny_revised_D(c_dim=3)
    assert D.b4.fc.weight.shape[0] == min(128 // 2, 8) and D.b4.out.weight.shape[0] == 3
    assert not hasattr(D, "mapping")
    img = torch.randn(4, 3, 32, 32)
    scores = []
    D.b4.register_forward_hook(lambda module, args, out: scores.append(out))
    labels = torch.eye(3)[[0, 1, 2, 1]]
    out = D(img, labels)
    expected = torch.stack([scores[0][n, int(labels[n].argmax())] for n in range(4)]).unsqueeze(1)
    torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError, match=r"c must have shape \[4, 3\]"):
        D(img, None)
