"""Image files of a folder or a zip, and NVlabs' ``dataset.json`` labels: what both the training data
(``ImageDataset``) and the ``dataset`` command read.

``Folder`` and ``Zip`` list image names relative to their root (``/``-separated, sorted; extensions
of ``images.EXTENSIONS`` in any case; dot-files, dot-folders and macOS ``__MACOSX`` folders left out)
and read one file's bytes, raising ``ImageDataError`` naming it. ``parse_labels`` reads NVlabs'
``{"labels": [["dir/img.png", 3], ...]}`` (stylegan2-ada-pytorch ``training/dataset.py``); extra
keys are ignored, as NVlabs does.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from .images import SEARCHED, SKIP_HINT, ImageDataError, is_image_name, one_line

LABEL_FILE = "dataset.json"
SHOWN = 5  # how many names an error or warning lists
NO_LABELS = "use_labels=False (--data.use_labels false)"


def is_hidden(relative: str) -> bool:
    """Dot-files/folders and macOS ``__MACOSX`` zip folders (``._x.png`` there is not an image)."""
    return any(part.startswith(".") or part == "__MACOSX" for part in relative.split("/"))


def listing(names: list[str]) -> str:
    """The first ``SHOWN`` names, comma-separated, and how many more there are."""
    shown = ", ".join(names[:SHOWN])
    return shown + (f", ... ({len(names) - SHOWN} more)" if len(names) > SHOWN else "")


def no_images(store, fix: str) -> str:
    """The message for a ``Folder`` or ``Zip`` without images: what was searched, what was found
    instead, then ``fix``."""
    others = store.others()
    if not others:
        found = f"the {store.kind()} is empty"
    else:
        found = (f"it holds {len(others) if len(others) <= 100 else 'over 100'} other file(s), none of them "
                 f"an image: {listing(others)}")
    return (f"No images found in {store.kind()} {store.root} (searched "
            f"{'recursively ' if isinstance(store, Folder) else ''}for {SEARCHED}; dot-files, "
            f"dot-folders and __MACOSX are skipped); {found}. {fix}")


def parse_labels(raw: bytes, where: str, fix: str = f"pass {NO_LABELS}") -> dict[str, int] | None:
    """NVlabs' ``dataset.json`` -> {relative path: class}, or None for ``"labels": null``. ``fix`` ends
    every error message: how to do without the file."""
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise ImageDataError(f"{where} is not valid JSON ({exc}); fix it or {fix}.") from exc
    if not isinstance(meta, dict) or "labels" not in meta:
        raise ImageDataError(f'{where} must be an object with a "labels" key: '
                             '{"labels": [["dir/img.png", 0], ...]} (or "labels": null); fix it or '
                             f'{fix}.')
    entries = meta["labels"]
    if entries is None:
        return None
    entries = entries.items() if isinstance(entries, dict) else entries
    table = {}
    for entry in entries:
        ok = isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str)
        if not ok or isinstance(entry[1], bool) or not isinstance(entry[1], int) or entry[1] < 0:
            raise ImageDataError(f"{where}: bad label entry {entry!r}; each entry must be "
                                 '["relative/path.png", class] with class a non-negative integer; fix it or '
                                 f"{fix}.")
        table[entry[0].replace("\\", "/")] = entry[1]
    return table


class Folder:
    """Image files under ``root``, searched recursively (symlinked folders followed once)."""

    def __init__(self, root: Path):
        self.root = root

    def list(self) -> list[str]:
        names, seen = [], set()
        for folder, dirs, files in os.walk(self.root, followlinks=True):
            real = os.path.realpath(folder)
            if real in seen:  # a symlink loop, or a folder linked twice
                dirs[:] = []
                continue
            seen.add(real)
            rel = Path(folder).relative_to(self.root).as_posix()
            prefix = "" if rel == "." else rel + "/"
            names += [prefix + f for f in files if is_image_name(f) and not is_hidden(prefix + f)]
        return sorted(names)

    def others(self) -> list[str]:
        """The files that are not images (dot-files and hidden images included), for error messages."""
        found = []
        for folder, dirs, files in os.walk(self.root):
            rel = Path(folder).relative_to(self.root).as_posix()
            found += [f if rel == "." else f"{rel}/{f}" for f in files]
            if len(found) > 100:
                break
        return sorted(found)

    def kind(self) -> str:
        return "folder"

    def where(self, name: str) -> str:
        return str(self.root / name)

    def read(self, name: str) -> bytes:
        try:
            return (self.root / name).read_bytes()
        except OSError as exc:
            raise ImageDataError(f"Cannot read image {self.where(name)} ({one_line(exc)}). {SKIP_HINT}") from exc

    def label_bytes(self) -> bytes | None:
        path = self.root / LABEL_FILE
        return path.read_bytes() if path.is_file() else None


class Zip:
    """Image members of a zip file, opened lazily once per process (so the dataset pickles, and
    forked DataLoader workers never share a file offset)."""

    def __init__(self, root: Path):
        self.root = root
        self._zip: zipfile.ZipFile | None = None
        self._pid: int | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_zip": None, "_pid": None}

    def _file(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            try:
                self._zip = zipfile.ZipFile(self.root)
            except (OSError, zipfile.BadZipFile) as exc:
                raise ImageDataError(f"Cannot open zip file {self.root} ({one_line(exc)}); re-create it "
                                     "(e.g. zip -r images.zip images/), or use the folder of images.") from exc
            self._pid = os.getpid()
        return self._zip

    def list(self) -> list[str]:
        infos = self._file().infolist()
        return sorted({i.filename for i in infos if not i.is_dir() and is_image_name(i.filename)
                       and not is_hidden(i.filename)})

    def others(self) -> list[str]:
        return sorted(i.filename for i in self._file().infolist() if not i.is_dir())

    def kind(self) -> str:
        return "zip file"

    def where(self, name: str) -> str:
        return f"{name} in zip file {self.root}"

    def read(self, name: str) -> bytes:
        try:
            return self._file().read(name)
        except Exception as exc:  # BadZipFile (CRC), zlib.error, OSError, NotImplementedError (compression)
            reason = one_line(f"{type(exc).__name__}: {exc}")
            raise ImageDataError(f"Cannot read image {self.where(name)} ({reason}). {SKIP_HINT}") from exc

    def label_bytes(self) -> bytes | None:
        zf = self._file()
        return zf.read(LABEL_FILE) if LABEL_FILE in zf.namelist() else None
