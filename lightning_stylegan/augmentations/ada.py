"""``ada`` augmentation plugin: the augmentation pipeline of StyleGAN2-ADA (Karras et al. 2020,
Training Generative Adversarial Networks with Limited Data, Appendix B), numerically as NVlabs'
stylegan2-ada-pytorch (``training/augment.py``) given the same random draws.

The ops, in a fixed order, each applied to each image independently with probability
p * (its multiplier): pixel blitting (x-flip, 90-degree rotations, integer translation), general
geometric transforms (isotropic scaling, pre-rotation, anisotropic scaling, post-rotation,
fractional translation), colour transforms (brightness, contrast, luma flip, hue rotation,
saturation), image-space filtering (four frequency bands) and corruptions (additive noise, cutout).
The two rotations each happen with probability 1 - sqrt(1 - p * rotate), so that at least one
happens with probability p * rotate. The geometric ops compose into one matrix and one resampling
(``ada_geometry``), the colour ops into one 4x4 matrix (``ada_color``).

All draws come from torch's global RNG on the images' device, in NVlabs' order, so a run reseeded
per step (and so a resumed run) augments exactly alike.
"""
from __future__ import annotations

import difflib
import functools
import math

import torch

from .ada_color import (BAND_POWER, apply_band_filter, apply_color, band_filters, hue_rotation,
                        luma_flip, saturation, scale3, translate3)
from .ada_geometry import SYM6, rotate2, scale2, translate2, warp
from .base import Augmentation

GEOMETRIC = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
OPS = GEOMETRIC + COLOR + ("imgfilter", "noise", "cutout")

# NVlabs' train.py --augpipe presets: the ops each turns on (multiplier 1).
_BLIT, _GEOM, _COLOR = GEOMETRIC[:3], GEOMETRIC[3:], COLOR
PRESETS = {
    "blit": _BLIT, "geom": _GEOM, "color": _COLOR, "filter": ("imgfilter",), "noise": ("noise",),
    "cutout": ("cutout",), "bg": _BLIT + _GEOM, "bgc": _BLIT + _GEOM + _COLOR,
    "bgcf": _BLIT + _GEOM + _COLOR + ("imgfilter",), "bgcfn": _BLIT + _GEOM + _COLOR + ("imgfilter", "noise"),
    "bgcfnc": _BLIT + _GEOM + _COLOR + ("imgfilter", "noise", "cutout"),
}


class AdaptiveAugment(Augmentation):
    """StyleGAN2-ADA's augmentation pipeline; ``p`` is tuned by the ``ada`` controller.

    Args:
        preset: the ops turned on, as NVlabs' ``--augpipe``: blit, geom, color, filter, noise,
            cutout, bg, bgc (the paper's choice), bgcf, bgcfn, bgcfnc.
        p: the augmentation probability (overall multiplier).
        xflip ... cutout: per-op probability multipliers; None takes the preset's (1 or 0), 0 turns
            the op off, other values scale its probability.
        xint_max: integer translation range, a fraction of the image size.
        scale_std, aniso_std: log2 standard deviations of isotropic / anisotropic scaling.
        rotate_max, hue_max: rotation ranges, 1 = the full circle.
        xfrac_std: fractional translation std, a fraction of the image size.
        brightness_std: std of the brightness offset; contrast_std, saturation_std: log2 stds.
        imgfilter_bands: multipliers of the four frequency bands' probabilities (low to high).
        imgfilter_std: log2 std of the band gains.
        noise_std: the additive noise's sigma is |N(0, noise_std)| per image.
        cutout_size: side of the zeroed square, a fraction of the image size.

    Channels: the geometric ops, filtering and corruptions act on every channel. The colour ops
    need 1, 3 or 4 channels: RGB as in the paper; RGBA the same on RGB, alpha left as it is; grey
    (1 channel, as NVlabs) treats the value y as (y, y, y) and keeps the mean of the transformed
    channels, so brightness adds b, contrast scales, luma flip negates, and hue and saturation
    (no effect on grey) are skipped, drawing nothing.

    As NVlabs, x-flips and quarter turns go through the same resampling as the other geometric ops,
    so a mirrored axis comes out shifted by about 0.1 pixel and slightly low-passed (see
    ``ada_geometry``); integer translations are exact.

    ``p == 0`` returns the input itself (reading ``p`` synchronizes with the device). Otherwise the
    work is done in float32 (float64 for float64 input) with autocast off, and the result cast
    back to the input's dtype.
    """

    api_version = 1
    description = "StyleGAN2-ADA's augmentation pipeline (blits, geometric, colour, filter, noise, cutout)"
    adaptive = True

    def __init__(self, preset: str = "bgc", p: float = 0.0,
                 xflip: float | None = None, rotate90: float | None = None, xint: float | None = None,
                 scale: float | None = None, rotate: float | None = None, aniso: float | None = None,
                 xfrac: float | None = None, brightness: float | None = None,
                 contrast: float | None = None, lumaflip: float | None = None, hue: float | None = None,
                 saturation: float | None = None, imgfilter: float | None = None,
                 noise: float | None = None, cutout: float | None = None,
                 xint_max: float = 0.125, scale_std: float = 0.2, rotate_max: float = 1.0,
                 aniso_std: float = 0.2, xfrac_std: float = 0.125, brightness_std: float = 0.2,
                 contrast_std: float = 0.5, hue_max: float = 1.0, saturation_std: float = 1.0,
                 imgfilter_bands: tuple[float, float, float, float] | list[float] = (1, 1, 1, 1),
                 imgfilter_std: float = 1.0, noise_std: float = 0.1, cutout_size: float = 0.5):
        given = dict(locals())
        super().__init__(p)
        if preset not in PRESETS:
            close = difflib.get_close_matches(str(preset), PRESETS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"ada: unknown preset {preset!r}{hint}; the presets are {', '.join(PRESETS)}")
        self.preset = preset
        for op in OPS:
            value = float(op in PRESETS[preset]) if given[op] is None else float(given[op])
            if not value >= 0:
                raise ValueError(f"ada: the multiplier {op} must be >= 0 (0 turns the op off), got {given[op]}")
            setattr(self, op, value)
        if len(imgfilter_bands) != 4 or any(not b >= 0 for b in imgfilter_bands):
            raise ValueError(f"ada: imgfilter_bands needs 4 multipliers >= 0 (low to high band), "
                             f"got {imgfilter_bands}")
        self.imgfilter_bands = [float(b) for b in imgfilter_bands]
        for name in ("xint_max", "scale_std", "rotate_max", "aniso_std", "xfrac_std", "brightness_std",
                     "contrast_std", "hue_max", "saturation_std", "imgfilter_std", "noise_std", "cutout_size"):
            setattr(self, name, float(given[name]))
        self.register_buffer("lowpass", torch.tensor(SYM6).div(sum(SYM6)), persistent=False)
        self.register_buffer("bands", band_filters(), persistent=False)

    @staticmethod
    def _where(chance: torch.Tensor, value: torch.Tensor, default: float) -> torch.Tensor:
        """``value`` where a fresh uniform draw is below ``chance``, else ``default``; one draw per
        sample."""
        keep = torch.rand(value.shape[:1] + (1,) * (value.ndim - 1), device=value.device) < chance
        return torch.where(keep, value, torch.full_like(value, default))

    def geometry_matrix(self, n: int, height: int, width: int, device) -> torch.Tensor | None:
        """[N, 3, 3] float32: output pixel -> input pixel of one forward's random draws, centred
        pixel coordinates; None when no geometric op is on."""
        if not any(getattr(self, op) > 0 for op in GEOMETRIC):
            return None
        rand, randn = functools.partial(torch.rand, device=device), functools.partial(torch.randn, device=device)
        inverse = torch.eye(3, device=device).repeat(n, 1, 1)
        if self.xflip > 0:
            flip = self._where(self.p * self.xflip, torch.floor(rand(n) * 2), 0)
            inverse = inverse @ scale2(1 - 2 * flip, torch.ones_like(flip))  # a flip is its own inverse
        if self.rotate90 > 0:
            quarter = self._where(self.p * self.rotate90, torch.floor(rand(n) * 4), 0)
            inverse = inverse @ rotate2(math.pi / 2 * quarter)
        if self.xint > 0:
            shift = self._where(self.p * self.xint, (rand(n, 2) * 2 - 1) * self.xint_max, 0)
            inverse = inverse @ translate2(-torch.round(shift[:, 0] * width), -torch.round(shift[:, 1] * height))
        if self.scale > 0:
            s = self._where(self.p * self.scale, torch.exp2(randn(n) * self.scale_std), 1)
            inverse = inverse @ scale2(1 / s, 1 / s)
        p_rotate = 1 - torch.sqrt((1 - self.p * self.rotate).clamp(0, 1))  # P(pre or post) = p * rotate
        if self.rotate > 0:
            theta = self._where(p_rotate, (rand(n) * 2 - 1) * math.pi * self.rotate_max, 0)
            inverse = inverse @ rotate2(theta)
        if self.aniso > 0:
            s = self._where(self.p * self.aniso, torch.exp2(randn(n) * self.aniso_std), 1)
            inverse = inverse @ scale2(1 / s, 1 / (1 / s))  # inverse of scale2(s, 1 / s), rounded as NVlabs
        if self.rotate > 0:
            theta = self._where(p_rotate, (rand(n) * 2 - 1) * math.pi * self.rotate_max, 0)
            inverse = inverse @ rotate2(theta)
        if self.xfrac > 0:
            shift = self._where(self.p * self.xfrac, randn(n, 2) * self.xfrac_std, 0)
            inverse = inverse @ translate2(-shift[:, 0] * width, -shift[:, 1] * height)
        return inverse

    def color_matrix(self, n: int, channels: int, device) -> torch.Tensor | None:
        """[N, 4, 4] float32 acting on (r, g, b, 1) of one forward's random draws; None when no
        colour op is on (hue and saturation count as off for grey images)."""
        chroma = channels > 1
        if not any(getattr(self, op) > 0 for op in COLOR if chroma or op not in ("hue", "saturation")):
            return None
        rand, randn = functools.partial(torch.rand, device=device), functools.partial(torch.randn, device=device)
        matrix = torch.eye(4, device=device).repeat(n, 1, 1)
        if self.brightness > 0:
            matrix = translate3(self._where(self.p * self.brightness, randn(n) * self.brightness_std, 0)) @ matrix
        if self.contrast > 0:
            matrix = scale3(self._where(self.p * self.contrast, torch.exp2(randn(n) * self.contrast_std), 1)) @ matrix
        if self.lumaflip > 0:
            matrix = luma_flip(self._where(self.p * self.lumaflip, torch.floor(rand(n) * 2), 0)) @ matrix
        if self.hue > 0 and chroma:
            theta = self._where(self.p * self.hue, (rand(n) * 2 - 1) * math.pi * self.hue_max, 0)
            matrix = hue_rotation(theta) @ matrix
        if self.saturation > 0 and chroma:
            s = self._where(self.p * self.saturation, torch.exp2(randn(n) * self.saturation_std), 1)
            matrix = saturation(s) @ matrix
        return matrix

    def band_gains(self, n: int, device) -> torch.Tensor:
        """[N, 4] gains of the frequency bands: each band, with its probability, amplified by a
        log-normal factor, the gains renormalized so the expected energy (``BAND_POWER``) is kept."""
        power = torch.tensor(BAND_POWER, device=device)
        gains = torch.ones(n, 4, device=device)
        for band, strength in enumerate(self.imgfilter_bands):
            g = torch.exp2(torch.randn(n, device=device) * self.imgfilter_std)
            g = self._where(self.imgfilter * self.p * strength, g, 1)
            one_band = torch.ones(n, 4, device=device)
            one_band[:, band] = g
            gains = gains * one_band / (power * one_band.square()).sum(dim=1, keepdim=True).sqrt()
        return gains

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(f"ada: expects images [N, C, H, W], got shape {tuple(images.shape)}")
        if float(self.p) == 0:
            return images
        with torch.autocast(images.device.type, enabled=False):
            x = images if images.dtype == torch.float64 else images.float()
            n, channels, height, width = x.shape
            device = x.device
            inverse = self.geometry_matrix(n, height, width, device)
            if inverse is not None:
                x = warp(x, inverse, self.lowpass)
            color = self.color_matrix(n, channels, device)
            if color is not None:
                x = apply_color(x, color)
            if self.imgfilter > 0:
                x = apply_band_filter(x, self.band_gains(n, device) @ self.bands)
            if self.noise > 0:
                sigma = torch.randn(n, 1, 1, 1, device=device).abs() * self.noise_std
                sigma = self._where(self.p * self.noise, sigma, 0)
                x = x + torch.randn(x.shape, device=device, dtype=x.dtype) * sigma.to(x.dtype)
            if self.cutout > 0:
                x = x * self._cutout_mask(n, height, width, device).to(x.dtype)
        return x.to(images.dtype)

    def _cutout_mask(self, n: int, height: int, width: int, device) -> torch.Tensor:
        """[N, 1, H, W]: 0 inside each image's square (side ``cutout_size`` of the image, centre
        uniform over the image, with its probability), 1 elsewhere."""
        size = self._where(self.p * self.cutout, torch.full((n, 2, 1, 1, 1), self.cutout_size, device=device), 0)
        centre = torch.rand(n, 2, 1, 1, 1, device=device)
        x = (torch.arange(width, device=device) + 0.5) / width
        y = (torch.arange(height, device=device) + 0.5) / height
        outside_x = (x.reshape(1, 1, -1) - centre[:, 0]).abs() >= size[:, 0] / 2
        outside_y = (y.reshape(1, -1, 1) - centre[:, 1]).abs() >= size[:, 1] / 2
        return (outside_x | outside_y).float()
