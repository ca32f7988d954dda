"""Where the ``dataset`` command takes class labels from: ``--labels auto | source | folders | none``.

* ``source``: the labels the source carries: the ``dataset.json`` at the root of a folder or zip
  (NVlabs' ``{"labels": [["dir/img.png", 3], ...]}``), CIFAR-10's batch labels (with the class names
  of ``batches.meta``), or the labels idx file next to MNIST's images idx file. Every image must have
  one (NVlabs silently writes no labels at all when one is missing; here that is an error naming them).
* ``folders``: the first-level folder of each image is its class; the sorted folder names are the
  classes 0..K-1 (and the class names). Every image must be in a folder, and there must be two or more.
* ``none``: no labels (``"labels": null``).
* ``auto`` (default): ``source`` when the source carries labels, else ``none``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .images import ImageDataError
from .sources import LABEL_FILE, SHOWN, listing

LABEL_MODES = ("auto", "source", "folders", "none")


@dataclass(frozen=True)
class Labels:
    """Class of each image name (None: no labels), the class names if known, and where they came from."""

    table: dict[str, int] | None
    class_names: list[str] | None
    origin: str


def choose_labels(reader, mode: str) -> Labels:
    """The labels of ``reader`` (a ``readers`` source) chosen by ``mode`` (one of ``LABEL_MODES``)."""
    if mode == "none":
        return Labels(None, None, "none (--labels none)")
    if mode == "folders":
        if not hasattr(reader, "names"):
            raise ImageDataError(f"--labels folders needs a folder or zip of images; {reader.root} is a "
                                 f"{reader.kind}: use --labels source (or auto) for its own labels, or none.")
        return folder_labels(reader.names, str(reader.root))
    table = reader.labels()
    if table is None:
        if mode == "auto":
            return Labels(None, None, f"none ({reader.root} carries none)")
        raise ImageDataError(f"--labels source: {reader.root} carries no labels (no dataset.json, or \"labels\": "
                             "null); pass --labels folders to take each image's folder as its class, or --labels none.")
    names = getattr(reader, "names", None)
    missing = [name for name in names if name not in table] if names is not None else []
    if missing:
        raise ImageDataError(f"{len(missing)} of {len(names)} images have no label in {reader.root}'s dataset.json: "
                             f"{listing(missing)}; add them to its \"labels\", remove the images, or pass "
                             "--labels none (or --labels folders).")
    origin = f"{reader.root}/{LABEL_FILE}" if names is not None else f"the {reader.kind}"
    return Labels(table, getattr(reader, "class_names", None), origin)


def folder_labels(names: list[str], root: str) -> Labels:
    """Labels from first-level folder names: sorted folder names -> 0..K-1."""
    loose = [name for name in names if "/" not in name]
    if loose:
        raise ImageDataError(f"--labels folders: {len(loose)} image(s) lie directly in {root}, in no class "
                             f"folder: {listing(loose)}; move them into a folder per class, or pass --labels none.")
    folders = sorted({name.split("/", 1)[0] for name in names})
    if len(folders) < 2:
        raise ImageDataError(f"--labels folders found one class only ({folders[0]!r}: every image of {root} is in "
                             "it); point --source at the folder that holds the class folders, or pass --labels none.")
    index = {folder: i for i, folder in enumerate(folders)}
    table = {name: index[name.split("/", 1)[0]] for name in names}
    shown = ", ".join(folders[:SHOWN]) + (", ..." if len(folders) > SHOWN else "")
    return Labels(table, folders, f"folder names ({shown})")
