"""Importing rosinality stylegan2-pytorch checkpoints (``lightning_stylegan.tools.convert_rosinality``).

No rosinality code is used: ``write_rosinality`` writes a checkpoint with the key names and shapes
of rosinality's ``model.py`` / ``train.py`` from small random tensors, and ``ref_generator`` /
``ref_discriminator`` compute its networks independently, in float64, in rosinality's
parameterisation of StyleGAN2 (002_0a18e98dc55024d1.txt Section 2.2 Eqs. 1-3, Figure 7, Appendix B):
explicit per-sample modulated and demodulated weights, the stride-2 transposed convolution as an
explicit scatter over kernel taps, the [1,3,3,1] FIR filter as an explicit sum over taps, and the
minibatch-stddev layer as a loop over groups.
"""
from __future__ import annotations

import argparse
import math

import pytest
import torch
import torch.nn.functional as F

from reference_stylegan2 import fir, lrelu, transposed_conv_stride2, upsample

from lightning_stylegan.network_files import NetworkFileError, load_networks, write_checkpoint
from lightning_stylegan.tools.convert_rosinality import (
    W_AVG_SAMPLES, W_AVG_SEED, channel_options, rosinality_config, rosinality_networks, rosinality_table)

DT = torch.float64
SQRT2 = math.sqrt(2)
TAPS = torch.tensor([1.0, 3.0, 3.0, 1.0])
SMALL = {4: 16, 8: 16, 16: 8, 32: 4}  # a small table of the form min(128 // res, 16)


pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------------------------
# A checkpoint in rosinality's layout
# ------------------------------------------------------------------------------------------------

def _blur_kernel(gain: float = 1.0) -> torch.Tensor:
    k = torch.outer(TAPS, TAPS)
    return k / k.sum() * gain


def _tensors(shapes: dict, seed: int, lr_mlp: float, lazy: bool) -> dict:
    """Random tensors: weights N(0, 1) (mapping N(0, 1/lr_mlp^2)), biases, noise strengths and
    modulation biases away from their initial 0 / 1 so every convention shows. ``lazy``: zeros
    that take no memory (for shape-only tests)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        if lazy:
            out[key] = torch.zeros(()).expand(shape)
        elif key.endswith("kernel"):
            out[key] = _blur_kernel(4.0 if ("upsample" in key or ".conv.blur" in key) else 1.0)
        elif key.startswith("style.") and key.endswith("weight"):
            out[key] = torch.randn(shape, generator=g) / lr_mlp
        elif "modulation.bias" in key:
            out[key] = 1 + 0.3 * torch.randn(shape, generator=g)
        elif key.endswith(("bias", "noise.weight")):
            out[key] = 0.3 * torch.randn(shape, generator=g)
        else:
            out[key] = torch.randn(shape, generator=g)
    return out


def generator_shapes(size: int, style_dim: int, n_mlp: int, ch: dict) -> dict:
    """rosinality ``Generator(size, style_dim, n_mlp)`` state-dict keys and shapes, channels ``ch``."""
    shapes = {}
    for i in range(1, n_mlp + 1):
        shapes.update({f"style.{i}.weight": (style_dim, style_dim), f"style.{i}.bias": (style_dim,)})
    shapes["input.input"] = (1, ch[4], 4, 4)

    def styled(name, cin, cout, up):
        shapes.update({f"{name}.conv.weight": (1, cout, cin, 3, 3), f"{name}.conv.modulation.weight": (cin, style_dim),
                       f"{name}.conv.modulation.bias": (cin,), f"{name}.noise.weight": (1,),
                       f"{name}.activate.bias": (cout,)})
        if up:
            shapes[f"{name}.conv.blur.kernel"] = (4, 4)

    def torgb(name, cin, up):
        shapes.update({f"{name}.bias": (1, 3, 1, 1), f"{name}.conv.weight": (1, 3, cin, 1, 1),
                       f"{name}.conv.modulation.weight": (cin, style_dim), f"{name}.conv.modulation.bias": (cin,)})
        if up:
            shapes[f"{name}.upsample.kernel"] = (4, 4)

    styled("conv1", ch[4], ch[4], False)
    torgb("to_rgb1", ch[4], False)
    resolutions = [2 ** i for i in range(3, size.bit_length())]
    for k, res in enumerate(resolutions):
        styled(f"convs.{2 * k}", ch[res // 2], ch[res], True)
        styled(f"convs.{2 * k + 1}", ch[res], ch[res], False)
        torgb(f"to_rgbs.{k}", ch[res], True)
    for i in range(2 * len(resolutions) + 1):
        res = 2 ** ((i + 5) // 2)
        shapes[f"noises.noise_{i}"] = (1, 1, res, res)
    return shapes


def discriminator_shapes(size: int, ch: dict) -> dict:
    """rosinality ``Discriminator(size)`` state-dict keys and shapes, channels ``ch``."""
    shapes = {"convs.0.0.weight": (ch[size], 3, 1, 1), "convs.0.1.bias": (ch[size],)}
    for i, res in enumerate([2 ** j for j in range(size.bit_length() - 1, 2, -1)], start=1):
        cin, cout = ch[res], ch[res // 2]
        shapes.update({f"convs.{i}.conv1.0.weight": (cin, cin, 3, 3), f"convs.{i}.conv1.1.bias": (cin,),
                       f"convs.{i}.conv2.0.kernel": (4, 4), f"convs.{i}.conv2.1.weight": (cout, cin, 3, 3),
                       f"convs.{i}.conv2.2.bias": (cout,), f"convs.{i}.skip.0.kernel": (4, 4),
                       f"convs.{i}.skip.1.weight": (cout, cin, 1, 1)})
    shapes.update({"final_conv.0.weight": (ch[4], ch[4] + 1, 3, 3), "final_conv.1.bias": (ch[4],),
                   "final_linear.0.weight": (ch[4], ch[4] * 16), "final_linear.0.bias": (ch[4],),
                   "final_linear.1.weight": (1, ch[4]), "final_linear.1.bias": (1,)})
    return shapes


def rosinality_checkpoint(size=16, style_dim=16, n_mlp=2, ch=None, lr_mlp=0.01, seed=0, lazy=False,
                          parts=("g", "d", "g_ema"), latent_avg=False, args=None) -> dict:
    """A checkpoint dict like rosinality's train.py (``parts``) or convert_weight.py (``latent_avg``)."""
    ch = ch or SMALL
    g_shapes = generator_shapes(size, style_dim, n_mlp, ch)
    data = {}
    for i, name in enumerate(parts):
        shapes = discriminator_shapes(size, ch) if name == "d" else g_shapes
        data[name] = _tensors(shapes, seed + i, lr_mlp, lazy)
    if latent_avg:
        data["latent_avg"] = torch.randn(style_dim, generator=torch.Generator().manual_seed(seed + 7))
    if "g" in parts:
        data.update(g_optim={"state": {}, "param_groups": []}, d_optim={"state": {}, "param_groups": []},
                    ada_aug_p=0.0, args=args or argparse.Namespace(size=size, latent=style_dim, n_mlp=n_mlp,
                                                                   channel_multiplier=2, path="lmdb"))
    return data


def write_rosinality(path, **kwargs) -> dict:
    data = rosinality_checkpoint(**kwargs)
    torch.save(data, path)
    return data


# ------------------------------------------------------------------------------------------------
# Independent reference of rosinality's networks (float64)
# ------------------------------------------------------------------------------------------------

def _linear(x, weight, bias, lr_mul=1.0):
    """Equalized lr: W * lr_mul / sqrt(in), b * lr_mul."""
    return x @ (weight.to(DT) * lr_mul / math.sqrt(weight.shape[1])).t() + bias.to(DT) * lr_mul


def _modconv(x, s, name, w, demodulate=True, up=False):
    """Eq. 1 w'_ijk = s_i w_ijk (w scaled by 1/sqrt(fan_in)), Eq. 3 w'' = w' / sqrt(sum_ik w'^2 + 1e-8),
    each sample convolved with its own weights."""
    weight = s[f"{name}.conv.weight"][0].to(DT)
    cout, cin, k, _ = weight.shape
    styles = _linear(w, s[f"{name}.conv.modulation.weight"], s[f"{name}.conv.modulation.bias"])
    outs = []
    for n in range(x.shape[0]):
        wn = weight / math.sqrt(cin * k * k) * styles[n].reshape(1, cin, 1, 1)  # Eq. 1
        if demodulate:
            wn = wn / (wn.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()  # Eqs. 2-3
        if up:  # transposed conv, then the blur with padding (1, 1) and gain 4
            outs.append(fir(transposed_conv_stride2(x[n:n + 1], wn), 1, 1, gain=4))
        else:
            outs.append(F.conv2d(x[n:n + 1], wn, padding=k // 2))
    return torch.cat(outs)


def _styled(x, s, name, w, noise, up=False):
    x = _modconv(x, s, name, w, up=up) + s[f"{name}.noise.weight"].to(DT) * noise.to(DT)
    return lrelu(x + s[f"{name}.activate.bias"].to(DT).reshape(1, -1, 1, 1))


def _torgb(x, s, name, w, skip):
    y = _modconv(x, s, name, w, demodulate=False) + s[f"{name}.bias"].to(DT).reshape(1, -1, 1, 1)
    return y if skip is None else y + upsample(skip)


def ref_mapping(s, z, n_mlp, lr_mlp):
    x = z.to(DT) / (z.to(DT).square().mean(dim=1, keepdim=True) + 1e-8).sqrt()  # pixel norm of z
    for i in range(1, n_mlp + 1):
        x = lrelu(_linear(x, s[f"style.{i}.weight"], s[f"style.{i}.bias"], lr_mlp))
    return x


def ref_synthesis(s, ws):
    """rosinality's style indices: conv1 <- 0, to_rgb1 <- 1, then per block conv <- i, i + 1,
    to_rgb <- i + 2 (the to-RGB style is shared with the next block's first conv)."""
    ws = ws.to(DT)
    x = s["input.input"].to(DT).repeat(ws.shape[0], 1, 1, 1)
    x = _styled(x, s, "conv1", ws[:, 0], s["noises.noise_0"])
    img = _torgb(x, s, "to_rgb1", ws[:, 1], None)
    k = 0
    while f"to_rgbs.{k}.conv.weight" in s:
        i = 2 * k + 1
        x = _styled(x, s, f"convs.{2 * k}", ws[:, i], s[f"noises.noise_{i}"], up=True)
        x = _styled(x, s, f"convs.{2 * k + 1}", ws[:, i + 1], s[f"noises.noise_{i + 1}"])
        img = _torgb(x, s, f"to_rgbs.{k}", ws[:, i + 2], img)
        k += 1
    return img


def ref_discriminator(s, img):
    def conv(x, weight, stride=1, padding=0):
        weight = weight.to(DT)
        return F.conv2d(x, weight / math.sqrt(weight[0].numel()), stride=stride, padding=padding)

    def bias(name):
        return s[name].to(DT).reshape(1, -1, 1, 1)

    x = lrelu(conv(img.to(DT), s["convs.0.0.weight"]) + bias("convs.0.1.bias"))
    i = 1
    while f"convs.{i}.conv1.0.weight" in s:
        y = lrelu(conv(x, s[f"convs.{i}.conv1.0.weight"], padding=1) + bias(f"convs.{i}.conv1.1.bias"))
        y = lrelu(conv(fir(y, 2, 2), s[f"convs.{i}.conv2.1.weight"], stride=2) + bias(f"convs.{i}.conv2.2.bias"))
        skip = conv(fir(x, 1, 1), s[f"convs.{i}.skip.1.weight"], stride=2)
        x = (y + skip) / SQRT2  # Figure 7c, footnote 3
        i += 1
    n = x.shape[0]
    groups = n // min(4, n)  # samples m, m + groups, m + 2 groups, ... form one group
    std = torch.empty(n, dtype=DT)
    for m in range(groups):
        members = x[m::groups]
        value = (members.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        std[m::groups] = value
    x = torch.cat([x, std.reshape(n, 1, 1, 1).expand(n, 1, 4, 4)], dim=1)
    x = lrelu(conv(x, s["final_conv.0.weight"], padding=1) + bias("final_conv.1.bias")).flatten(1)
    x = lrelu(_linear(x, s["final_linear.0.weight"], s["final_linear.0.bias"]))
    return _linear(x, s["final_linear.1.weight"], s["final_linear.1.bias"])


def _max_diff(a, b):
    return float((a.to(DT) - b.to(DT)).abs().max())


# ------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size,style_dim,n_mlp", [(16, 16, 2), (32, 8, 3)])
def test_generator_matches_reference(tmp_path, size, style_dim, n_mlp):
    """StyleGAN2 (002_0a18e98dc55024d1.txt) Eqs. 1-3 and Figure 7b (skip generator) in rosinality's
    parameterisation: the converted G_ema and G reproduce the reference for distinct styles per
    layer, and G_ema for z -> image with constant noise at psi = 1 and psi = 0.7 around latent_avg
    (the truncation trick w' = w_avg + psi (w - w_avg)), within 1e-4."""
    path = tmp_path / "rosinality.pt"
    data = write_rosinality(path, size=size, style_dim=style_dim, n_mlp=n_mlp, latent_avg=True)
    hparams, G, D, G_ema = rosinality_networks(path)
    assert (hparams["resolution"], hparams["generator"]["w_dim"], hparams["generator"]["mapping_layers"]) \
        == (size, style_dim, n_mlp)
    assert D is not None and not G_ema.training
    gen = torch.Generator().manual_seed(1)
    ws = torch.randn(3, G_ema.num_ws, style_dim, generator=gen)
    with torch.no_grad():
        for net, name in [(G_ema, "g_ema"), (G, "g")]:
            got = net.synthesis(ws, noise_mode="const", fused_modconv=True)
            assert _max_diff(got, ref_synthesis(data[name], ws)) < 1e-4
        z = torch.randn(3, style_dim, generator=gen)
        w = ref_mapping(data["g_ema"], z, n_mlp, 0.01)
        w_avg = data["latent_avg"].to(DT)
        assert torch.equal(G_ema.mapping.w_avg, data["latent_avg"])
        for psi in (1.0, 0.7):
            ws_ref = (w_avg + psi * (w - w_avg)).unsqueeze(1).repeat(1, G_ema.num_ws, 1)
            expected = ref_synthesis(data["g_ema"], ws_ref)
            assert _max_diff(G_ema(z, truncation_psi=psi, noise_mode="const"), expected) < 1e-4
            assert _max_diff(G_ema(z, truncation_psi=psi, noise_mode="const", fused_modconv=False), expected) < 1e-4


def test_discriminator_matches_reference(tmp_path):
    """StyleGAN2 Figure 7c residual D ((conv(conv(x)) + skip(x)) / sqrt(2), FIR down-sampling) and
    the minibatch-stddev layer (group 4, one map) as rosinality computes them: converted D logits
    equal the reference within 1e-4, for 8 images (two interleaved groups)."""
    path = tmp_path / "rosinality.pt"
    data = write_rosinality(path, size=16, style_dim=8, n_mlp=1, latent_avg=True)
    _, _, D, _ = rosinality_networks(path)
    img = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert _max_diff(D(img), ref_discriminator(data["d"], img)) < 1e-4


def test_converted_networks_round_trip_through_our_checkpoint(tmp_path):
    """The returned hparams build the same networks: written with write_checkpoint and read back
    with load_networks, G_ema and D give the same images and logits."""
    data = rosinality_checkpoint(size=16, style_dim=8, n_mlp=2, latent_avg=True)
    hparams, G, D, G_ema = rosinality_networks(data)
    nets = load_networks(write_checkpoint(tmp_path / "converted.ckpt", hparams, G, D, G_ema, source="rosinality"))
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        img = G_ema(z, truncation_psi=0.7, noise_mode="const")
        assert torch.equal(nets.G_ema(z, truncation_psi=0.7, noise_mode="const"), img)
        assert torch.equal(nets.D(img), D.eval()(img))


def test_w_avg_without_latent_avg_is_the_seeded_mapping_mean(tmp_path):
    """rosinality stores no w average: w_avg is the mean of the mapping over W_AVG_SAMPLES latents
    from the fixed seed, with a warning; a convert_weight.py file without "g" gives G = G_ema."""
    data = rosinality_checkpoint(size=16, style_dim=8, n_mlp=2, parts=("g_ema",))
    with pytest.warns(UserWarning, match="no latent_avg"):
        _, G, D, G_ema = rosinality_networks(data)
    z = torch.randn(W_AVG_SAMPLES, 8, generator=torch.Generator().manual_seed(W_AVG_SEED))
    expected = ref_mapping(data["g_ema"], z, 2, 0.01).mean(dim=0)
    assert _max_diff(G_ema.mapping.w_avg, expected) < 1e-4
    assert D is None
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), G_ema.state_dict().values()))


def test_lr_mlp_is_an_option_with_a_warning_for_the_wrong_one():
    """Equalized lr of the mapping (StyleGAN2 Appendix B, 100x lower lr): weights stored N(0, 1/lr_mlp^2)
    act as W * lr_mlp / sqrt(in). A network trained with lr_mlp = 0.1 converts exactly with
    lr_mlp=0.1 (or args.lr_mlp); the default 0.01 warns that the weights' scale does not fit."""
    data = rosinality_checkpoint(size=16, style_dim=8, n_mlp=2, lr_mlp=0.1, parts=("g_ema",), latent_avg=True)
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(3))
    expected = ref_mapping(data["g_ema"], z, 2, 0.1)
    for kwargs, source in [(dict(lr_mlp=0.1), data),
                           ({}, data | {"args": argparse.Namespace(lr_mlp=0.1)})]:
        hparams, _, _, G_ema = rosinality_networks(source, **kwargs)
        assert hparams["generator"]["mapping_lr_multiplier"] == 0.1
        assert _max_diff(G_ema.mapping(z, None)[:, 0], expected) < 1e-5
    with pytest.warns(UserWarning, match="lr_mlp"):
        rosinality_networks(data)


@pytest.mark.parametrize("size,cm", [(64, 1), (128, 2), (256, 1), (1024, 2)])
def test_shape_inference_of_rosinality_configs(size, cm):
    """size, style_dim, n_mlp and channel_multiplier come from the tensor shapes of rosinality's
    own channel table (512 up to 32x32, then 16384 cm / res), which our channel_base = 16384 cm,
    channel_max = 512 reproduce."""
    table = rosinality_table(size, cm)
    data = rosinality_checkpoint(size=size, style_dim=64, n_mlp=5, ch=table, lazy=True,
                                 args=argparse.Namespace(channel_multiplier=3 - cm))  # shapes win over args
    config = rosinality_config(data)
    assert (config["size"], config["style_dim"], config["n_mlp"], config["channel_multiplier"]) == (size, 64, 5, cm)
    assert config["g_channels"] == config["d_channels"] == table
    assert channel_options(table, cm, "generator") == (16384 * cm, 512)


def test_channel_multiplier_of_an_all_512_table_comes_from_args():
    """Up to 32x32 every rosinality layer has 512 maps whatever channel_multiplier: the shapes
    cannot tell it, so args.channel_multiplier (train.py) decides, else it is None."""
    table = rosinality_table(32, 1)
    data = rosinality_checkpoint(size=32, style_dim=8, n_mlp=1, ch=table, lazy=True,
                                 args=argparse.Namespace(channel_multiplier=2))
    assert rosinality_config(data)["channel_multiplier"] == 2
    assert channel_options(table, 2, "generator") == (32768, 512)
    del data["args"]
    assert rosinality_config(data)["channel_multiplier"] is None


def test_unrepresentable_channel_table_is_a_clear_error():
    """channel_multiplier 4 gives 1024 maps at 64x64 but 512 at 32x32: no min(base // res, max)."""
    data = rosinality_checkpoint(size=64, style_dim=8, n_mlp=1, ch=rosinality_table(64, 4), lazy=True)
    with pytest.raises(NetworkFileError, match="channel_multiplier > 2"):
        rosinality_networks(data)


def test_not_a_rosinality_checkpoint(tmp_path, tiny_ckpt):
    """Foreign dicts and files, foreign blur kernels and stray keys are refused with a clear error."""
    with pytest.raises(NetworkFileError, match="not a rosinality stylegan2-pytorch checkpoint.*'g_ema'"):
        rosinality_networks({"model": {"weight": torch.zeros(1)}})
    with pytest.raises(NetworkFileError, match="lightning-stylegan checkpoint"):
        rosinality_networks(tiny_ckpt)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(NetworkFileError, match="weights_only"):
        rosinality_networks(text)
    data = rosinality_checkpoint(size=16, style_dim=8, n_mlp=1, parts=("g_ema",), latent_avg=True)
    data["g_ema"]["convs.0.conv.blur.kernel"] = torch.ones(4, 4) / 4
    with pytest.raises(NetworkFileError, match="blur_kernel"):
        rosinality_networks(data)
    data = rosinality_checkpoint(size=16, style_dim=8, n_mlp=1, parts=("g_ema",), latent_avg=True)
    data["g_ema"]["convs.0.extra.weight"] = torch.zeros(1)
    with pytest.raises(NetworkFileError, match="unexpected: convs.0.extra.weight"):
        rosinality_networks(data)


class _Payload:
    """Unpickling this would create a file: what a malicious checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_file_is_read_with_weights_only(tmp_path):
    """The checkpoint is read with torch.load(weights_only=True), argparse.Namespace (train.py's
    args) allowed: a pickle that would call a function is refused and executes nothing."""
    marker = tmp_path / "pwned"
    data = rosinality_checkpoint(size=16, style_dim=8, n_mlp=1, parts=("g", "g_ema"))
    assert isinstance(data["args"], argparse.Namespace)
    torch.save(data, tmp_path / "good.pt")
    with pytest.warns(UserWarning, match="no latent_avg"):  # train.py checkpoints have none
        rosinality_networks(tmp_path / "good.pt")  # loads, args and all
    torch.save(data | {"args": _Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(NetworkFileError, match="weights_only"):
        rosinality_networks(tmp_path / "evil.pt")
    assert not marker.exists()
