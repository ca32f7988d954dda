"""The ``dataset`` command's readers, one per kind of ``--source``, and ``open_source``, which picks one.

Every reader has the same small interface:

* ``kind`` (words for messages), ``root`` (the path it reads), ``len()``;
* iteration yields ``(name, load)`` in source order: ``name`` says where the image is (a relative
  path, an LMDB key, ``data_batch_1[17]``), ``load()`` returns the decoded PIL image or raises
  ``ImageDataError`` naming it;
* ``labels()``: the labels the source carries, {name: class}, or None when it carries none;
* ``class_names``: the class names it carries, or None.

What ``--source`` names, in the order it is recognized:

* a folder with ``data.mdb``: an LMDB database (``lmdb_images.LmdbImages``, LSUN);
* a folder with ``data_batch_1``, a tar archive (``cifar-10-python.tar.gz``) or a file named
  ``data_batch_N`` / ``test_batch``: CIFAR-10's python batches (``cifar10.Cifar10``);
* a folder with ``train-images-idx3-ubyte[.gz]``, or a ``*-images-idx3-ubyte[.gz]`` file: MNIST-format
  idx files (``idx.IdxImages``; a folder means its training set, as NVlabs reads MNIST);
* any other folder, searched recursively, or a ``.zip``: image files (``ImageFiles``), with labels from
  a ``dataset.json`` at their root (NVlabs' behaviour).
"""
from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

from .cifar10 import BATCH_NAME, TRAINING_BATCHES, Cifar10
from .idx import IMAGES_PATTERN, TRAINING_IMAGES, IdxImages
from .images import ImageDataError, open_image
from .lmdb_images import DATA_FILE, LmdbImages
from .sources import LABEL_FILE, Folder, Zip, no_images, parse_labels

SOURCES_READ = ("a folder of images (searched recursively) or a .zip of them, an LMDB folder (with data.mdb, "
                "as LSUN's *_lmdb), CIFAR-10's python batches (cifar-10-python.tar.gz, its folder or one "
                "batch file), or MNIST-format idx files (a folder with train-images-idx3-ubyte[.gz], or one "
                "*-images-idx3-ubyte[.gz] file)")
NO_LABELS_FIX = "pass --labels none to write the dataset without labels"


class ImageFiles:
    """The image files of a folder or zip (``sources.Folder`` / ``sources.Zip``), in path order."""

    class_names = None

    def __init__(self, store: Folder | Zip):
        self.store, self.root, self.kind = store, store.root, store.kind()
        self.names = store.list()
        if not self.names:
            raise ImageDataError(no_images(store, f"Give a folder or .zip with images, or another kind of "
                                                  f"source: {SOURCES_READ}."))

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self):
        for name in self.names:
            yield name, lambda name=name: open_image(self.store.read(name), self.store.where(name))

    def labels(self) -> dict[str, int] | None:
        raw = self.store.label_bytes()
        if raw is None:
            return None
        return parse_labels(raw, f"{self.root}/{LABEL_FILE}", fix=NO_LABELS_FIX)


def open_source(path: str | Path):
    """The reader for ``path`` (see the module docstring); ``ImageDataError`` for what none reads."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ImageDataError(f"--source {path} does not exist; give {SOURCES_READ}.")
    if path.is_dir():
        if (path / DATA_FILE).is_file():
            return LmdbImages(path)
        if (path / TRAINING_BATCHES[0]).is_file():
            return Cifar10(path)
        idx = [p.name for p in path.iterdir() if IMAGES_PATTERN.search(p.name)]
        if idx:
            found = next((path / name for name in (TRAINING_IMAGES, TRAINING_IMAGES + ".gz") if name in idx), None)
            if found is None:
                raise ImageDataError(f"Folder {path} holds idx files ({', '.join(sorted(idx))}) but no "
                                     f"{TRAINING_IMAGES}[.gz]; give the images file itself as --source.")
            return IdxImages(found)
        return ImageFiles(Folder(path))
    if IMAGES_PATTERN.search(path.name):
        return IdxImages(path)
    if BATCH_NAME.match(path.name) or tarfile.is_tarfile(path):
        return Cifar10(path)
    if zipfile.is_zipfile(path):
        return ImageFiles(Zip(path))
    broken = path.suffix.lower() == ".zip"
    what = "a .zip that is not a valid zip file (truncated?)" if broken else "not a kind of source read here"
    raise ImageDataError(f"--source {path} is {what}; give {SOURCES_READ}.")
