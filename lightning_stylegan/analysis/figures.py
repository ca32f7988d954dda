"""Feature maps, heat maps, masks and line plots as uint8 [3, H, W] images (pillow only).

Colours follow 000_2d004fc061d5976e.txt Figure 3: green for positive, red for negative
activations, black for zero.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..images import image_grid, to_uint8

MIN_SIZE = 128  # small maps are enlarged (nearest neighbour) to at least this many pixels


def upscale(image: torch.Tensor, size: int = MIN_SIZE) -> torch.Tensor:
    """Nearest-neighbour enlargement of uint8 [C, H, W] by an integer factor to at least ``size``."""
    factor = max(1, math.ceil(size / image.shape[-1]))
    return image.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


def signed_map(x: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """[H, W] -> uint8 [3, H, W]: green = positive, red = negative, scaled by ``scale`` (max |x|)."""
    x = x.detach().float().cpu()
    scale = scale or float(x.abs().max()) or 1.0
    v = (x / scale).clamp(-1, 1)
    rgb = torch.stack([(-v).clamp(min=0), v.clamp(min=0), torch.zeros_like(v)])
    return (rgb * 255).round().to(torch.uint8)


def heat_map(x: torch.Tensor, vmax: float | None = None) -> torch.Tensor:
    """Non-negative [H, W] -> uint8 [3, H, W] on a black-red-yellow-white ramp up to ``vmax``."""
    x = x.detach().float().cpu()
    vmax = vmax or float(x.max()) or 1.0
    t = (x / vmax).clamp(0, 1) * 3
    rgb = torch.stack([t.clamp(0, 1), (t - 1).clamp(0, 1), (t - 2).clamp(0, 1)])
    return (rgb * 255).round().to(torch.uint8)


def mask_image(mask: torch.Tensor) -> torch.Tensor:
    """Boolean [H, W] -> uint8 [3, H, W], white where True."""
    return (mask.detach().cpu().to(torch.uint8) * 255).expand(3, -1, -1).contiguous()


def as_rgb(images: torch.Tensor) -> torch.Tensor:
    """Images [N, C, H, W], generated (in [-1, 1]) or uint8 -> uint8 [N, 3, H, W] (gray repeated,
    alpha dropped)."""
    pixels = images.cpu() if images.dtype == torch.uint8 else to_uint8(images.cpu())
    return pixels.repeat(1, 3, 1, 1) if pixels.shape[1] == 1 else pixels[:, :3]


def grid(tiles: Sequence[torch.Tensor], columns: int | None = None, size: int = MIN_SIZE) -> torch.Tensor:
    """uint8 [3, h, w] tiles (enlarged to a common size) -> one grid image."""
    big = [upscale(tile, size) for tile in tiles]
    side = max(tile.shape[-1] for tile in big)
    big = [torch.nn.functional.interpolate(t[None].float(), size=(side, side), mode="nearest")[0].to(torch.uint8)
           for t in big]
    return image_grid(torch.stack(big), columns)


COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]


def line_plot(series: Sequence[tuple[str, Sequence[float], Sequence[float]]], title: str, x_label: str,
              y_label: str, width: int = 640, height: int = 420) -> torch.Tensor:
    """A simple plot of (label, xs, ys) series (first series as a line, the rest as dots too)."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, right, top, bottom = 70, width - 20, 40, height - 50
    finite = [(x, y) for _, xs, ys in series for x, y in zip(xs, ys) if y is not None and np.isfinite(y)]
    xs_all, ys_all = [p[0] for p in finite] or [0, 1], [p[1] for p in finite] or [0, 1]
    x0, x1 = min(xs_all), max(xs_all) if max(xs_all) > min(xs_all) else min(xs_all) + 1
    y0, y1 = min(0.0, min(ys_all)), max(ys_all) if max(ys_all) > 0 else 1.0

    def to_px(x, y):
        return (left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top))

    draw.rectangle([left, top, right, bottom], outline="black")
    for k in range(5):
        xv, yv = x0 + (x1 - x0) * k / 4, y0 + (y1 - y0) * k / 4
        px, _ = to_px(xv, y0)
        _, py = to_px(x0, yv)
        draw.text((px - 12, bottom + 5), f"{xv:.3g}", fill="black", font=font)
        draw.text((5, py - 6), f"{yv:.3g}", fill="black", font=font)
    draw.text((width // 2 - 4 * len(title), 10), title, fill="black", font=font)
    draw.text((width // 2 - 3 * len(x_label), height - 22), x_label, fill="black", font=font)
    draw.text((5, top - 18), y_label, fill="black", font=font)
    for k, (label, xs, ys) in enumerate(series):
        color = COLORS[k % len(COLORS)]
        points = [to_px(x, y) for x, y in zip(xs, ys) if y is not None and np.isfinite(y)]
        if len(points) > 1:
            draw.line(points, fill=color, width=2)
        for px, py in points if k else []:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], outline=color)
        draw.text((right - 200, top + 8 + 14 * k), label, fill=color, font=font)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).contiguous()
