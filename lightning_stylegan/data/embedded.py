"""The embedded default dataset: 6000 Fashion-MNIST training images, shipped with the package.

Fashion-MNIST is by Han Xiao, Kashif Rasul and Roland Vollgraf (Zalando Research, 2017,
https://github.com/zalandoresearch/fashion-mnist), MIT licence, copyright 2017 Zalando SE (see
``FASHION_MNIST_LICENSE`` next to this file). ``fashion_mnist_6k.npz`` holds the first 600 training
images of each of its 10 classes in their original order, 28x28 gray: ``images`` uint8
[6000, 28, 28], ``labels`` uint8 [6000]. ``build_fashion_mnist.py`` rebuilds it from the idx files.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

EMBEDDED_NAME = "fashion-mnist"
EMBEDDED_FILE = Path(__file__).with_name("fashion_mnist_6k.npz")
NUM_CLASSES = 10
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def is_embedded(source: object) -> bool:
    """True when ``source`` names the embedded dataset: ``None`` or ``EMBEDDED_NAME``."""
    return source is None or source == EMBEDDED_NAME


@functools.cache
def load_embedded() -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [6000, 28, 28], labels uint8 [6000]), read once per process; read-only arrays."""
    if not EMBEDDED_FILE.is_file():
        raise FileNotFoundError(
            f"The embedded dataset {EMBEDDED_FILE} is missing from this installation; reinstall "
            "lightning-stylegan, or rebuild it with `python -m lightning_stylegan.data.build_fashion_mnist`.")
    with np.load(EMBEDDED_FILE) as npz:
        images, labels = npz["images"], npz["labels"]
    if images.shape[1:] != (28, 28) or len(images) != len(labels) or images.dtype != np.uint8:
        raise ValueError(f"{EMBEDDED_FILE} is not the expected uint8 [N, 28, 28] images + [N] labels")
    images.flags.writeable = labels.flags.writeable = False
    return images, labels
