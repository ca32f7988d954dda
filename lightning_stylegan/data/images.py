"""Decode one image file into a uint8 array [C, R, R], with one fixed policy for every source.

Policy, in order:

1. **Decode** with PIL (the first frame of an animation); an EXIF orientation tag, if any, is applied
   so that photos come out upright. Anything PIL cannot fully decode (unknown format, truncated or
   corrupt data, a file that is no image at all) raises ``ImageDataError`` naming the file.
2. **Channels**: every mode becomes ``CHANNEL_MODES[channels]`` (1 -> ``L``, 3 -> ``RGB``,
   4 -> ``RGBA``). 16-bit grayscale (``I;16*``, and ``I``, which is how PIL may open a 16-bit PNG) is
   scaled by 255/65535 and rounded; ``F`` is taken as 0..255 and clipped; ``1`` becomes 0/255.
   Palette images become RGBA when they carry transparency, else RGB; ``CMYK``, ``YCbCr``, ... go
   through RGB. Color -> gray uses PIL's ITU-R 601-2 luma; gray -> color replicates the gray value;
   an image without alpha gets alpha 255; alpha is dropped (not composited) when the target has none.
3. **Size** (``resize``): ``center-crop`` crops the largest centered square, ``pad`` pads to a square
   with zero (black, and transparent for RGBA) borders, centered; then the square is resized to
   ``resolution`` x ``resolution`` with PIL's LANCZOS filter. When the two sides differ by an odd
   number of pixels, the extra pixel is cropped from / padded on the right or bottom. An image
   already ``resolution`` x ``resolution`` is returned untouched.
"""
from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UsageError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
RESIZE_POLICIES = ("center-crop", "pad")
CHANNEL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
SKIP_HINT = ("Remove or replace the file, or pass skip_corrupt=True (--data.skip_corrupt true) "
             "to drop unreadable images.")
SEARCHED = f"{' '.join(EXTENSIONS)} in any case"  # what a folder or zip is searched for
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_EXIF_ORIENTATION = 0x0112
_RESAMPLING = getattr(Image, "Resampling", Image)  # Image.Resampling is Pillow >= 9.1
FILTERS = {"lanczos": _RESAMPLING.LANCZOS, "box": _RESAMPLING.BOX, "bicubic": _RESAMPLING.BICUBIC}


class ImageDataError(UsageError, ValueError):
    """A dataset, image or data option that cannot be used. The message is one line: what is wrong,
    the culprit (file, path, or the ``--data.*`` option) and the fix, so a command can print it as
    ``error: <message>`` without a traceback."""


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) as one space: for messages that
    quote another library's error."""
    return " ".join(str(text).split())


def is_image_name(name: str) -> bool:
    """True for a file name with one of ``EXTENSIONS`` (any case)."""
    return os.path.splitext(name)[1].lower() in EXTENSIONS


def check_format(resolution: int, channels: int, resize: str) -> None:
    """Raise ``ImageDataError`` for a resolution, channel count or resize policy this module can't make."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ImageDataError(f"resolution must be a positive integer, got {resolution!r}; set --data.resolution "
                             "to the output size in pixels, a power of two such as 32, 256 or 1024.")
    if isinstance(channels, bool) or channels not in CHANNEL_MODES:
        raise ImageDataError(f"channels must be one of {tuple(CHANNEL_MODES)} (gray, RGB, RGBA), got {channels!r}; "
                             "set --data.channels to 1, 3 or 4.")
    _check_resize(resize)


def _check_resize(resize: str) -> None:
    if resize not in RESIZE_POLICIES:
        raise ImageDataError(f"Unknown resize policy {resize!r}; set --data.resize to one of the policies: "
                             f"{', '.join(RESIZE_POLICIES)}.")


def decode_image(data: bytes, name: str, resolution: int, channels: int, resize: str = "center-crop") -> np.ndarray:
    """The bytes of one image file -> uint8 [channels, resolution, resolution], per the module's policy.

    ``name`` is only used in error messages: give the full path (and the zip, if inside one).
    """
    return convert_image(open_image(data, name), resolution, channels, resize)


def open_image(data: bytes, name: str) -> Image.Image:
    """The bytes of one image file -> the decoded PIL image, upright (step 1 of the policy)."""
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        if img.getexif().get(_EXIF_ORIENTATION, 1) != 1:
            img = ImageOps.exif_transpose(img)
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, struct.error, ... on bad data
        raise ImageDataError(f"Cannot decode image {name} ({len(data)} bytes; {_reason(exc, data)}). "
                             f"{SKIP_HINT}") from exc
    return img


def _reason(exc: Exception, data: bytes) -> str:
    """Why PIL could not decode ``data``, in a few words on one line."""
    if not data:
        return "the file is empty"
    if isinstance(exc, UnidentifiedImageError):  # its text quotes a BytesIO object: say what it is instead
        return (f"PIL recognizes no image format in it: not an image whatever its extension, or a damaged "
                f"header; it starts with {data[:16]!r}")
    return one_line(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


def convert_image(img: Image.Image, resolution: int, channels: int, resize: str = "center-crop") -> np.ndarray:
    """A decoded PIL image -> uint8 [channels, resolution, resolution] (steps 2 and 3 of the policy)."""
    check_format(resolution, channels, resize)
    img = fit(to_mode(img, channels), resolution, resize)
    array = np.array(img, dtype=np.uint8)  # a writable copy (np.asarray of a PIL image is read-only)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """``img`` in the PIL mode for ``channels`` (``L``, ``RGB`` or ``RGBA``)."""
    target = CHANNEL_MODES[channels]
    if img.mode in _SIXTEEN_BIT or img.mode == "F":
        values = np.asarray(img, dtype=np.float64)
        scale = 255 / 65535 if img.mode in _SIXTEEN_BIT else 1.0
        img = Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), "L")
    elif img.mode == "1":
        img = img.convert("L")
    elif img.mode in ("P", "PA"):
        img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
    if img.mode not in CHANNEL_MODES.values():  # LA, La, RGBa, RGBX, CMYK, YCbCr, LAB, HSV, ...
        img = img.convert("RGBA" if "A" in img.getbands() or "a" in img.getbands() else "RGB")
    return img if img.mode == target else img.convert(target)


def fit(img: Image.Image, resolution: int, resize: str = "center-crop", resize_filter: str = "lanczos") -> Image.Image:
    """``img`` made square by ``resize`` ('center-crop' or 'pad'), then resized with ``resize_filter``
    (a name of ``FILTERS``; training uses LANCZOS) to ``resolution`` x ``resolution``; returned as is
    when it already has that size."""
    _check_resize(resize)
    width, height = img.size
    if width == height == resolution:
        return img
    if width != height:
        if resize == "center-crop":
            side = min(width, height)
            left, top = (width - side) // 2, (height - side) // 2
            img = img.crop((left, top, left + side, top + side))
        else:
            side = max(width, height)
            square = Image.new(img.mode, (side, side), 0)
            square.paste(img, ((side - width) // 2, (side - height) // 2))
            img = square
    if img.size != (resolution, resolution):
        img = img.resize((resolution, resolution), FILTERS[resize_filter])
    return img
