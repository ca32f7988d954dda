"""``diffaugment`` augmentation plugin: DiffAugment (Zhao, Liu, Lin, Zhu, Han 2020, "Differentiable
Augmentation for Data-Efficient GAN Training").

The same random, differentiable transforms are applied to reals and fakes before D, in every phase,
so G is trained through them. The policy is a comma-separated subset of

* ``color``: brightness ``x + b``, b ~ U(-0.5, 0.5); saturation ``m_c + (x - m_c) * s``,
  s ~ U(0, 2), m_c the mean over the channels of each pixel; contrast ``m + (x - m) * c``,
  c ~ U(0.5, 1.5), m the mean of the image. Applied to images in [-1, 1] as the official
  DiffAugment-stylegan2 code applies them to its [-1, 1] images;
* ``translation``: an integer shift of up to 1/8 of the image side on each axis, zeros entering;
* ``cutout``: a square of half the image side set to 0, its centre uniform over the image (the
  official code's), clipped at the border.

Each transform draws its parameters per sample (``draw``) and is a function of the images and those
parameters (``brightness``, ..., ``cutout`` below): elementwise for color, indexing and masking for
translation and cutout, so every transform is differentiable (twice) in the images.
"""
from __future__ import annotations

import torch

from .base import Augmentation

TRANSFORMS = ("color", "translation", "cutout")


def brightness(images: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``x + b`` with ``b`` [N] per sample."""
    return images + b.to(images.dtype).view(-1, 1, 1, 1)


def saturation(images: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``m + (x - m) * s`` with ``m`` the channel mean of each pixel and ``s`` [N] per sample. With
    one channel ``m`` is the pixel itself, so this is the identity."""
    mean = images.mean(dim=1, keepdim=True)
    return mean + (images - mean) * s.to(images.dtype).view(-1, 1, 1, 1)


def contrast(images: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``m + (x - m) * c`` with ``m`` the mean of each image over (C, H, W) and ``c`` [N] per sample."""
    mean = images.mean(dim=[1, 2, 3], keepdim=True)
    return mean + (images - mean) * c.to(images.dtype).view(-1, 1, 1, 1)


def translation(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``out[n, :, y, x] = images[n, :, y - dy, x - dx]``, 0 where that is outside the image;
    ``shift`` [N, 2] integer (dy, dx)."""
    n, c, h, w = images.shape
    rows = torch.arange(h, device=images.device) - shift[:, :1]  # [N, H]: the source row of each row
    cols = torch.arange(w, device=images.device) - shift[:, 1:]  # [N, W]
    out = images.gather(2, rows.clamp(0, h - 1)[:, None, :, None].expand(n, c, h, w))
    out = out.gather(3, cols.clamp(0, w - 1)[:, None, None, :].expand(n, c, h, w))
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    return torch.where(inside[:, None], out, images.new_zeros(()))


def cutout(images: torch.Tensor, corner: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``images`` with the rectangle of ``size`` (h, w) whose top-left pixel is ``corner`` [N, 2]
    (y, x; it may lie outside the image) set to 0, clipped at the border."""
    h, w = images.shape[2:]
    rows = torch.arange(h, device=images.device) - corner[:, :1]  # [N, H]: row within the square
    cols = torch.arange(w, device=images.device) - corner[:, 1:]
    hole = ((rows >= 0) & (rows < size[0]))[:, :, None] & ((cols >= 0) & (cols < size[1]))[:, None, :]
    return torch.where(hole[:, None], images.new_zeros(()), images)


class DiffAugment(Augmentation):
    """DiffAugment (Zhao et al. 2020): color, translation and cutout, the same for reals and fakes.

    ``policy``: comma-separated transforms, applied in that order (the official code's).
    ``p``: the probability that an image gets the policy's transforms (1, the paper: always).
    ``brightness``: b ~ U(-brightness, brightness). ``saturation``, ``contrast``: the (low, high)
    ranges of the factors. ``translation``: the largest shift, a fraction of the side (rounded to
    whole pixels). ``cutout``: the square's side, a fraction of the image side (rounded). With one
    channel, saturation is the identity (the channel mean is the pixel).
    """

    api_version = 1
    description = "DiffAugment (Zhao et al. 2020): color, translation, cutout on reals and fakes"
    adaptive = False

    def __init__(self, policy: str = "color,translation,cutout", p: float = 1.0, brightness: float = 0.5,
                 saturation: tuple[float, float] = (0.0, 2.0), contrast: tuple[float, float] = (0.5, 1.5),
                 translation: float = 0.125, cutout: float = 0.5):
        super().__init__(p)
        self.policy = tuple(name.strip() for name in policy.split(",") if name.strip())
        for name in self.policy:
            if name not in TRANSFORMS:
                raise ValueError(f"diffaugment: unknown transform {name!r} in policy {policy!r}; "
                                 f"the transforms are: {', '.join(TRANSFORMS)}")
        if len(set(self.policy)) != len(self.policy):
            raise ValueError(f"diffaugment: policy {policy!r} names a transform twice")
        self.brightness = float(brightness)
        self.saturation = _range("saturation", saturation)
        self.contrast = _range("contrast", contrast)
        if self.brightness < 0 or not 0 <= translation <= 1 or not 0 <= cutout <= 1:
            raise ValueError(f"diffaugment: need brightness >= 0 and translation, cutout in [0, 1], got "
                             f"{brightness}, {translation}, {cutout}")
        self.translation, self.cutout = float(translation), float(cutout)

    def draw(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The random parameters for ``images`` [N, C, H, W], per sample, from torch's global RNG on
        their device, in policy order: ``brightness``, ``saturation``, ``contrast`` [N] (color),
        ``shift`` [N, 2] (translation), ``corner`` [N, 2] (cutout), then ``apply`` [N] (bool: which
        images are augmented, probability p)."""
        n, (h, w), device = images.shape[0], images.shape[2:], images.device

        def uniform(low, high):
            return low + (high - low) * torch.rand(n, device=device)

        params = {}
        for name in self.policy:
            if name == "color":
                params["brightness"] = uniform(-self.brightness, self.brightness)
                params["saturation"] = uniform(*self.saturation)
                params["contrast"] = uniform(*self.contrast)
            elif name == "translation":
                sy, sx = self.shift_limits(h, w)
                params["shift"] = torch.stack([torch.randint(-sy, sy + 1, (n,), device=device),
                                               torch.randint(-sx, sx + 1, (n,), device=device)], dim=1)
            else:  # cutout: the centre uniform over [0, side] (even size) or [0, side) (odd), as the official code
                sh, sw = self.cutout_size(h, w)
                params["corner"] = torch.stack([torch.randint(0, h + 1 - sh % 2, (n,), device=device) - sh // 2,
                                                torch.randint(0, w + 1 - sw % 2, (n,), device=device) - sw // 2],
                                               dim=1)
        params["apply"] = torch.rand(n, device=device) < self.p  # no host sync: p stays on the device
        return params

    def shift_limits(self, h: int, w: int) -> tuple[int, int]:
        """The largest translation (rows, columns) in pixels."""
        return int(h * self.translation + 0.5), int(w * self.translation + 0.5)

    def cutout_size(self, h: int, w: int) -> tuple[int, int]:
        """The cutout square's (height, width) in pixels."""
        return int(h * self.cutout + 0.5), int(w * self.cutout + 0.5)

    def transform(self, images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """The policy applied to every image with the drawn ``params`` (``apply`` is not used here)."""
        x = images
        for name in self.policy:
            if name == "color":
                x = contrast(saturation(brightness(x, params["brightness"]), params["saturation"]),
                             params["contrast"])
            elif name == "translation":
                x = translation(x, params["shift"])
            else:
                x = cutout(x, params["corner"], self.cutout_size(*x.shape[2:]))
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        params = self.draw(images)
        return torch.where(params["apply"].view(-1, 1, 1, 1), self.transform(images, params), images)


def _range(name: str, value) -> tuple[float, float]:
    if len(value) != 2 or float(value[0]) > float(value[1]):
        raise ValueError(f"diffaugment: {name} must be (low, high) with low <= high, got {value!r}")
    return float(value[0]), float(value[1])
