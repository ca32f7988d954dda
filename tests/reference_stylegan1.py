"""A naive float64 reference of StyleGAN v1's generator and discriminator, written from the paper
(Karras et al. 2019, Figure 1b, Section 2) and the equations of NVlabs' TF ``networks_stylegan.py``
(``G_synthesis``, ``D_basic``, ``structure='linear'``), independent of the package's own ops.

It reads the parameters of OUR modules by name (a ``state_dict``) and computes with explicit
ops: nearest repetition, an explicit [1,2,1] x [1,2,1] / 16 correlation with zero padding, 2x2 box
means, 3x3 "SAME" convolutions as sums over kernel offsets, equalized-lr run-time scales
(``gain / sqrt(fan_in)``, gain sqrt 2 except to-RGB, the style dense and D's last dense), pixel
and instance norm with eps 1e-8, ``x * (ys + 1) + yb`` and per-channel noise strengths.
"""
from __future__ import annotations

import math

import torch

SQRT2 = math.sqrt(2)
EPS = 1e-8


def p64(params: dict, name: str) -> torch.Tensor:
    return params[name].detach().to(torch.float64)


def lrelu(x):
    return torch.where(x >= 0, x, 0.2 * x)


def conv_same(x, w, gain):
    """Correlation of x [N, I, H, W] with w [O, I, k, k] * gain / sqrt(I k k), zero "SAME" padding."""
    o, i, k, _ = w.shape
    w = w * (gain / math.sqrt(i * k * k))
    p = k // 2
    n, _, h, wd = x.shape
    xp = torch.zeros(n, i, h + 2 * p, wd + 2 * p, dtype=x.dtype)
    xp[:, :, p:p + h, p:p + wd] = x
    out = torch.zeros(n, o, h, wd, dtype=x.dtype)
    for dy in range(k):
        for dx in range(k):
            out += torch.einsum("nihw,oi->nohw", xp[:, :, dy:dy + h, dx:dx + wd], w[:, :, dy, dx])
    return out


def fused_up_conv(x, w, gain):
    """TF's fused ``upscale2d_conv2d``: the k x k kernel (scaled) summed over its four one-pixel
    shifts, applied as conv2d_transpose (stride 2, "SAME"): out[2i + t - p] += x[i] * S[t]."""
    o, i, k, _ = w.shape
    w = w * (gain / math.sqrt(i * k * k))
    wp = torch.zeros(o, i, k + 2, k + 2, dtype=w.dtype)
    wp[:, :, 1:-1, 1:-1] = w
    s = wp[:, :, 1:, 1:] + wp[:, :, :-1, 1:] + wp[:, :, 1:, :-1] + wp[:, :, :-1, :-1]
    n, _, h, wd = x.shape
    p = (k - 1) // 2
    out = torch.zeros(n, o, 2 * h + k + 1, 2 * wd + k + 1, dtype=x.dtype)  # offset by p, cropped below
    for ty in range(k + 1):
        for tx in range(k + 1):
            out[:, :, ty:ty + 2 * h:2, tx:tx + 2 * wd:2] += torch.einsum("nihw,oi->nohw", x, s[:, :, ty, tx])
    return out[:, :, p:p + 2 * h, p:p + 2 * wd]


def nearest_up(x):
    return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


def box_down(x):
    return (x[:, :, 0::2, 0::2] + x[:, :, 0::2, 1::2] + x[:, :, 1::2, 0::2] + x[:, :, 1::2, 1::2]) / 4


def blur121(x):
    taps = [1.0, 2.0, 1.0]
    n, c, h, w = x.shape
    xp = torch.zeros(n, c, h + 2, w + 2, dtype=x.dtype)
    xp[:, :, 1:-1, 1:-1] = x
    out = torch.zeros_like(x)
    for dy in range(3):
        for dx in range(3):
            out += taps[dy] * taps[dx] / 16 * xp[:, :, dy:dy + h, dx:dx + w]
    return out


def pixel_norm(x):
    return x / torch.sqrt((x ** 2).mean(dim=1, keepdim=True) + EPS)


def instance_norm(x):
    x = x - x.mean(dim=(2, 3), keepdim=True)
    return x / torch.sqrt((x ** 2).mean(dim=(2, 3), keepdim=True) + EPS)


def dense(x, w, b, gain):
    return x.flatten(1) @ (w * (gain / math.sqrt(w.shape[1]))).t() + b


def epilogue(params, prefix, x, w, normalization):
    """noise * per-channel strength, bias, lrelu, normalization, style modulation."""
    noise = p64(params, f"{prefix}.noise_const")
    x = x + noise[None, None] * p64(params, f"{prefix}.noise_strength")[None, :, None, None]
    x = lrelu(x + p64(params, f"{prefix}.bias")[None, :, None, None])
    if normalization == "adain":
        x = instance_norm(x)
    elif normalization == "pixel":
        x = pixel_norm(x)
    elif normalization == "pin":
        rho = p64(params, f"{prefix}.norm.rho")[None, :, None, None]
        x = rho * pixel_norm(x) + (1 - rho) * instance_norm(x)
    else:
        raise ValueError(normalization)
    c = x.shape[1]
    style = dense(w, p64(params, f"{prefix}.affine.weight"), p64(params, f"{prefix}.affine.bias"), 1.0)
    ys, yb = style[:, :c], style[:, c:]
    return x * (ys[:, :, None, None] + 1) + yb[:, :, None, None]


def torgb(params, prefix, x):
    return conv_same(x, p64(params, f"{prefix}.weight"), 1.0) + p64(params, f"{prefix}.bias")[None, :, None, None]


def synthesis(params: dict, ws: torch.Tensor, normalization: str, resolution: int, alpha: float = 1.0,
              prefix: str = "synthesis", fused_from: int = 128) -> torch.Tensor:
    """v1 G_synthesis with const input and noise from the ``noise_const`` buffers, at a growth stage
    ``resolution`` with the newest resolution faded in by ``alpha`` (lerp(nearest_up(low), new));
    up-sampling layers with outputs of ``fused_from`` px and more use TF's fused op."""
    ws = ws.to(torch.float64)
    n = ws.shape[0]
    x = p64(params, f"{prefix}.b4.const")[None].repeat(n, 1, 1, 1)
    x = epilogue(params, f"{prefix}.b4.const_epilogue", x, ws[:, 0], normalization)
    x = conv_same(x, p64(params, f"{prefix}.b4.conv1.weight"), SQRT2)
    x = epilogue(params, f"{prefix}.b4.conv1", x, ws[:, 1], normalization)
    images = {4: torgb(params, f"{prefix}.b4.torgb", x) if f"{prefix}.b4.torgb.weight" in params else None}
    res, layer = 4, 2
    while res < resolution:
        res *= 2
        b = f"{prefix}.b{res}"
        w = p64(params, f"{b}.conv0.weight")
        x = blur121(fused_up_conv(x, w, SQRT2) if res >= fused_from else conv_same(nearest_up(x), w, SQRT2))
        x = epilogue(params, f"{b}.conv0", x, ws[:, layer], normalization)
        x = conv_same(x, p64(params, f"{b}.conv1.weight"), SQRT2)
        x = epilogue(params, f"{b}.conv1", x, ws[:, layer + 1], normalization)
        layer += 2
        if f"{b}.torgb.weight" in params and (res == resolution or res == resolution // 2):
            images[res] = torgb(params, f"{b}.torgb", x)
    img = images[resolution]
    if alpha < 1:
        low = nearest_up(images[resolution // 2])
        img = low + alpha * (img - low)
    return img


def conv_act(params, name, x, gain=SQRT2):
    return lrelu(conv_same(x, p64(params, f"{name}.weight"), gain) + p64(params, f"{name}.bias")[None, :, None, None])


def mbstd(x, group_size=4):
    """Minibatch stddev, 1 feature: samples i and i + k N/G form a group."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    m = n // g
    out = torch.zeros(n, 1, h, w, dtype=x.dtype)
    for j in range(m):
        members = [j + k * m for k in range(g)]
        group = x[members]
        std = torch.sqrt(((group - group.mean(dim=0, keepdim=True)) ** 2).mean(dim=0) + EPS)
        out[members] = std.mean()
    return torch.cat([x, out], dim=1)


def discriminator(params: dict, img: torch.Tensor, c: torch.Tensor | None = None, alpha: float = 1.0,
                  group_size: int = 4) -> torch.Tensor:
    """v1 D_basic at the image's resolution: fromrgb, [conv, blur, conv, box down] per block (the
    features entering block R/2 faded as lerp(fromrgb(box_down(img)), new, alpha)), mbstd, conv,
    dense (lrelu), dense (linear), then the label switch."""
    img = img.to(torch.float64)
    res = img.shape[-1]
    x = conv_act(params, f"b{res}.fromrgb", img)
    while res > 4:
        b = f"b{res}"
        x = conv_act(params, f"{b}.conv0", x)
        x = blur121(x)
        x = lrelu(box_down(conv_same(x, p64(params, f"{b}.conv1.weight"), SQRT2))
                  + p64(params, f"{b}.conv1.bias")[None, :, None, None])
        res //= 2
        if alpha < 1 and res == img.shape[-1] // 2:
            y = conv_act(params, f"b{res}.fromrgb", box_down(img))
            x = y + alpha * (x - y)
    x = mbstd(x, group_size)
    x = conv_act(params, "b4.conv", x)
    x = lrelu(dense(x, p64(params, "b4.fc.weight"), p64(params, "b4.fc.bias"), SQRT2))
    x = dense(x, p64(params, "b4.out.weight"), p64(params, "b4.out.bias"), 1.0)
    if c is not None:
        x = (x * c.to(torch.float64)).sum(dim=1, keepdim=True)
    return x
