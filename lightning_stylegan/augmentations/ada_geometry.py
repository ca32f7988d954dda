"""The geometric half of the ``ada`` pipeline: 3x3 homogeneous matrices and the one resampling that
applies their product (Karras et al. 2020, Training Generative Adversarial Networks with Limited
Data (StyleGAN2-ADA), Appendix B).

Every geometric op -- the pixel blits (x-flip, 90-degree rotation, integer translation) and the
general transforms (scaling, rotations, anisotropic scaling, fractional translation) -- is folded
into one per-sample matrix that maps an output pixel to the input pixel it is read from, with the
origin at the image centre, x to the right and y down. ``warp`` then resamples once: reflection
padding wide enough for every source pixel of the batch, 2x up-sampling with the orthogonal sym6
wavelet low-pass, bilinear sampling, and 2x down-sampling with the same filter, so that the
augmentation does not leak (aliasing or an empty border that G could learn to reproduce).

For the pixel blits the sampling falls on pixel centres. An integer translation comes out exact
(the orthogonal up/down pair reconstructs perfectly). A mirrored axis (x-flip, quarter turns) does
not: sym6 is not symmetric, so after mirroring the pair amounts to the even phase of 2 (f * f)
instead of the unit impulse -- a shift of about 0.1 pixel and a slight loss near Nyquist. That is
NVlabs' behaviour too, kept for parity (``tests/test_augment_ada.py::flip_blur``).

``torch.nn.functional.grid_sample`` is differentiable twice in its input with the grid fixed
(checked on torch 2.14 by ``tests/test_augment_ada.py``), which R1 through the augmentation needs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Low-pass (scaling) coefficients of the 12-tap Daubechies symlet "sym6".
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)


def homogeneous(rows, like: torch.Tensor) -> torch.Tensor:
    """[N, R, C] float32 matrices from ``rows`` of entries that are numbers or [N] tensors;
    ``like`` is an [N] tensor giving the batch size and device."""
    entries = [e.float() if torch.is_tensor(e) else torch.full_like(like, float(e), dtype=torch.float32)
               for row in rows for e in row]
    return torch.stack(entries, dim=-1).reshape(like.shape[0], len(rows), len(rows[0]))


def translate2(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """Translation by (tx, ty) pixels."""
    return homogeneous([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def scale2(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """Scaling by sx along x and sy along y about the centre."""
    return homogeneous([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def rotate2(theta: torch.Tensor) -> torch.Tensor:
    """Rotation by ``theta`` radians: (x, y) -> (x cos - y sin, x sin + y cos)."""
    cos, sin = torch.cos(theta), torch.sin(theta)
    return homogeneous([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]], theta)


def _shift(tx: float, ty: float, device) -> torch.Tensor:
    return torch.tensor([[1, 0, tx], [0, 1, ty], [0, 0, 1]], dtype=torch.float32, device=device)


def _stretch(sx: float, sy: float, device) -> torch.Tensor:
    return torch.tensor([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], dtype=torch.float32, device=device)


def _sample_margins(inverse: torch.Tensor, height: int, width: int, reach: int) -> list[int]:
    """Reflection padding (left, right, top, bottom) that holds every pixel any output pixel of the
    batch reads, plus ``reach`` pixels for the filters, at most one image size less one (the most
    a single reflection can give)."""
    cx, cy = (width - 1) / 2, (height - 1) / 2
    corners = torch.tensor([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1.0, 1, 1, 1]], device=inverse.device)
    source = (inverse @ corners)[:, :2]  # [N, xy, corner] in centred input pixels
    beyond = torch.cat([(-source).amax(dim=(0, 2)), source.amax(dim=(0, 2))])  # left, top, right, bottom
    beyond = beyond + torch.tensor([reach - cx, reach - cy] * 2, device=inverse.device)
    limit = torch.tensor([width - 1, height - 1] * 2, device=inverse.device)
    left, top, right, bottom = beyond.clamp(min=0).minimum(limit).ceil().int().tolist()
    return [left, right, top, bottom]


def _upsample2x(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """2x up-sampling, along x then y, with the 1-D low-pass ``taps`` (sum 1, even length k):
    zero insertion and convolution, the output aligned as upfirdn2d with padding (k/2, k/2 - 1)
    and gain 4.

    Each channel goes through a single-channel transposed convolution with a stride on one axis:
    on the CPU five times faster here than the depthwise two-axis upfirdn2d of ``nn.filters``
    (8 x 3 x 600^2 in 0.44 s against 2.3 s, 2 threads); its double backward is native."""
    n, c, h, w = x.shape
    k = taps.numel()
    crop = k // 2 - 1  # the full convolution is 2 size + k - 2 long
    x = F.conv_transpose2d(x.reshape(n * c, 1, h, w), 2 * taps.reshape(1, 1, 1, k), stride=(1, 2))
    x = F.conv_transpose2d(x[..., crop:crop + 2 * w], 2 * taps.reshape(1, 1, k, 1), stride=(2, 1))
    return x[:, :, crop:crop + 2 * h].reshape(n, c, 2 * h, 2 * w)


def _downsample2x(x: torch.Tensor, taps: torch.Tensor, crop: int) -> torch.Tensor:
    """Correlation with the 1-D ``taps``, along x then y, after cropping ``crop`` pixels off each
    side, keeping every second pixel (the same single-channel convolutions as ``_upsample2x``)."""
    n, c, h, w = x.shape
    k = taps.numel()
    x = x.reshape(n * c, 1, h, w)[:, :, crop:h - crop, crop:w - crop]
    x = F.conv2d(x, taps.reshape(1, 1, 1, k), stride=(1, 2))
    x = F.conv2d(x, taps.reshape(1, 1, k, 1), stride=(2, 1))
    return x.reshape(n, c, x.shape[2], x.shape[3])


def warp(images: torch.Tensor, inverse: torch.Tensor, lowpass: torch.Tensor) -> torch.Tensor:
    """``images`` [N, C, H, W] resampled at ``inverse @ output pixel`` ([N, 3, 3] float32, centred
    pixel coordinates), with the 2x-oversampled filtering described above; same shape out.

    ``lowpass`` holds the 1-D filter taps normalized to sum 1.
    """
    n, channels, height, width = images.shape
    k = lowpass.numel()
    reach = k // 4  # the filter's reach in input pixels (k / 2 taps at twice the resolution)
    left, right, top, bottom = _sample_margins(inverse, height, width, 2 * reach)
    images = F.pad(images, [left, right, top, bottom], mode="reflect")
    taps = lowpass.to(images.dtype)
    images = _upsample2x(images, taps)

    # The matrix follows each step, in float32 as NVlabs (rounding alike): the origin moves to the
    # padded image's centre; at 2x, pixel centres sit at half-pixel offsets; then both sides go to
    # the [-1, 1] units of affine_grid (align_corners=False) on the (2x, 2 * reach padded) output.
    dev = images.device
    inverse = _shift((left - right) / 2, (top - bottom) / 2, dev) @ inverse
    inverse = _stretch(2, 2, dev) @ inverse @ _stretch(0.5, 0.5, dev)
    inverse = _shift(-0.5, -0.5, dev) @ inverse @ _shift(0.5, 0.5, dev)
    out_h, out_w = 2 * (height + 2 * reach), 2 * (width + 2 * reach)
    up_h, up_w = images.shape[2], images.shape[3]
    inverse = _stretch(2 / up_w, 2 / up_h, dev) @ inverse @ _stretch(1 / (2 / out_w), 1 / (2 / out_h), dev)
    grid = F.affine_grid(inverse[:, :2, :].to(images.dtype), [n, channels, out_h, out_w], align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    # Down-sampling that also drops the 2 * reach border: back to H x W.
    return _downsample2x(images, taps, crop=2 * reach - (k - 2) // 2)

