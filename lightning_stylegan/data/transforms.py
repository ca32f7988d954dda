"""How the ``dataset`` command brings an image to the output size: ``--transform`` and ``--resize-filter``.

* ``center-crop``: the largest centered square, resized to R x R (NVlabs' ``center-crop``; it is
  ``images.fit``, which the training data uses too).
* ``pad``: a centered square canvas of the longer side with zero borders (black; transparent for RGBA),
  resized to R x R (``images.fit``).
* ``center-crop-wide`` (for R x H with H < R, e.g. LSUN cars at 512 x 384): the largest centered
  crop of aspect R:H, resized to R x H, then centered vertically on an R x R zero canvas: rows
  ``(R - H) // 2`` to ``(R - H) // 2 + H`` hold the image. An image whose crop is smaller than R x H
  is left out, not enlarged, as NVlabs' ``center_crop_wide`` leaves it out. NVlabs' code crops
  ``round(R * h / w)`` rows of the w x h source, which distorts every image not exactly R pixels
  wide (stylegan2-ada-pytorch issue #47); this crops to the aspect the option promises.

Filters are PIL's (``images.FILTERS``): ``lanczos`` (NVlabs' default), ``box`` (what the
StyleGAN2-ADA paper's FFHQ 256 was made with) and ``bicubic``. Odd margins put the extra pixel right
or bottom, as ``images.fit`` does.
"""
from __future__ import annotations

from PIL import Image

from .images import FILTERS, fit

TRANSFORMS = ("center-crop", "center-crop-wide", "pad")


def wide_crop(img: Image.Image, width: int, height: int, resize_filter: str) -> Image.Image | None:
    """``center-crop-wide``: ``img`` cropped to aspect width:height, resized to width x height and
    letterboxed on a width x width zero canvas; None when the crop is smaller than width x height."""
    w, h = img.size
    if w * height > h * width:  # wider than the output: crop columns
        crop_w, crop_h = round(h * width / height), h
    else:                       # taller: crop rows
        crop_w, crop_h = w, round(w * height / width)
    if crop_w < width or crop_h < height:
        return None
    left, top = (w - crop_w) // 2, (h - crop_h) // 2
    img = img.crop((left, top, left + crop_w, top + crop_h))
    if img.size != (width, height):
        img = img.resize((width, height), FILTERS[resize_filter])
    canvas = Image.new(img.mode, (width, width), 0)
    canvas.paste(img, (0, (width - height) // 2))
    return canvas


def transform(img: Image.Image, name: str, width: int, height: int, resize_filter: str) -> Image.Image | None:
    """``img`` as a width x width image by transform ``name`` (``height`` is only for center-crop-wide);
    None when center-crop-wide leaves it out."""
    if name == "center-crop-wide":
        return wide_crop(img, width, height, resize_filter)
    return fit(img, width, name, resize_filter)
