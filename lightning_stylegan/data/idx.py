"""MNIST's idx files (``train-images-idx3-ubyte.gz`` and its siblings) as arrays and as a dataset source.

The idx format (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type byte (0x08: unsigned
bytes, the only type read here), the number of dimensions, each dimension as a big-endian uint32,
then the values. A file is gzip-compressed when it starts with gzip's magic bytes, whatever its name.

``IdxImages`` is the ``dataset`` command's reader of a ``*-images-idx3-ubyte[.gz]`` file (with the
``*-labels-idx1-ubyte[.gz]`` next to it, when there is one, as the labels). As NVlabs'
``dataset_tool.py`` does for MNIST, every image is padded with zeros to the next power of two,
centered: 28 x 28 becomes 32 x 32 (2 pixels on each side), which training needs.
"""
from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
from PIL import Image

from .images import ImageDataError

IMAGES_PATTERN = re.compile(r"-images-idx3-ubyte(\.gz)?$")
TRAINING_IMAGES = "train-images-idx3-ubyte"
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: Path) -> np.ndarray:
    """One idx file of unsigned bytes as a numpy array. ``path`` may name the file with or without its
    ``.gz``: the other spelling is tried when it does not exist."""
    candidates = [path, path.with_name(path.name + ".gz")] if path.suffix != ".gz" else [path, path.with_suffix("")]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise FileNotFoundError(f"{path}: no such idx file (also looked for {candidates[1].name}); "
                                "download Fashion-MNIST or install Debian's dataset-fashion-mnist")
    data = found.read_bytes()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ImageDataError(f"{found}: cannot decompress it ({exc}); download it again") from exc
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise ImageDataError(f"{found}: not an idx file of unsigned bytes (it starts with {data[:4].hex()}, "
                             "not 00000803 or 00000801); give MNIST's *-images-idx3-ubyte[.gz] file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=np.uint8, offset=min(4 + 4 * ndim, len(data)))
    if array.size != int(np.prod(shape)):
        raise ImageDataError(f"{found}: header says shape {shape} but holds {array.size} values (truncated?); "
                             "download it again")
    return array.reshape(shape)


def pad_to_power_of_two(images: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W] padded with zeros, centered, to [N, S, S], S the smallest power of two >= H and W
    (an odd margin puts the extra pixel right or bottom)."""
    height, width = images.shape[1:]
    side = 1 << (max(height, width) - 1).bit_length()
    top, left = (side - height) // 2, (side - width) // 2
    return np.pad(images, [(0, 0), (top, side - height - top), (left, side - width - left)])


class IdxImages:
    """The images of an idx3 file, and the labels of its sibling idx1 file if it exists."""

    kind = "idx file"

    def __init__(self, path: Path):
        self.root = path
        images = read_idx(path)
        if images.ndim != 3:
            raise ImageDataError(f"{path} holds an array of shape {images.shape}, not images [N, H, W]; give "
                                 "MNIST's *-images-idx3-ubyte[.gz] file")
        self.images = pad_to_power_of_two(images)
        self.class_names = None
        self._labels = None
        labels_path = path.with_name(IMAGES_PATTERN.sub("-labels-idx1-ubyte", path.name))
        if labels_path != path and (labels_path.is_file() or labels_path.with_name(labels_path.name + ".gz").is_file()):
            labels = read_idx(labels_path)
            if labels.shape != (len(images),):
                raise ImageDataError(f"{labels_path}: {labels.shape} labels for {len(images)} images in {path}; "
                                     "give the labels file that belongs to the images, or move it away and "
                                     "pass --labels none")
            self._labels = labels

    def __len__(self) -> int:
        return len(self.images)

    def _name(self, index: int) -> str:
        return f"{self.root.name}[{index}]"

    def __iter__(self):
        for index, image in enumerate(self.images):
            yield self._name(index), lambda image=image: Image.fromarray(image, "L")

    def labels(self) -> dict[str, int] | None:
        if self._labels is None:
            return None
        return {self._name(index): int(label) for index, label in enumerate(self._labels)}
