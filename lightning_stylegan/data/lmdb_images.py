"""Encoded images stored as the values of an LMDB database, as in the LSUN dumps (``bedroom_train_lmdb/``).

An LMDB database is a folder holding ``data.mdb`` (and ``lock.mdb``). Every value is taken as one
encoded image (JPEG, PNG, WebP, ...), decoded with PIL in key order; keys are the images' names.
NVlabs' ``dataset_tool.py`` decodes with OpenCV first (which can differ from PIL's JPEG decoder
by a level here and there); this project does not depend on OpenCV. Reading needs the ``lmdb``
package (``pip install lmdb``, or the ``lmdb`` extra of this package). LMDB images carry no labels.
"""
from __future__ import annotations

from pathlib import Path

from .images import ImageDataError, one_line, open_image

DATA_FILE = "data.mdb"


def _lmdb():
    try:
        import lmdb
    except ImportError as exc:
        raise ImageDataError("Reading an LMDB database needs the lmdb package: pip install lmdb "
                             "(or pip install 'lightning-stylegan[lmdb]')") from exc
    return lmdb


class LmdbImages:
    """The values of the LMDB database in folder ``path``, decoded as images, in key order."""

    kind = "LMDB database"
    class_names = None

    def __init__(self, path: Path):
        self.root = path
        lmdb = _lmdb()
        try:
            self._env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, max_readers=1)
            self._count = self._env.stat()["entries"]
        except lmdb.Error as exc:
            raise ImageDataError(f"Cannot open LMDB database {path} ({one_line(exc)}); give the folder that "
                                 f"holds {DATA_FILE} (e.g. bedroom_train_lmdb/)") from exc

    def __len__(self) -> int:
        return self._count

    def __iter__(self):
        with self._env.begin(buffers=False) as txn:
            for key, value in txn.cursor():
                name = key.decode("utf-8", "backslashreplace")
                where = f"{name} in LMDB database {self.root}"
                yield name, lambda value=value, where=where: open_image(value, where)

    def labels(self) -> None:
        return None
