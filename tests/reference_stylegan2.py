"""A deliberately naive float64 StyleGAN2 (config E/F: skip G, residual D) computed from an
NVlabs-named state dict with the equations of 002_0a18e98dc55024d1.txt, written independently of
the library: explicit per-sample modulated weights (Eqs. 1-3), the [1,3,3,1] FIR filter as a sum of
shifted copies, the stride-2 transposed convolution one kernel tap at a time, minibatch-stddev as a
loop over groups. Used to check converted networks numerically.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

DT = torch.float64
SQRT2 = math.sqrt(2)
FILTER = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=DT)


def _f(s, key):
    return s[key].to(DT)


def lrelu(x, gain=1.0, clamp=None):
    """Leaky ReLU 0.2 times sqrt(2) (Appendix B), times ``gain``, clamped to +-clamp*gain."""
    x = F.leaky_relu(x, 0.2) * SQRT2 * gain
    return x if clamp is None else x.clamp(-clamp * gain, clamp * gain)


def fc(s, name, x, lr_mul=1.0, act=False):
    """Equalized learning rate: W * lr_mul / sqrt(fan_in), b * lr_mul."""
    weight = _f(s, f"{name}.weight")
    y = x @ (weight * lr_mul / math.sqrt(weight.shape[1])).t() + _f(s, f"{name}.bias") * lr_mul
    return lrelu(y) if act else y


def fir(x, pad0, pad1, gain=1.0):
    """Pad, then the separable [1,3,3,1] kernel (normalised to sum 1, times gain) as explicit shifts."""
    k = torch.outer(FILTER, FILTER)
    k = k / k.sum() * gain
    x = F.pad(x, [pad0, pad1, pad0, pad1])
    h, w = x.shape[-2] - 3, x.shape[-1] - 3
    return sum(k[u, v] * x[..., u:u + h, v:v + w] for u in range(4) for v in range(4))


def upsample(x):
    """Zero insertion, then the filter with gain 4 (pads 2, 1)."""
    out = x.new_zeros(*x.shape[:2], 2 * x.shape[2], 2 * x.shape[3])
    out[..., ::2, ::2] = x
    return fir(out, 2, 1, gain=4)


def transposed_conv_stride2(x, w):
    """``out[o, 2i + a, 2j + b] += sum_c x[c, i, j] w[o, c, a, b]``."""
    n, _, h, wd = x.shape
    k = w.shape[-1]
    out = x.new_zeros(n, w.shape[0], 2 * h + k - 2, 2 * wd + k - 2)
    for a in range(k):
        for b in range(k):
            out[:, :, a:a + 2 * h:2, b:b + 2 * wd:2] += torch.einsum("oc,nchw->nohw", w[:, :, a, b], x)
    return out


def mapping(s, z, c, num_layers, lr_mul=0.01, prefix="mapping"):
    """Eq. pixel norm of z (and of the label embedding), then ``num_layers`` FC + lrelu at lr_mul."""
    parts = []
    if z is not None:
        parts.append(z.to(DT) / (z.to(DT).square().mean(1, keepdim=True) + 1e-8).sqrt())
    if c is not None:
        y = fc(s, f"{prefix}.embed", c.to(DT))
        parts.append(y / (y.square().mean(1, keepdim=True) + 1e-8).sqrt())
    x = torch.cat(parts, 1)
    for i in range(num_layers):
        x = fc(s, f"{prefix}.fc{i}", x, lr_mul, act=True)
    return x


def modulated(s, name, x, w, demodulate=True, up=False, style_gain=1.0):
    """Eq. 1 w'_ijk = s_i w_ijk; Eq. 3 w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + 1e-8); per sample."""
    weight = _f(s, f"{name}.weight")
    styles = fc(s, f"{name}.affine", w) * style_gain
    k = weight.shape[-1]
    out = []
    for n in range(x.shape[0]):
        wn = weight * styles[n].reshape(1, -1, 1, 1)
        if demodulate:
            wn = wn / (wn.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        if up:
            out.append(fir(transposed_conv_stride2(x[n:n + 1], wn), 1, 1, gain=4))
        else:
            out.append(F.conv2d(x[n:n + 1], wn, padding=k // 2))
    return torch.cat(out)


def synthesis_layer(s, name, x, w, up=False, clamp=None):
    x = modulated(s, name, x, w, up=up)
    x = x + _f(s, f"{name}.noise_const") * _f(s, f"{name}.noise_strength")  # constant noise
    return lrelu(x + _f(s, f"{name}.bias").reshape(1, -1, 1, 1), clamp=clamp)


def to_rgb(s, name, x, w, clamp=None):
    fan_in = _f(s, f"{name}.weight")[0].numel()
    y = modulated(s, name, x, w, demodulate=False, style_gain=1 / math.sqrt(fan_in))
    y = y + _f(s, f"{name}.bias").reshape(1, -1, 1, 1)
    return y if clamp is None else y.clamp(-clamp, clamp)


def synthesis(s, ws, resolution, clamp=None):
    """Skip generator (Figure 7b): image = upsample(image) + tRGB(x) at every resolution."""
    ws = ws.to(DT)
    x = _f(s, "synthesis.b4.const").unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
    x = synthesis_layer(s, "synthesis.b4.conv1", x, ws[:, 0], clamp=clamp)
    img = to_rgb(s, "synthesis.b4.torgb", x, ws[:, 1], clamp=clamp)
    index, res = 1, 8
    while res <= resolution:
        b = f"synthesis.b{res}"
        x = synthesis_layer(s, f"{b}.conv0", x, ws[:, index], up=True, clamp=clamp)
        x = synthesis_layer(s, f"{b}.conv1", x, ws[:, index + 1], clamp=clamp)
        img = upsample(img) + to_rgb(s, f"{b}.torgb", x, ws[:, index + 2], clamp=clamp)
        index, res = index + 2, res * 2
    return img


def generator(s, z, c, resolution, num_layers, psi=1.0, clamp=None):
    w = mapping(s, z, c, num_layers)
    w = _f(s, "mapping.w_avg") + psi * (w - _f(s, "mapping.w_avg"))  # truncation
    num_ws = 2 * int(math.log2(resolution)) - 2
    return synthesis(s, w.unsqueeze(1).repeat(1, num_ws, 1), resolution, clamp)


def conv(s, name, x, down=False, act=True, gain=1.0, clamp=None, bias=True):
    weight = _f(s, f"{name}.weight")
    weight = weight / math.sqrt(weight[0].numel())
    if down:  # filter, then a strided convolution (Figure 7c, Appendix B)
        x = F.conv2d(fir(x, 2, 2) if weight.shape[-1] == 3 else fir(x, 1, 1), weight, stride=2)
    else:
        x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
    if bias:
        x = x + _f(s, f"{name}.bias").reshape(1, -1, 1, 1)
    if act:
        return lrelu(x, gain, clamp)
    x = x * gain
    return x if clamp is None else x.clamp(-clamp * gain, clamp * gain)


def discriminator(s, img, c, resolution, group_size=4, mapping_layers=8, clamp=None):
    """Residual D (Figure 7c): x = (skip(x) + conv1(conv0(x))) / sqrt(2) per block, then the 4x4 epilogue."""
    x = conv(s, f"b{resolution}.fromrgb", img.to(DT), clamp=clamp)
    res = resolution
    while res > 4:
        b = f"b{res}"
        y = conv(s, f"{b}.conv0", x, clamp=clamp)
        y = conv(s, f"{b}.conv1", y, down=True, gain=math.sqrt(0.5), clamp=clamp)
        x = conv(s, f"{b}.skip", x, down=True, act=False, gain=math.sqrt(0.5), bias=False) + y
        res //= 2
    n = x.shape[0]
    size = min(group_size, n) if group_size else n
    groups = n // size  # sample m belongs to the group of m, m + groups, m + 2 groups, ...
    std = torch.empty(n, dtype=DT)
    for m in range(groups):
        std[m::groups] = (x[m::groups].var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
    x = torch.cat([x, std.reshape(n, 1, 1, 1).expand(n, 1, 4, 4)], 1)
    x = conv(s, "b4.conv", x, clamp=clamp).flatten(1)
    x = fc(s, "b4.fc", x, act=True)
    x = fc(s, "b4.out", x)
    if c is not None:
        cmap = mapping(s, None, c, mapping_layers, prefix="mapping")
        x = (x * cmap).sum(1, keepdim=True) / math.sqrt(cmap.shape[1])
    return x
