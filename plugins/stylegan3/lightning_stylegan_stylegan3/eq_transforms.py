"""The image operators of StyleGAN3's equivariance metrics (Karras et al. 2021, "Alias-Free
Generative Adversarial Networks", Section 3 and Appendix E; numerics of NVlabs' stylegan3
``metrics/equivariance.py``), each returning the transformed images and a validity mask:

* ``integer_translation`` (T_x of Appendix E.1): a shift by whole pixels, zeros shifted in;
* ``fractional_translation`` (E.2): a shift by any amount, resampled with the separable Lanczos-3
  kernel L(d) = sinc(d) sinc(d / a), |d| < a, valid where all 2a taps fall inside the image;
* ``fractional_rotation`` (R_alpha of E.3): a rotation about the image center, resampled through
  an oriented low-pass filter (``affine_bandlimit_filter``) on a 4x up-sampled image, then
  bilinear sampling;
* ``pseudo_rotation`` (R*_alpha of E.3): the same band limit as the rotation, without rotating,
  applied to the generator's rotated output, so that both sides of EQ-R carry the same spectrum.

Translations are fractions of the image size (x to the right, y down); positive amounts move the
content right / down. Images are [N, C, H, W]; the masks have their shape, 1 where valid.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lightning_stylegan.nn.filters import upfirdn2d


def sinc(x: torch.Tensor) -> torch.Tensor:
    """The normalized sinc sin(pi x) / (pi x), 1 at x = 0."""
    y = (x * math.pi).abs()
    return torch.where(y < 1e-30, torch.ones_like(x), torch.sin(y) / y.clamp(min=1e-30))


def lanczos_window(x: torch.Tensor, a: float) -> torch.Tensor:
    """sinc(x / a) inside |x| < a, 0 outside (the window of the Lanczos-a kernel)."""
    return torch.where(x.abs() < a, sinc(x / a), torch.zeros_like(x))


def rotation_matrix(angle: float | torch.Tensor) -> torch.Tensor:
    """[3, 3] float32 [[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]], the matrix NVlabs' metrics write
    into ``G.synthesis.input.transform`` (with -angle) and resample the images with (with angle)."""
    angle = torch.as_tensor(angle, dtype=torch.float32)
    cos, sin = torch.cos(angle), torch.sin(angle)
    mat = torch.eye(3, device=angle.device)
    mat[0, 0], mat[0, 1], mat[1, 0], mat[1, 1] = cos, sin, -sin, cos
    return mat


def _pixels(amount, size: int) -> float:
    return float(torch.as_tensor(amount, dtype=torch.float32) * size)


def shift(x: torch.Tensor, dx: int, dy: int) -> tuple[torch.Tensor, torch.Tensor]:
    """out[..., i + dy, j + dx] = x[..., i, j]; zeros (mask 0) where nothing was shifted in."""
    height, width = x.shape[-2:]
    out, mask = torch.zeros_like(x), torch.zeros_like(x)
    if abs(dx) < width and abs(dy) < height:
        rows_in, rows_out = slice(max(-dy, 0), height - max(dy, 0)), slice(max(dy, 0), height - max(-dy, 0))
        cols_in, cols_out = slice(max(-dx, 0), width - max(dx, 0)), slice(max(dx, 0), width - max(-dx, 0))
        out[..., rows_out, cols_out] = x[..., rows_in, cols_in]
        mask[..., rows_out, cols_out] = 1
    return out, mask


def integer_translation(x: torch.Tensor, tx, ty) -> tuple[torch.Tensor, torch.Tensor]:
    """Translate by (tx W, ty H) pixels, each rounded to the nearest whole pixel (E.1)."""
    return shift(x, round(_pixels(tx, x.shape[-1])), round(_pixels(ty, x.shape[-2])))


def lanczos_taps(frac: float, a: int = 3) -> torch.Tensor:
    """The 2a weights of a shift by ``frac`` in [0, 1) (after the whole-pixel part): L(m - frac)
    for the source offsets m = -(a - 1) .. a, normalized to sum 1."""
    d = torch.arange(-(a - 1), a + 1, dtype=torch.float32) - torch.tensor(frac, dtype=torch.float32)
    taps = sinc(d) * sinc(d / a)
    return taps / taps.sum()


def fractional_translation(x: torch.Tensor, tx, ty, a: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Translate by (tx W, ty H) pixels with the Lanczos-a kernel (E.2), separably:

        out[i, j] = sum_{m, n} Ly[n] Lx[m] x[i - iy - n, j - ix - m]

    with (ix, iy) the whole and (fx, fy) the fractional parts of the shift, Lx = ``lanczos_taps(fx)``
    and pixels outside the image 0. The mask is 1 where all 2a x 2a taps read inside the image."""
    sx, sy = _pixels(tx, x.shape[-1]), _pixels(ty, x.shape[-2])
    ix, iy = math.floor(sx), math.floor(sy)
    offsets = range(-(a - 1), a + 1)
    rows = torch.zeros_like(x)
    mask = torch.ones_like(x)
    for m, weight in zip(offsets, lanczos_taps(sx - ix, a).tolist()):
        moved, valid = shift(x, ix + m, 0)
        rows, mask = rows + weight * moved, mask * valid
    out = torch.zeros_like(x)
    for n, weight in zip(offsets, lanczos_taps(sy - iy, a).tolist()):
        moved, valid = shift(rows, 0, iy + n)
        out, mask = out + weight * moved, mask * valid
    return out, mask


def _circular_convolution(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.fft.ifftn(torch.fft.fftn(a) * torch.fft.fftn(b)).real


def affine_bandlimit_filter(mat: torch.Tensor, a: int = 3, amax: int = 16, aflt: int = 64, up: int = 4,
                            cutoff_in: float = 1, cutoff_out: float = 1) -> torch.Tensor:
    """The [2 amax up - 1]^2 low-pass filter (sample spacing 1 / up) that band-limits an image both
    in its own coordinates (the box spectrum sinc(x c_in) sinc(y c_in)) and in the coordinates
    [xo, yo] = mat[:2, :2] [x, y] of the transformed image (sinc(xo c_out) sinc(yo c_out)):

        filter = (f_in * f_out) . (w_in * w_out),   w = the Lanczos-a windows in both coordinates,

    ``*`` the 2-D convolution, evaluated as a circular one on a (2 aflt up - 1)^2 grid by FFT, then
    cut to |offset| < amax. It is normalized so that each of its up x up polyphase components sums
    to 1 / up^2: up-sampling with it (gain up^2) makes every new sample a weighted mean."""
    if not a <= amax < aflt:
        raise ValueError(f"affine_bandlimit_filter needs a <= amax < aflt, got a={a}, amax={amax}, aflt={aflt}")
    mat = torch.as_tensor(mat, dtype=torch.float32)
    n, half = 2 * aflt * up - 1, aflt * up
    index = torch.arange(n, device=mat.device)
    offsets = torch.where(index < half, index, index - n).to(torch.float32) / up  # 0 first, as FFT bins
    yi, xi = torch.meshgrid(offsets, offsets, indexing="ij")
    xo, yo = (torch.stack([xi, yi], dim=2) @ mat[:2, :2].t()).unbind(2)
    f = _circular_convolution(sinc(xi * cutoff_in) * sinc(yi * cutoff_in),
                              sinc(xo * cutoff_out) * sinc(yo * cutoff_out))
    w = _circular_convolution(lanczos_window(xi, a) * lanczos_window(yi, a),
                              lanczos_window(xo, a) * lanczos_window(yo, a))
    crop = (aflt - amax) * up
    taps = (f * w).roll([half - 1, half - 1], dims=[0, 1])[crop:n - crop, crop:n - crop]  # offset 0 centered
    size = 2 * amax * up
    phases = F.pad(taps, [0, 1, 0, 1]).reshape(2 * amax, up, 2 * amax, up)
    phases = phases / phases.sum(dim=(0, 2), keepdim=True) / up ** 2
    return phases.reshape(size, size)[:-1, :-1]


def affine_transformation(x: torch.Tensor, mat: torch.Tensor, up: int = 4,
                          **filter_options) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample x through the affine map ``mat`` of image coordinates (the image spanning
    [-1/2, 1/2]^2, y down): out(u) = x(mat^-1 u). x is up-sampled ``up`` times with
    ``affine_bandlimit_filter(mat)`` (and padded by its half size p), then sampled bilinearly. The
    up-sampled sample j lies at input pixel (j - p) / up - 1/2, so an image coordinate u maps to
    grid_sample's (2 u + 1 / (up W)) W / (W + 2 p / up). The mask, nearest-sampled, is 1 where the
    up-sampled image lies at least 2 p + 1 samples inside its border."""
    height, width = x.shape[-2:]
    mat = torch.as_tensor(mat, dtype=torch.float32, device=x.device)
    f = affine_bandlimit_filter(mat, up=up, **filter_options)
    p = f.shape[0] // 2
    theta = torch.linalg.inv(mat)
    theta[:2, 2] *= 2
    theta[0, 2] += 1 / (up * width)
    theta[1, 2] += 1 / (up * height)
    theta[0, :] *= width / (width + 2 * p / up)
    theta[1, :] *= height / (height + 2 * p / up)
    grid = F.affine_grid(theta[:2].unsqueeze(0).expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    k = f.shape[0]
    before, after = p + (k + up - 1) // 2, p + (k - up) // 2
    upsampled = upfirdn2d(x, f, up=up, padding=(before, after, before, after), gain=up ** 2)
    out = F.grid_sample(upsampled, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    inside = torch.zeros_like(upsampled)
    c = 2 * p + 1
    inside[..., c:-c, c:-c] = 1
    mask = F.grid_sample(inside, grid.to(x.dtype), mode="nearest", padding_mode="zeros", align_corners=False)
    return out, mask


def fractional_rotation(x: torch.Tensor, angle, a: int = 3, **filter_options) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate by ``angle`` (radians) about the image center (E.3): ``affine_transformation`` with
    ``rotation_matrix(angle)`` and a Lanczos-a window cut at 2a."""
    return affine_transformation(x, rotation_matrix(angle).to(x.device), a=a, amax=2 * a, **filter_options)


def pseudo_rotation(x: torch.Tensor, angle, a: int = 3, **filter_options) -> tuple[torch.Tensor, torch.Tensor]:
    """The spectrum change of a rotation by ``angle`` without the rotation (R*_alpha of E.3): x
    filtered (same size, zeros outside) by ``affine_bandlimit_filter(rotation_matrix(-angle), up=1)``;
    the mask is 1 at least half the filter size inside the border."""
    f = affine_bandlimit_filter(rotation_matrix(-torch.as_tensor(angle, dtype=torch.float32)).to(x.device),
                                a=a, amax=2 * a, up=1, **filter_options)
    k = f.shape[0]
    out = upfirdn2d(x, f, padding=(k // 2, (k - 1) // 2, k // 2, (k - 1) // 2))
    mask = torch.zeros_like(out)
    c = k // 2
    mask[..., c:-c, c:-c] = 1
    return out, mask
