"""Import checkpoints of rosinality's stylegan2-pytorch into our StyleGAN2 networks.

``rosinality_networks(path_or_dict)`` reads

* a ``train.py`` checkpoint ``{"g", "d", "g_ema", "g_optim", "d_optim", "args", "ada_aug_p"}``,
* a ``convert_weight.py`` file ``{"g_ema", "latent_avg"[, "g", "d"]}`` (official TF weights), or
* a bare ``Generator.state_dict()``,

and returns our ``StyleGAN2`` hyper-parameters with G, D and G_ema: generator topology ``skip``,
normalization ``demod``, ``residual`` discriminator (002_0a18e98dc55024d1.txt config E/F).

Every rosinality hyper-parameter comes from tensor shapes: ``size`` from the number of to-RGB
layers, ``style_dim`` (= z_dim = w_dim) and ``n_mlp`` from the mapping layers ``style.{i}``, the
feature maps of every resolution from the conv weights. Any table of the form
``min(channel_base // res, channel_max)`` is accepted; rosinality's own table (512 up to 32x32,
then ``16384 * channel_multiplier // res``) is that with ``channel_base = 16384 * channel_multiplier``
and ``channel_max = 512`` for ``channel_multiplier`` 1 or 2. ``lr_mlp`` cannot be read from shapes:
the stored mapping weights are N(0, 1) / lr_mlp at initialisation and are used as ``W * lr_mlp /
sqrt(in)``, exactly like our ``mapping_lr_multiplier``, so the value the network was trained with
must be given (rosinality's ``train.py`` always uses the default 0.01).

The weights need no rescaling and no flipping, since both code bases use the same conventions:

* equalized lr: ``EqualLinear`` is ``x @ (W * lr_mul / sqrt(in)).T + b * lr_mul``, ``EqualConv2d``
  uses ``W / sqrt(in * k * k)``, both like ``EqualizedLinear`` / ``EqualizedConv2d``;
  ``FusedLeakyReLU`` is ``lrelu(x + b, 0.2) * sqrt(2)``, our ``bias_act`` with ``lrelu``;
* ``ModulatedConv2d``: style ``modulation(w)`` (bias initialised to 1, like our ``affine``) times
  ``W / sqrt(in * k * k)``, demodulated with eps 1e-8 (Eqs. 1-3). Ours skips the 1/sqrt(fan_in)
  factor before demodulation, which only moves eps (a relative difference of order 1e-8);
* 2x up-sampling is ``conv_transpose2d`` with the unflipped weight, then the [1,3,3,1] blur with
  padding (1, 1) and gain 4: what our ``conv2d_resample`` computes (NVlabs' ``flip_weight=False``);
  down-sampling blurs with padding (2, 2) and convolves with stride 2 (1x1 skips: padding (1, 1));
* ``NoiseInjection``: ``x + weight * noise`` after the conv, before bias and activation, with one
  weight per layer; the buffers ``noises.noise_{i}`` become our ``noise_const``;
* ``ToRGB``: 1x1 modulated conv without demodulation, plus bias, plus the up-sampled skip;
* the discriminator: ``(conv2(conv1(x)) + skip(x)) / sqrt(2)``, minibatch stddev over groups of 4
  with 1 feature map, ``final_conv``, ``final_linear.0`` (lrelu), ``final_linear.1``.

rosinality stores no tracked average of W. ``latent_avg`` (written by ``convert_weight.py``) is
used when present; otherwise ``w_avg`` is the mean of the mapping output over ``W_AVG_SAMPLES``
latents drawn with ``torch.Generator().manual_seed(W_AVG_SEED)``, and a warning says so. G and
G_ema get the same ``w_avg`` (G's moves on with training, as ours does).

Files are read with ``torch.load(weights_only=True)``; the only class allowed besides tensors and
plain containers is ``argparse.Namespace`` (``train.py`` pickles its ``args``), whose unpickling
sets attributes and runs nothing else. ``args.channel_multiplier`` and ``args.lr_mlp`` are used
when present.
"""
from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ..generators.base import block_resolutions, channels_at
from ..network_files import NetworkFileError
from ..networks import Generator
from ..nn.filters import setup_filter
from ..training.options import DiscriminatorOptions, GeneratorOptions
from ..training.run_networks import initial_networks, network_hparams

ROSINALITY_FILTER = (1, 3, 3, 1)
DEFAULT_LR_MLP = 0.01
W_AVG_SAMPLES = 10000
W_AVG_SEED = 0
GENERATOR_KEYS = ("style.1.weight", "input.input", "conv1.conv.weight", "to_rgb1.conv.weight")


def rosinality_table(size: int, channel_multiplier: int) -> dict[int, int]:
    """rosinality's feature maps per resolution: 512 up to 32x32, then 16384 * cm / res."""
    return {res: 512 if res <= 32 else 16384 * channel_multiplier // res for res in block_resolutions(size)}


def read_rosinality(path: str | os.PathLike) -> dict:
    """The checkpoint at ``path``, loaded with ``weights_only=True`` (plus ``argparse.Namespace``)."""
    path = Path(path)
    if not path.is_file():
        raise NetworkFileError(f"{path}: no such file")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError, RuntimeError, ... for foreign files
        raise NetworkFileError(f"{path} is not a rosinality stylegan2-pytorch checkpoint: "
                               f"torch.load(weights_only=True) failed ({str(error).splitlines()[0]})") from error


def looks_like_rosinality(data: object) -> bool:
    """Whether ``data`` is a rosinality checkpoint dict (or a bare generator state dict)."""
    if isinstance(data, dict) and isinstance(data.get("g_ema"), dict):
        data = data["g_ema"]
    return isinstance(data, dict) and all(key in data for key in GENERATOR_KEYS)


def rosinality_config(data: dict, lr_mlp: float | None = None) -> dict:
    """The rosinality hyper-parameters of a checkpoint dict, from its tensor shapes.

    Returns ``size``, ``style_dim``, ``n_mlp``, ``img_channels``, ``lr_mlp`` (the argument, else
    ``args.lr_mlp``, else 0.01), ``g_channels`` and ``d_channels`` (feature maps per resolution;
    ``d_channels`` None without ``"d"``) and ``channel_multiplier`` (None when the table is not
    rosinality's, or all 512 and ``args`` does not say).
    """
    parts = _parts(data, "the checkpoint")
    g = parts["g_ema"]
    n_mlp = _count(g, "style.{}.weight", start=1)
    style_dim = _shape(g, "style.1.weight")[1]
    if n_mlp == 0 or any(_shape(g, f"style.{i}.weight") != (style_dim, style_dim) for i in range(1, n_mlp + 1)):
        raise NetworkFileError(f"The mapping layers style.1 .. style.{n_mlp} are not square "
                               f"[style_dim, style_dim] matrices; this is not a rosinality generator.")
    if _shape(g, "to_rgb1.conv.weight")[1] == 12:  # 4 wavelet sub-bands x RGB
        raise NetworkFileError("This is a SWAGAN generator (rosinality's swagan.py, wavelet outputs); "
                               "only the StyleGAN2 generator of model.py can be converted.")
    num_blocks = _count(g, "to_rgbs.{}.conv.weight")
    size = 4 * 2 ** num_blocks
    g_channels = {4: _shape(g, "input.input")[1]}
    g_channels.update({8 * 2 ** k: _shape(g, f"convs.{2 * k}.conv.weight")[1] for k in range(num_blocks)})
    d_channels = None
    if "d" in parts:
        d = parts["d"]
        d_blocks = _count(d, "convs.{}.conv1.0.weight", start=1)
        d_size = 4 * 2 ** d_blocks
        if d_size != size:
            raise NetworkFileError(f"The discriminator is for {d_size}x{d_size} images, the generator "
                                   f"makes {size}x{size}: the checkpoint is inconsistent.")
        d_channels = {size: _shape(d, "convs.0.0.weight")[0]}
        d_channels.update({size // 2 ** i: _shape(d, f"convs.{i}.conv2.1.weight")[0] for i in range(1, d_blocks + 1)})
    args = parts.get("args", {})
    if lr_mlp is None:
        lr_mlp = float(args.get("lr_mlp", DEFAULT_LR_MLP))
    tables = [t for t in (g_channels, d_channels) if t is not None]
    multipliers = [cm for cm in (1, 2) if all(t == rosinality_table(size, cm) for t in tables)]
    channel_multiplier = None
    if len(multipliers) == 1:
        channel_multiplier = multipliers[0]
    elif multipliers and args.get("channel_multiplier") in multipliers:
        channel_multiplier = int(args["channel_multiplier"])
    return dict(size=size, style_dim=style_dim, n_mlp=n_mlp, img_channels=_shape(g, "to_rgb1.conv.weight")[1],
                lr_mlp=lr_mlp, g_channels=g_channels, d_channels=d_channels,
                channel_multiplier=channel_multiplier)


def channel_options(channels: dict[int, int], channel_multiplier: int | None, what: str) -> tuple[int, int]:
    """``(channel_base, channel_max)`` with ``min(channel_base // res, channel_max) == channels[res]``
    for every resolution, or a clear error when no such pair exists."""
    channel_max = max(channels.values())
    candidates = [max(ch * res for res, ch in channels.items())]  # the least base giving every count
    if channel_multiplier is not None:
        candidates.insert(0, 16384 * channel_multiplier)  # rosinality's own, when it fits
    for base in candidates:
        if all(channels_at(res, base, channel_max) == ch for res, ch in channels.items()):
            return base, channel_max
    raise NetworkFileError(
        f"The {what} has {channels} feature maps per resolution; lightning-stylegan builds "
        f"min(channel_base // resolution, channel_max) maps, which cannot reproduce that table "
        f"(rosinality's channel_multiplier > 2 has more maps at 64x64 than at 32x32). "
        f"This network cannot be converted.")


def rosinality_networks(path_or_dict: str | os.PathLike | dict, lr_mlp: float | None = None
                        ) -> tuple[dict, Generator, nn.Module | None, Generator]:
    """``(hparams, G, D or None, G_ema)`` from a rosinality stylegan2-pytorch checkpoint.

    ``hparams`` are the networks' hyper-parameters (``training.run_networks.network_hparams``). ``G`` comes
    from ``"g"``, or is a copy of G_ema when the file has only ``"g_ema"``; ``D`` is None without
    ``"d"``. ``lr_mlp``: the mapping learning-rate multiplier the network was trained with
    (default: ``args.lr_mlp``, else rosinality's 0.01). G_ema is in eval mode without gradients.
    """
    where = str(path_or_dict) if not isinstance(path_or_dict, dict) else "the checkpoint"
    data = path_or_dict if isinstance(path_or_dict, dict) else read_rosinality(path_or_dict)
    parts = _parts(data, where)
    config = rosinality_config(data, lr_mlp)
    size, cm = config["size"], config["channel_multiplier"]
    g_base, g_max = channel_options(config["g_channels"], cm, "generator")
    d_base, d_max = channel_options(config["d_channels"] or config["g_channels"], cm, "discriminator")
    _check_mapping_scale(parts["g_ema"], config["lr_mlp"])
    hparams = network_hparams(
        resolution=size, channels=config["img_channels"],
        generator=GeneratorOptions(topology="skip", normalization="demod", z_dim=config["style_dim"],
                                   w_dim=config["style_dim"], mapping_layers=config["n_mlp"],
                                   mapping_lr_multiplier=config["lr_mlp"], channel_base=g_base,
                                   channel_max=g_max, use_noise=True),
        discriminator=DiscriminatorOptions(topology="residual", channel_base=d_base, channel_max=d_max,
                                           mbstd_group_size=4, mbstd_num_channels=1))
    G, D, G_ema = initial_networks(hparams)
    keys, filters = _generator_keys(size, config["n_mlp"])
    _transfer(G_ema, parts["g_ema"], keys, filters, f"{where} (g_ema)")
    _transfer(G, parts.get("g", parts["g_ema"]), keys, filters, f"{where} (g)")
    if "latent_avg" in parts:
        w_avg = parts["latent_avg"].reshape(-1).float()
        if w_avg.numel() != config["style_dim"]:
            raise NetworkFileError(f"{where}: latent_avg has {w_avg.numel()} values, "
                                   f"style_dim is {config['style_dim']}")
    else:
        w_avg = mean_w(G_ema)
        warnings.warn(f"{where} has no latent_avg: w_avg (the truncation centre) is the mean of the mapping "
                      f"output over {W_AVG_SAMPLES} latents with seed {W_AVG_SEED}, as rosinality's "
                      f"mean_latent() estimates it.")
    for net in (G, G_ema):
        net.mapping.w_avg.copy_(w_avg)
    if "d" not in parts:
        return hparams, G, None, G_ema
    _transfer(D, parts["d"], *_discriminator_keys(size), f"{where} (d)")
    return hparams, G, D, G_ema


@torch.no_grad()
def mean_w(G: Generator, samples: int = W_AVG_SAMPLES, seed: int = W_AVG_SEED, chunk: int = 1000) -> torch.Tensor:
    """The mean of ``G.mapping`` over ``samples`` N(0, I) latents from a seeded generator."""
    z = torch.randn(samples, G.z_dim, generator=torch.Generator().manual_seed(seed))
    total = torch.zeros(G.w_dim, dtype=torch.float64)
    for part in z.split(chunk):
        total += G.mapping(part, None, update_w_avg=False)[:, 0].double().sum(dim=0)
    return (total / samples).float()


def _parts(data: object, where: str) -> dict:
    """``{"g_ema", ["g"], ["d"], ["latent_avg"], "args": dict}`` of a checkpoint, or a clear error."""
    if not looks_like_rosinality(data):
        keys = sorted(map(str, data))[:10] if isinstance(data, dict) else type(data).__name__
        hint = (" It looks like a lightning-stylegan checkpoint: use it as it is."
                if isinstance(data, dict) and "hyper_parameters" in data else "")
        raise NetworkFileError(
            f"{where} is not a rosinality stylegan2-pytorch checkpoint: expected a dict with a 'g_ema' "
            f"generator state dict (keys {', '.join(GENERATOR_KEYS)}) as train.py and convert_weight.py "
            f"write, or such a state dict itself; got {keys}.{hint}")
    if "g_ema" not in data:
        return {"g_ema": data, "args": {}}
    parts = {name: data[name] for name in ("g", "d", "latent_avg") if data.get(name) is not None}
    parts["g_ema"] = data["g_ema"]
    args = data.get("args")
    parts["args"] = vars(args) if isinstance(args, argparse.Namespace) else args if isinstance(args, dict) else {}
    return parts


def _count(state: dict, pattern: str, start: int = 0) -> int:
    n = 0
    while pattern.format(start + n) in state:
        n += 1
    return n


def _shape(state: dict, key: str) -> tuple[int, ...]:
    if key not in state:
        raise NetworkFileError(f"The checkpoint lacks {key!r}: not a complete rosinality network.")
    return tuple(state[key].shape)


def _check_mapping_scale(g: dict, lr_mlp: float) -> None:
    """Warn when the mapping weights do not look trained with ``lr_mlp``: they start N(0, 1/lr_mlp^2)
    and barely move in training (the update is relative to lr_mlp), so their std is about 1/lr_mlp."""
    std = float(g["style.1.weight"].float().std())
    if not 1 / 3 < std * lr_mlp < 3:
        warnings.warn(f"The mapping weights have std {std:.3g}, far from 1 / lr_mlp = {1 / lr_mlp:.3g}; "
                      f"if the network was trained with another lr_mlp, pass it (lr_mlp=...), or images "
                      f"will differ from the original's.")


def _generator_keys(size: int, n_mlp: int) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Our parameter name -> rosinality's, and rosinality's filter buffers -> their expected value."""
    keys = {f"mapping.fc{i}.{p}": f"style.{i + 1}.{p}" for i in range(n_mlp) for p in ("weight", "bias")}
    keys["synthesis.b4.const"] = "input.input"
    resolutions = block_resolutions(size)
    convs = [("b4.conv1", "conv1")]
    torgbs = [("b4.torgb", "to_rgb1")]
    for k, res in enumerate(resolutions[1:]):
        convs += [(f"b{res}.conv0", f"convs.{2 * k}"), (f"b{res}.conv1", f"convs.{2 * k + 1}")]
        torgbs.append((f"b{res}.torgb", f"to_rgbs.{k}"))
    for i, (ours, theirs) in enumerate(convs):
        keys.update({f"synthesis.{ours}.affine.weight": f"{theirs}.conv.modulation.weight",
                     f"synthesis.{ours}.affine.bias": f"{theirs}.conv.modulation.bias",
                     f"synthesis.{ours}.weight": f"{theirs}.conv.weight",
                     f"synthesis.{ours}.noise_strength": f"{theirs}.noise.weight",
                     f"synthesis.{ours}.noise_const": f"noises.noise_{i}",
                     f"synthesis.{ours}.bias": f"{theirs}.activate.bias"})
    for ours, theirs in torgbs:
        keys.update({f"synthesis.{ours}.affine.weight": f"{theirs}.conv.modulation.weight",
                     f"synthesis.{ours}.affine.bias": f"{theirs}.conv.modulation.bias",
                     f"synthesis.{ours}.weight": f"{theirs}.conv.weight",
                     f"synthesis.{ours}.bias": f"{theirs}.bias"})
    up_filter = setup_filter(ROSINALITY_FILTER) * 4  # rosinality folds the up-sampling gain into the kernel
    filters = {f"convs.{2 * k}.conv.blur.kernel": up_filter for k in range(len(resolutions) - 1)}
    filters.update({f"to_rgbs.{k}.upsample.kernel": up_filter for k in range(len(resolutions) - 1)})
    return keys, filters


def _discriminator_keys(size: int) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    keys = {f"b{size}.fromrgb.weight": "convs.0.0.weight", f"b{size}.fromrgb.bias": "convs.0.1.bias"}
    filters = {}
    for i, res in enumerate(block_resolutions(size)[:0:-1], start=1):  # size, ..., 8
        keys.update({f"b{res}.conv0.weight": f"convs.{i}.conv1.0.weight",
                     f"b{res}.conv0.bias": f"convs.{i}.conv1.1.bias",
                     f"b{res}.conv1.weight": f"convs.{i}.conv2.1.weight",
                     f"b{res}.conv1.bias": f"convs.{i}.conv2.2.bias",
                     f"b{res}.skip.weight": f"convs.{i}.skip.1.weight"})
        filters.update({f"convs.{i}.conv2.0.kernel": setup_filter(ROSINALITY_FILTER),
                        f"convs.{i}.skip.0.kernel": setup_filter(ROSINALITY_FILTER)})
    keys.update({"b4.conv.weight": "final_conv.0.weight", "b4.conv.bias": "final_conv.1.bias",
                 "b4.fc.weight": "final_linear.0.weight", "b4.fc.bias": "final_linear.0.bias",
                 "b4.out.weight": "final_linear.1.weight", "b4.out.bias": "final_linear.1.bias"})
    return keys, filters


def _transfer(net: nn.Module, source: dict, keys: dict[str, str], filters: dict[str, torch.Tensor],
              where: str) -> None:
    """Copy ``source[keys[name]]`` into every ``name`` of ``net``; every source key must be used
    (or be a filter buffer with the expected [1,3,3,1] value), every parameter of ours filled."""
    state = net.state_dict()
    missing = sorted(theirs for theirs in keys.values() if theirs not in source)
    unexpected = sorted(set(source) - set(keys.values()) - set(filters))
    unfilled = sorted(name for name in state if name not in keys and not name.endswith(("resample_filter", "w_avg")))
    if missing or unexpected or unfilled:
        detail = "; ".join(f"{label}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
                           for label, names in [("missing", missing), ("unexpected", unexpected),
                                                ("not converted", unfilled)] if names)
        raise NetworkFileError(f"{where} does not have the layout of rosinality's model.py ({detail})")
    for name, expected in filters.items():
        if name in source and not torch.allclose(source[name].float(), expected, atol=1e-6):
            raise NetworkFileError(f"{where}: {name} is not the [1,3,3,1] blur kernel; networks with "
                                   f"another blur_kernel cannot be converted.")
    for ours, theirs in keys.items():
        value = source[theirs]
        if value.squeeze().shape != state[ours].squeeze().shape:
            raise NetworkFileError(f"{where}: {theirs} has shape {tuple(value.shape)}, the converted network "
                                   f"needs {tuple(state[ours].shape)} for {ours}; the checkpoint is inconsistent.")
        state[ours] = value.reshape(state[ours].shape).to(state[ours].dtype)
    net.load_state_dict(state)
