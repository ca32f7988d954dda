"""CIFAR-10's python version read without running anything from its pickles.

CIFAR-10 (https://www.cs.toronto.edu/~kriz/cifar.html) ships as ``cifar-10-python.tar.gz``: a folder
``cifar-10-batches-py`` with the training batches ``data_batch_1`` ... ``data_batch_5``, ``test_batch``
and ``batches.meta``, each a Python 2 pickle of a dict: ``data`` uint8 [10000, 3072] (per image 1024
red, then green, then blue values, rows top to bottom), ``labels`` a list of 10000 classes 0..9;
``batches.meta`` holds the class names as ``label_names``.

``Cifar10`` reads the tarball (members are read, never extracted), the extracted folder, or one batch
file. Like NVlabs' ``dataset_tool.py`` it takes the five training batches of a tarball or folder (50000
images); give ``test_batch`` itself for the test set. The pickles are read by ``BatchUnpickler``,
which resolves only what numpy arrays of plain dtypes need (``NUMPY_GLOBALS``, numpy's
``_frombuffer`` and ``_codecs.encode`` to latin-1, with which Python 3 pickles bytes); the dict, list,
string and number parts of a batch are pickle opcodes, not globals. A pickle naming any other global
is refused with ``ImageDataError`` before anything in it is called.
"""
from __future__ import annotations

import codecs
import io
import pickle
import re
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..tools.restricted_pickle import NUMPY_GLOBALS, RestrictedUnpickler
from .images import ImageDataError, one_line

TRAINING_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
META = "batches.meta"
BATCH_NAME = re.compile(r"^(data_batch_\d+|test_batch)$")
_SIDE = 32


def _frombuffer(buffer, dtype, shape, order):
    """numpy's ``_frombuffer`` (how protocol-5 pickles hold an array), for plain dtypes only."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError(f"refusing a numpy array of dtype {dtype!r}")
    return np.frombuffer(buffer, dtype).reshape(shape, order=order)


def _latin1(text: str, encoding: str) -> bytes:
    """``_codecs.encode`` as Python 3 protocol-2 pickles use it for bytes: latin-1 only."""
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode to {encoding!r}")
    return text.encode("latin-1")


class BatchUnpickler(RestrictedUnpickler):
    """Unpickles a CIFAR batch: numpy arrays, dicts, lists, strings and numbers, nothing else."""

    allowed = {**NUMPY_GLOBALS, ("_codecs", "encode"): _latin1,
               **{(f"numpy.{core}.numeric", "_frombuffer"): _frombuffer for core in ("core", "_core")}}

    def refusal(self, module: str, name: str) -> str:
        return (f"{self.source} refers to {module}.{name}, which a CIFAR-10 batch (numpy arrays, lists, "
                "strings) never does; refusing to load it (nothing from the file was run). Download "
                "cifar-10-python.tar.gz again from https://www.cs.toronto.edu/~kriz/cifar.html")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(f"{self.source} uses persistent ids ({pid!r}), which a CIFAR-10 batch never does")


def load_batch(data: bytes, where: str) -> dict:
    """One pickled batch as a dict, read by ``BatchUnpickler`` with latin-1 strings (Python 2 pickles)."""
    try:
        batch = BatchUnpickler(io.BytesIO(data), where, encoding="latin1").load()
    except Exception as exc:  # UnpicklingError (refused or damaged), EOFError, ValueError, ...
        raise ImageDataError(f"Cannot read CIFAR-10 batch {where}: {one_line(exc)}") from exc
    if not isinstance(batch, dict):
        raise ImageDataError(f"{where} holds a {type(batch).__name__}, not a CIFAR-10 batch (a dict)")
    return batch


def _images_and_labels(batch: dict, where: str) -> tuple[np.ndarray, list[int]]:
    data, labels = batch.get("data"), batch.get("labels")
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3 * _SIDE * _SIDE):
        raise ImageDataError(f"{where} is not a CIFAR-10 batch: its 'data' is not uint8 [N, 3072] "
                             f"(keys: {sorted(map(str, batch))}); CIFAR-100's files are not read")
    if not (isinstance(labels, list) and len(labels) == len(data)
            and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in labels)):
        raise ImageDataError(f"{where} is not a CIFAR-10 batch: its 'labels' are not {len(data)} class numbers")
    return data.reshape(-1, 3, _SIDE, _SIDE).transpose(0, 2, 3, 1), labels


class Cifar10:
    """CIFAR-10 images (HWC uint8) with their labels, from a tarball, a batches folder or one batch file."""

    kind = "CIFAR-10 python batches"

    def __init__(self, path: Path):
        self.root = path
        files = self._files(path)
        parts = [_images_and_labels(load_batch(data, where), where) for _, where, data in files["batches"]]
        self.images = np.concatenate([images for images, _ in parts])
        self._names = [f"{name}[{i}]" for (name, _, _), (images, _) in zip(files["batches"], parts)
                       for i in range(len(images))]
        self._labels = [label for _, labels in parts for label in labels]
        self.class_names = None
        if files["meta"] is not None:
            names = load_batch(files["meta"][2], files["meta"][1]).get("label_names")
            if isinstance(names, list) and all(isinstance(name, str) for name in names):
                self.class_names = names

    @staticmethod
    def _files(path: Path) -> dict:
        """{'batches': [(name, where, bytes), ...], 'meta': (name, where, bytes) or None}."""
        if path.is_dir():
            missing = [name for name in TRAINING_BATCHES if not (path / name).is_file()]
            if missing:
                raise ImageDataError(f"CIFAR-10 folder {path} lacks {', '.join(missing)}; extract "
                                     "cifar-10-python.tar.gz again, or give one batch file")
            read = {name: (name, str(path / name), (path / name).read_bytes())
                    for name in (*TRAINING_BATCHES, META) if (path / name).is_file()}
        elif tarfile.is_tarfile(path):
            with tarfile.open(path) as tar:
                members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
                missing = [name for name in TRAINING_BATCHES if name not in members]
                if missing:
                    raise ImageDataError(f"{path} is a tar archive without CIFAR-10's {', '.join(missing)}; "
                                         "give cifar-10-python.tar.gz, or extract the archive and give the folder")
                read = {name: (name, f"{members[name].name} in {path}", tar.extractfile(members[name]).read())
                        for name in (*TRAINING_BATCHES, META) if name in members}
        else:
            meta = path.with_name(META)
            return {"batches": [(path.name, str(path), path.read_bytes())],
                    "meta": (META, str(meta), meta.read_bytes()) if meta.is_file() else None}
        return {"batches": [read[name] for name in TRAINING_BATCHES], "meta": read.get(META)}

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self):
        for name, image in zip(self._names, self.images):
            yield name, lambda image=image: Image.fromarray(image, "RGB")

    def labels(self) -> dict[str, int]:
        return dict(zip(self._names, self._labels))
