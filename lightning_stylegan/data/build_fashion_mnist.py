"""Rebuild ``fashion_mnist_6k.npz``, the embedded default dataset, from the Fashion-MNIST idx files.

    python -m lightning_stylegan.data.build_fashion_mnist [IDX_FOLDER] [--out FILE]

``IDX_FOLDER`` holds ``train-images-idx3-ubyte.gz`` and ``train-labels-idx1-ubyte.gz`` (plain or
gzipped) as published by Zalando Research (https://github.com/zalandoresearch/fashion-mnist, MIT
licence); the default is where Debian's ``dataset-fashion-mnist`` package puts them. The output keeps
the first ``PER_CLASS`` training images of each of the 10 classes, in their original order:
``images`` uint8 [6000, 28, 28] and ``labels`` uint8 [6000], written with ``np.savez_compressed``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .idx import read_idx

DEFAULT_SOURCE = "/usr/share/datasets/fashion-mnist"
DEFAULT_OUT = Path(__file__).with_name("fashion_mnist_6k.npz")
PER_CLASS = 600
NUM_CLASSES = 10


def select(images: np.ndarray, labels: np.ndarray, per_class: int = PER_CLASS) -> tuple[np.ndarray, np.ndarray]:
    """The first ``per_class`` images of each class, kept in their original order."""
    keep = np.zeros(len(labels), dtype=bool)
    for c in range(NUM_CLASSES):
        keep[np.flatnonzero(labels == c)[:per_class]] = True
    return images[keep], labels[keep]


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default=DEFAULT_SOURCE, help="folder with the idx files")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="the .npz to write")
    args = parser.parse_args(argv)
    source = Path(args.source)
    images = read_idx(source / "train-images-idx3-ubyte.gz")
    labels = read_idx(source / "train-labels-idx1-ubyte.gz")
    images, labels = select(images, labels)
    np.savez_compressed(args.out, images=images, labels=labels)
    print(f"wrote {args.out}: {len(images)} images {images.shape[1:]}, {Path(args.out).stat().st_size} bytes")
    return Path(args.out)


if __name__ == "__main__":
    main()
