"""NVlabs StyleGAN3 network pickles written without NVlabs' code, and a float64 NumPy reference of the
network they hold, written from the equations of Karras et al. 2021 ("Alias-Free Generative
Adversarial Networks"; 003_22a7711458f25a1a.txt) and the published pickle format, not from our
layers.

* ``Config``: the init kwargs of a ``training.networks_stylegan3.Generator`` as ``train.py --cfg
  stylegan3-t / stylegan3-r`` writes them (with small sizes), and ``schedule`` the band schedule
  they imply (Section 3.2, Figure 4b: cutoffs f_c and stopbands f_t on geometric progressions,
  sampling rates the powers of two >= 2 f_t, the last layers critically sampled).
* ``random_generator``: a module tree with NVlabs' module and tensor names and shapes, filled with
  random values (biases, magnitude EMAs, w_avg and the input affine away from their initial
  values, so every convention shows) and the designed low-pass filters (``scipy.signal.firwin``'s
  Kaiser-windowed sinc; the radial jinc of Appendix C.2 for R's down-sampling filters), and the
  other attributes NVlabs' modules pickle (sizes as numpy arrays, rates and cutoffs as numpy
  scalars, ``use_fp16`` as a numpy bool, ``layer_names``). It becomes a pickle through
  ``tests/nvlabs_format.py`` of the core.
* ``generate``: images from a state dict, in float64: the mapping network (StyleGAN2's, 2
  normalizations, lrelu layers, truncation), the Fourier input (Section 3.1 / Appendix F: a learned
  rotation and translation of the frequencies from w, then the user transform, band-limited
  amplitudes), modulated convolutions with demodulation and the input gain ``magnitude_ema^-1/2``
  (Section 3.2), the filtered leaky ReLU (up-sample by zero insertion + the designed filter,
  leaky ReLU * sqrt 2, clamp, filter + down-sample; Section 3.2, Figure 4c), the linear to-RGB
  layer and the output scale.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.signal
import scipy.special
import torch
from torch import nn


@dataclass
class Config:
    """The kwargs of one NVlabs StyleGAN3 generator; ``kwargs()`` is what the pickle records."""

    img_resolution: int
    img_channels: int = 3
    z_dim: int = 8
    w_dim: int = 8
    c_dim: int = 0
    mapping_layers: int = 2
    channel_base: int = 128
    channel_max: int = 8
    num_layers: int = 6
    num_critical: int = 2
    conv_kernel: int = 3
    use_radial_filters: bool = False
    conv_clamp: float | None = 256
    extra: dict = field(default_factory=dict)  # further kwargs, as written into the pickle
    first_cutoff: float = 2
    first_stopband: float = 2 ** 2.1
    last_stopband_rel: float = 2 ** 0.3
    margin_size: int = 10
    output_scale: float = 0.25
    filter_size: int = 6
    lrelu_upsampling: int = 2

    def kwargs(self) -> dict:
        """As ``train.py`` records them: T sets only magnitude_ema_beta (and the sizes); R adds
        conv_kernel 1 and radial filters. Our tiny configs add num_layers / num_critical, and
        conv_clamp when it is not NVlabs' default 256."""
        kwargs = dict(z_dim=self.z_dim, w_dim=self.w_dim, mapping_kwargs=dict(num_layers=self.mapping_layers),
                      channel_base=self.channel_base, channel_max=self.channel_max,
                      magnitude_ema_beta=0.5 ** (32 / 20e3), num_layers=self.num_layers,
                      num_critical=self.num_critical, c_dim=self.c_dim, img_resolution=self.img_resolution,
                      img_channels=self.img_channels)
        if self.conv_kernel != 3 or self.use_radial_filters:
            kwargs.update(conv_kernel=self.conv_kernel, use_radial_filters=self.use_radial_filters)
        if self.conv_clamp != 256:
            kwargs.update(conv_clamp=self.conv_clamp, num_fp16_res=0)
        return kwargs | self.extra


@dataclass
class Layer:
    name: str
    is_torgb: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    conv_kernel: int
    up: int
    down: int
    up_filter: np.ndarray | None
    down_filter: np.ndarray | None
    padding: tuple[int, int]  # (before, after), the same on both axes
    nvlabs_state: dict  # the other attributes NVlabs' SynthesisLayer pickles, with their numpy types


def schedule(cfg: Config) -> tuple[dict, list[Layer]]:
    """The input's (channels, size, sampling rate, bandwidth) and the layers, from Section 3.2."""
    n = cfg.num_layers
    t = np.minimum(np.arange(n + 1) / (n - cfg.num_critical), 1.0)
    last_cutoff = cfg.img_resolution / 2
    cutoff = cfg.first_cutoff * (last_cutoff / cfg.first_cutoff) ** t
    stopband = cfg.first_stopband * (last_cutoff * cfg.last_stopband_rel / cfg.first_stopband) ** t
    rate = 2.0 ** np.ceil(np.log2(np.minimum(2 * stopband, cfg.img_resolution)))
    half_width = np.maximum(stopband, rate / 2) - cutoff
    size = rate + 2 * cfg.margin_size
    size[-2:] = cfg.img_resolution
    channels = np.rint(np.minimum(cfg.channel_base / 2 / cutoff, cfg.channel_max))
    channels[-1] = cfg.img_channels
    layers = []
    for i in range(n + 1):
        p = max(i - 1, 0)
        torgb = i == n
        tmp_rate = max(rate[p], rate[i]) * (1 if torgb else cfg.lrelu_upsampling)
        up, down = int(round(tmp_rate / rate[p])), int(round(tmp_rate / rate[i]))
        up_taps = cfg.filter_size * up if up > 1 and not torgb else 1
        down_taps = cfg.filter_size * down if down > 1 and not torgb else 1
        radial = cfg.use_radial_filters and i < n - cfg.num_critical
        kernel = 1 if torgb else cfg.conv_kernel
        # Appendix C.3: pad so that the output has out_size samples, placed symmetrically.
        total = (int(size[i]) - 1) * down + 1 - (int(size[p]) + kernel - 1) * up + up_taps + down_taps - 2
        before = (total + up) // 2
        state = dict(w_dim=cfg.w_dim, is_torgb=torgb, is_critically_sampled=i >= n - cfg.num_critical,
                     use_fp16=rate[i] * 2 ** 4 > cfg.img_resolution, in_channels=int(channels[p]),
                     out_channels=int(channels[i]), in_size=np.broadcast_to(np.asarray(int(size[p])), [2]),
                     out_size=np.broadcast_to(np.asarray(int(size[i])), [2]), in_sampling_rate=int(rate[p]),
                     out_sampling_rate=int(rate[i]), tmp_sampling_rate=int(tmp_rate), in_cutoff=cutoff[p],
                     out_cutoff=cutoff[i], in_half_width=half_width[p], out_half_width=half_width[i],
                     conv_kernel=kernel, conv_clamp=cfg.conv_clamp, magnitude_ema_beta=0.5 ** (32 / 20e3),
                     up_factor=up, up_taps=up_taps, down_factor=down, down_taps=down_taps, down_radial=radial,
                     padding=[before, total - before, before, total - before])
        layers.append(Layer(f"L{i}_{int(size[i])}_{int(channels[i])}", torgb, int(channels[p]), int(channels[i]),
                            int(size[p]), int(size[i]), kernel, up, down,
                            lowpass(up_taps, cutoff[p], 2 * half_width[p], tmp_rate),
                            lowpass(down_taps, cutoff[i], 2 * half_width[i], tmp_rate, radial),
                            (before, total - before), state))
    first = dict(channels=int(channels[0]), size=int(size[0]), rate=float(rate[0]), bandwidth=float(cutoff[0]))
    first["nvlabs_state"] = dict(w_dim=cfg.w_dim, channels=first["channels"],
                                 size=np.broadcast_to(np.asarray(first["size"]), [2]), sampling_rate=rate[0],
                                 bandwidth=cutoff[0])
    return first, layers


def lowpass(taps: int, cutoff: float, width: float, fs: float, radial: bool = False) -> np.ndarray | None:
    """None for one tap (the identity); else the Kaiser-windowed sinc (separable), or the jinc
    ``J1(2 pi f_c r) / (pi r)`` windowed by the outer product of the Kaiser window (radial)."""
    if taps == 1:
        return None
    if not radial:
        return scipy.signal.firwin(taps, cutoff, width=width, fs=fs).astype(np.float32)
    x = (np.arange(taps) - (taps - 1) / 2) / fs
    r = np.hypot(x[None, :], x[:, None])
    jinc = scipy.special.j1(2 * math.pi * cutoff * r) / (math.pi * r)
    window = np.kaiser(taps, scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(taps, width / (fs / 2))))
    f = jinc * np.outer(window, window)
    return (f / f.sum()).astype(np.float32)


def _module(tensors: dict[str, torch.Tensor | None], buffers: tuple[str, ...] = ()) -> nn.Module:
    module = nn.Module()
    for name, value in tensors.items():
        if name in buffers:
            module.register_buffer(name, value)
        else:
            module.register_parameter(name, nn.Parameter(value, requires_grad=False))
    return module


def random_generator(cfg: Config, seed: int = 0) -> nn.Module:
    """A module tree with NVlabs' names (``mapping.fc{i}``, ``mapping.embed``, ``mapping.w_avg``,
    ``synthesis.input.*``, ``synthesis.L{i}_{size}_{channels}.*``) and random values."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=g) * scale

    lr = 0.01  # the mapping layers' learning-rate multiplier: stored weights are w / lr
    root = nn.Module()
    root.mapping = nn.Module()
    features = cfg.z_dim + (cfg.w_dim if cfg.c_dim else 0)
    if cfg.c_dim:
        root.mapping.embed = _module(dict(weight=randn(cfg.w_dim, cfg.c_dim), bias=randn(cfg.w_dim, scale=0.3)))
    for i in range(cfg.mapping_layers):
        root.mapping.add_module(f"fc{i}", _module(dict(weight=randn(cfg.w_dim, features, scale=1 / lr),
                                                       bias=randn(cfg.w_dim, scale=0.3 / lr))))
        features = cfg.w_dim
    root.mapping.register_buffer("w_avg", randn(cfg.w_dim, scale=0.5))
    root.synthesis = nn.Module()
    first, layers = schedule(cfg)
    freqs = randn(first["channels"], 2)
    radii = freqs.square().sum(1, keepdim=True).sqrt()
    freqs = freqs / (radii * radii.square().exp().pow(0.25)) * first["bandwidth"]
    root.synthesis.input = _module(dict(weight=randn(first["channels"], first["channels"]), transform=torch.eye(3),
                                        freqs=freqs, phases=torch.rand(first["channels"], generator=g) - 0.5),
                                   buffers=("transform", "freqs", "phases"))
    root.synthesis.input.nvlabs_state = first["nvlabs_state"]
    root.synthesis.nvlabs_state = dict(w_dim=cfg.w_dim, num_ws=cfg.num_layers + 2, img_resolution=cfg.img_resolution,
                                       img_channels=cfg.img_channels, num_layers=cfg.num_layers,
                                       num_critical=cfg.num_critical, margin_size=cfg.margin_size,
                                       output_scale=cfg.output_scale, num_fp16_res=4,
                                       layer_names=[layer.name for layer in layers])
    root.synthesis.input.affine = _module(dict(weight=randn(4, cfg.w_dim, scale=0.5),
                                               bias=torch.tensor([1.0, 0.0, 0.0, 0.0]) + randn(4, scale=0.2)))
    for layer in layers:
        k = layer.conv_kernel
        # To-RGB is not demodulated: a larger weight (and a smaller bias) spreads the images over more levels.
        gain = 4.0 if layer.is_torgb else 1.0
        tensors = dict(weight=randn(layer.out_channels, layer.in_channels, k, k, scale=gain),
                       bias=randn(layer.out_channels, scale=0.3 / gain),
                       magnitude_ema=torch.rand([], generator=g) * 1.5 + 0.5,
                       up_filter=None if layer.up_filter is None else torch.from_numpy(layer.up_filter),
                       down_filter=None if layer.down_filter is None else torch.from_numpy(layer.down_filter))
        module = _module(tensors, buffers=("magnitude_ema", "up_filter", "down_filter"))
        module.nvlabs_state = layer.nvlabs_state
        module.affine = _module(dict(weight=randn(layer.in_channels, cfg.w_dim),
                                     bias=1 + randn(layer.in_channels, scale=0.3)))
        root.synthesis.add_module(layer.name, module)
    return root


def class_names(path: str, in_discriminator: bool) -> str:
    """NVlabs' class of the module at ``path`` of a networks_stylegan3 Generator (persistence records
    bare class names); D's modules are StyleGAN2's (``nvlabs_format``'s default)."""
    from nvlabs_format import _class_name

    if in_discriminator:
        return _class_name(path, True)
    last = path.rsplit(".", 1)[-1]
    if last == "mapping":
        return "MappingNetwork"
    if last == "synthesis":
        return "SynthesisNetwork"
    if last == "input":
        return "SynthesisInput"
    if last.startswith("L") and path.startswith("synthesis."):
        return "SynthesisLayer"
    return "FullyConnectedLayer"  # fc{i}, embed, affine


# ---------------------------------------------------------------------------------------------------
# The float64 reference.

def _fc(x: np.ndarray, state: dict, prefix: str, lr: float = 1.0) -> np.ndarray:
    """Equalized-lr linear layer: x W^T * lr / sqrt(in) + b * lr."""
    weight, bias = state[prefix + "weight"], state[prefix + "bias"]
    return x @ weight.T * (lr / math.sqrt(weight.shape[1])) + bias * lr


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.sqrt((x ** 2).mean(axis=1, keepdims=True) + 1e-8)


def mapping(state: dict, cfg: Config, z: np.ndarray, c: np.ndarray | None, psi: float) -> np.ndarray:
    """z [N, z_dim] -> w [N, w_dim]: normalized z (and embedded, normalized c), lrelu layers, truncation."""
    x = _normalize(z.astype(np.float32).astype(np.float64))
    if cfg.c_dim:
        x = np.concatenate([x, _normalize(_fc(c, state, "mapping.embed."))], axis=1)
    for i in range(cfg.mapping_layers):
        x = _fc(x, state, f"mapping.fc{i}.", lr=0.01)
        x = np.where(x >= 0, x, 0.2 * x) * math.sqrt(2)
    w_avg = state["mapping.w_avg"]
    return w_avg + psi * (x - w_avg)


def fourier_input(state: dict, first: dict, w: np.ndarray) -> np.ndarray:
    """Appendix F: t = (r_c, r_s, t_x, t_y) from w, rotation normalized; the frequencies and phases
    seen through rotation, translation and the user transform; sin(2 pi (<f, x> + phi)) on the
    pixel-center grid, faded out above the band; a learned channel mix."""
    p = "synthesis.input."
    size, rate, bandwidth = first["size"], first["rate"], first["bandwidth"]
    coords = (np.arange(size) + 0.5 - size / 2) / rate  # pixel centers; the image spans size / rate
    out = []
    for w_n in w:
        t = _fc(w_n[None], state, p + "affine.")[0]
        t = t / np.hypot(t[0], t[1])
        rotation = np.array([[t[0], -t[1], 0], [t[1], t[0], 0], [0, 0, 1.0]])
        translation = np.array([[1, 0, -t[2]], [0, 1, -t[3]], [0, 0, 1.0]])
        m = rotation @ translation @ state[p + "transform"]
        freqs = state[p + "freqs"] @ m[:2, :2]
        phases = state[p + "phases"] + state[p + "freqs"] @ m[:2, 2]
        amplitude = np.clip(1 - (np.hypot(freqs[:, 0], freqs[:, 1]) - bandwidth) / (rate / 2 - bandwidth), 0, 1)
        arg = (freqs[:, 0, None, None] * coords[None, None, :] + freqs[:, 1, None, None] * coords[None, :, None]
               + phases[:, None, None])
        features = np.sin(2 * math.pi * arg) * amplitude[:, None, None]  # [C, y, x]
        weight = state[p + "weight"] / math.sqrt(first["channels"])
        out.append(np.einsum("oc,cyx->oyx", weight, features))
    return np.stack(out)


def _filter_axis(x: np.ndarray, f: np.ndarray, axis: int) -> np.ndarray:
    """Valid-mode convolution with the 1-D filter f along ``axis`` (f is symmetric: no flip needed,
    but flipped anyway to be a convolution)."""
    f = f[::-1]
    length = x.shape[axis] - len(f) + 1
    out = 0
    for k, tap in enumerate(f):
        out = out + tap * np.take(x, np.arange(k, k + length), axis=axis)
    return out


def _filter(x: np.ndarray, f: np.ndarray | None, gain: float) -> np.ndarray:
    """x [C, H, W] convolved ('valid') with a separable 1-D f on both axes, or a 2-D f; times gain."""
    if f is None:
        return x * gain
    f = f.astype(np.float64)
    if f.ndim == 1:
        return _filter_axis(_filter_axis(x, f, 1), f, 2) * gain
    taps = f.shape[0]
    h, w = x.shape[1] - taps + 1, x.shape[2] - taps + 1
    f = f[::-1, ::-1]
    out = np.zeros((x.shape[0], h, w))
    for i in range(taps):
        for j in range(taps):
            out += f[i, j] * x[:, i:i + h, j:j + w]
    return out * gain


def _pad(x: np.ndarray, before: int, after: int) -> np.ndarray:
    """Zero-pad (or, negative, crop) the two spatial axes."""
    x = np.pad(x, ((0, 0), (max(before, 0), max(after, 0)), (max(before, 0), max(after, 0))))
    h, w = x.shape[1], x.shape[2]
    return x[:, max(-before, 0):h - max(-after, 0), max(-before, 0):w - max(-after, 0)]


def synthesis_layer(state: dict, layer: Layer, cfg: Config, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Section 3.2 / Figure 4c for one sample x [C_in, H, W]: modulated (and, but for to-RGB,
    demodulated) convolution of the input scaled by magnitude_ema^-1/2, bias, then up-sampling by
    zero insertion and the up filter (gain up^2), leaky ReLU (slope 0.2, gain sqrt 2; linear for
    to-RGB), clamp, the down filter and decimation."""
    p = f"synthesis.{layer.name}."
    styles = _fc(w[None], state, p + "affine.")[0]
    weight = state[p + "weight"]
    if layer.is_torgb:
        styles = styles / math.sqrt(layer.in_channels * layer.conv_kernel ** 2)
    else:  # StyleGAN3 normalizes the weights and styles to unit RMS before modulating
        weight = weight / np.sqrt((weight ** 2).mean(axis=(1, 2, 3), keepdims=True))
        styles = styles / np.sqrt((styles ** 2).mean())
    weight = weight * styles[None, :, None, None]
    if not layer.is_torgb:
        weight = weight / np.sqrt((weight ** 2).sum(axis=(1, 2, 3), keepdims=True) + 1e-8)
    weight = weight / math.sqrt(state[p + "magnitude_ema"])
    k = layer.conv_kernel
    padded = _pad(x, k - 1, k - 1)
    size = x.shape[1] + k - 1
    y = np.zeros((layer.out_channels, size, size))
    for i in range(k):
        for j in range(k):
            y += np.einsum("oc,chw->ohw", weight[:, :, i, j], padded[:, i:i + size, j:j + size])
    y = y + state[p + "bias"][:, None, None]
    up = np.zeros((y.shape[0], y.shape[1] * layer.up, y.shape[2] * layer.up))
    up[:, ::layer.up, ::layer.up] = y
    y = _filter(_pad(up, *layer.padding), layer.up_filter, layer.up ** 2)
    gain, slope = (1.0, 1.0) if layer.is_torgb else (math.sqrt(2), 0.2)
    y = np.where(y >= 0, y, slope * y) * gain
    if cfg.conv_clamp is not None:
        y = np.clip(y, -cfg.conv_clamp, cfg.conv_clamp)
    y = _filter(y, layer.down_filter, 1.0)[:, ::layer.down, ::layer.down]
    assert y.shape[1:] == (layer.out_size, layer.out_size), (layer.name, y.shape)
    return y


def synthesis(state: dict, cfg: Config, w: np.ndarray) -> np.ndarray:
    """w [N, w_dim] (the same style for every layer, as the mapping network broadcasts it) -> images."""
    first, layers = schedule(cfg)
    x = fourier_input(state, first, w)
    images = []
    for n in range(len(w)):
        h = x[n]
        for layer in layers:
            h = synthesis_layer(state, layer, cfg, h, w[n])
        images.append(h * cfg.output_scale)
    return np.stack(images)


def generate(state: dict[str, torch.Tensor], cfg: Config, seeds: list[int], psi: float = 1.0,
             class_idx: int | None = None, translate=(0.0, 0.0), rotate: float = 0.0) -> np.ndarray:
    """uint8 [N, H, W, C] of NVlabs' gen_images.py for these seeds, in float64 from the state dict:
    z = RandomState(seed).randn(1, z_dim); the user transform is the inverse of the rotation by
    ``rotate`` degrees then translation, stored in float32; (x * 127.5 + 128) clamped, truncated."""
    state = {key: value.double().numpy() for key, value in state.items()}
    angle = rotate / 360 * 2 * math.pi
    forward = np.array([[math.cos(angle), math.sin(angle), translate[0]],
                        [-math.sin(angle), math.cos(angle), translate[1]], [0, 0, 1.0]])
    state["synthesis.input.transform"] = np.linalg.inv(forward).astype(np.float32).astype(np.float64)
    z = np.concatenate([np.random.RandomState(seed).randn(1, cfg.z_dim) for seed in seeds])
    c = None
    if cfg.c_dim:
        c = np.zeros((len(seeds), cfg.c_dim))
        c[:, class_idx] = 1
    images = synthesis(state, cfg, mapping(state, cfg, z, c, psi))
    return np.clip(images.transpose(0, 2, 3, 1) * 127.5 + 128, 0, 255).astype(np.uint8)
