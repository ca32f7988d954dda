"""``ImageDataset``: a folder or zip of images (or the embedded Fashion-MNIST) as training pairs.

Each item is ``(img, label)``: ``img`` float32 [C, R, R] in [-1, 1] (``uint8 / 127.5 - 1``), decoded
with the policy of ``lightning_stylegan.data.images``; ``label`` a float32 one-hot vector of size
``label_dim`` with ``use_labels=True``, else ``torch.zeros(0)``. Labels come from NVlabs'
``dataset.json`` at the root of the folder or zip: ``{"labels": [["dir/img.png", 3], ...]}``.
"""
from __future__ import annotations

import operator
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .embedded import EMBEDDED_NAME, NUM_CLASSES, is_embedded, load_embedded
from .images import (EXTENSIONS, SKIP_HINT, ImageDataError, check_format, convert_image, decode_image,
                     is_image_name)
from .sources import LABEL_FILE, NO_LABELS, SHOWN, Folder, Zip, listing, no_images, parse_labels

PATH_ACCEPTS = (f"--data.path accepts a folder of images ({' '.join(EXTENSIONS)}), a .zip of such images, or "
                f"nothing (null, or {EMBEDDED_NAME!r}) for the embedded Fashion-MNIST")
# Files that are often mistaken for a dataset, and what to do with them.
_ARCHIVES = (".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar", ".zst")


class _Embedded:
    """The embedded Fashion-MNIST (``lightning_stylegan.data.embedded``); names are indices."""

    root = EMBEDDED_NAME

    def list(self) -> list[str]:
        return [f"{i:04d}" for i in range(len(load_embedded()[0]))]

    def where(self, name: str) -> str:
        return f"{EMBEDDED_NAME}/{name}"

    def labels(self) -> dict[str, int]:
        return {f"{i:04d}": int(c) for i, c in enumerate(load_embedded()[1])}


class ImageDataset(torch.utils.data.Dataset):
    """Images of a folder, a zip, or the embedded Fashion-MNIST, as ``(img, label)`` pairs.

    Args:
        source: a folder (searched recursively for .png .jpg .jpeg .webp .bmp in any case; dot-files
            and dot-folders are ignored), a ``.zip`` of such images, or ``None`` / ``"fashion-mnist"``
            for the embedded 6000-image Fashion-MNIST (write ``./fashion-mnist`` for a folder of
            that name). Images are ordered by relative path.
        resolution: output size R; every image becomes R x R.
        channels: 1 (gray), 3 (RGB) or 4 (RGBA); every image is converted to it.
        resize: 'center-crop' (largest centered square) or 'pad' (centered, black borders) to make a
            non-square image square before the LANCZOS resize; see ``lightning_stylegan.data.images``.
        skip_corrupt: decode every image once now and drop those that fail (``num_skipped``,
            ``skipped``, and a warning report them); otherwise a bad image raises ``ImageDataError``
            when it is read.
        use_labels: one-hot class labels from ``dataset.json`` (size ``label_dim`` = largest class
            + 1); every image must have one. Otherwise ``label_dim`` is 0 and labels are empty.
        xflip: also yield every image mirrored left-right (index i + N is image i flipped).
        max_images: keep only the first this many images (the first readable ones with skip_corrupt).
    """

    def __init__(self, source: str | os.PathLike | None, resolution: int, channels: int,
                 resize: str = "center-crop", skip_corrupt: bool = False, use_labels: bool = False,
                 xflip: bool = False, max_images: int | None = None):
        check_format(resolution, channels, resize)
        if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int)
                                       or max_images < 1):
            raise ImageDataError(f"max_images must be a positive integer or None, got {max_images!r}; set "
                                 "--data.max_images to how many images to use, or null for all of them.")
        self.resolution, self.channels, self.resize = resolution, channels, resize
        self.xflip, self.use_labels = bool(xflip), bool(use_labels)
        self._source = self._open(source)
        self.source = str(self._source.root)
        names = self._source.list()
        if not names:
            raise ImageDataError(no_images(self._source, "Add images with one of these extensions (convert others, e.g. .gif or .tif, to .png), or point --data.path at another folder or .zip."))
        table = self._label_table() if use_labels else None
        self.skipped: list[str] = []
        if skip_corrupt:
            names = self._drop_unreadable(names, max_images)
        self._names = names[:max_images]
        self.label_dim = 0
        self._labels = None
        if table is not None:
            missing = [n for n in self._names if n not in table]
            if missing:
                raise ImageDataError(
                    f"{len(missing)} image(s) have no label in {self._label_where()}: "
                    f"{', '.join(self._source.where(n) for n in missing[:SHOWN])}"
                    f"{', ...' if len(missing) > SHOWN else ''}. Add them to its \"labels\" list, "
                    f"remove the images, or pass {NO_LABELS}.")
            self.label_dim = (NUM_CLASSES if isinstance(self._source, _Embedded) else max(table.values()) + 1)
            self._labels = np.array([table[n] for n in self._names], dtype=np.int64)

    @staticmethod
    def _open(source):
        if is_embedded(source):
            return _Embedded()
        if not isinstance(source, (str, os.PathLike)):
            raise ImageDataError(f"Dataset path {source!r} is a {type(source).__name__}, not a path; "
                                 f"{PATH_ACCEPTS}.")
        path = Path(source)
        if not path.exists():
            where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
            raise ImageDataError(f"Dataset path {path}{where} does not exist; check --data.path. {PATH_ACCEPTS}.")
        if path.is_dir():
            return Folder(path)
        suffix = path.suffix.lower()
        if path.is_file() and suffix == ".zip":
            if not zipfile.is_zipfile(path):
                raise ImageDataError(f"Dataset path {path} is not a valid zip file (truncated, or not a zip despite "
                                     "its name); re-create it (e.g. zip -r images.zip images/), or point "
                                     "--data.path at the folder of images.")
            return Zip(path)
        if is_image_name(path.name):
            fix = "a single image is not a dataset: put the images in a folder and give that folder"
        elif suffix in _ARCHIVES:
            fix = f"{suffix} archives are not read: extract it into a folder, or re-pack the images as a .zip"
        else:
            fix = "give the folder of images or a .zip of them instead"
        kind = "" if path.is_file() else " (not even a regular file)"
        raise ImageDataError(f"Dataset path {path} is neither a folder nor a .zip file{kind}; {fix}. "
                             f"{PATH_ACCEPTS}.")

    def _label_where(self) -> str:
        return "the embedded labels" if isinstance(self._source, _Embedded) else f"{self.source}/{LABEL_FILE}"

    def _label_table(self) -> dict[str, int]:
        if isinstance(self._source, _Embedded):
            return self._source.labels()
        raw = self._source.label_bytes()
        if raw is None:
            raise ImageDataError(f"use_labels=True needs {self._label_where()} "
                                 '({"labels": [["dir/img.png", 0], ...]}), which does not exist; add it '
                                 f"or pass {NO_LABELS}.")
        table = parse_labels(raw, self._label_where())
        if table is None:
            raise ImageDataError(f'{self._label_where()} says "labels": null (no labels); '
                                 f"pass {NO_LABELS} or add labels.")
        return table

    def _drop_unreadable(self, names: list[str], max_images: int | None) -> list[str]:
        if isinstance(self._source, _Embedded):
            return names
        good, first_error = [], None
        for name in names:
            if max_images is not None and len(good) >= max_images:
                break
            try:
                self._load(name)
                good.append(name)
            except ImageDataError as error:
                self.skipped.append(name)
                first_error = first_error or error
        if self.skipped:
            warnings.warn(f"Skipped {len(self.skipped)} unreadable image(s) in {self.source} "
                          f"(skip_corrupt=True): {listing(self.skipped)}", stacklevel=3)
        if not good:
            reason = str(first_error).split(f" {SKIP_HINT}")[0].rstrip(".")
            raise ImageDataError(f"None of the {len(names)} images in {self.source} can be decoded (the first: "
                                 f"{reason}); replace them with readable images, or point --data.path at "
                                 "another folder or .zip.")
        return good

    def _load(self, name: str) -> np.ndarray:
        """uint8 [C, R, R] for one image name."""
        if isinstance(self._source, _Embedded):
            img = Image.fromarray(load_embedded()[0][int(name)], "L")
            return convert_image(img, self.resolution, self.channels, self.resize)
        data = self._source.read(name)
        return decode_image(data, self._source.where(name), self.resolution, self.channels, self.resize)

    @property
    def names(self) -> list[str]:
        """The images' paths relative to the source root (indices for the embedded set), in order."""
        return list(self._names)

    @property
    def labels(self) -> np.ndarray | None:
        """One-hot labels [num_images, label_dim] (float32) in image order; None without labels."""
        if self._labels is None:
            return None
        return np.eye(self.label_dim, dtype=np.float32)[self._labels]

    @property
    def num_images(self) -> int:
        """How many distinct images (``len`` is twice this with ``xflip``)."""
        return len(self._names)

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.resolution, self.resolution)

    def __len__(self) -> int:
        return len(self._names) * (2 if self.xflip else 1)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = operator.index(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} images")
        n = len(self._names)
        array = self._load(self._names[index % n])
        if index >= n:
            array = array[:, :, ::-1]
        img = torch.from_numpy(np.ascontiguousarray(array)).to(torch.float32) / 127.5 - 1
        if self._labels is None:
            return img, torch.zeros(0)
        label = torch.zeros(self.label_dim)
        label[self._labels[index % n]] = 1
        return img, label

    def __repr__(self) -> str:
        return (f"ImageDataset({self.source!r}, {self.num_images} images, shape {list(self.image_shape)}, "
                f"resize={self.resize!r}, label_dim={self.label_dim}, xflip={self.xflip})")
