"""Writing and verifying checkpoint files (training checkpoints, converted ones, exported generators).

A file carries ``checksum = {"sha256": ..., "scheme": 1}``: the sha256 of its content (every
other key, walked in a canonical order; tensors by dtype, shape and raw bytes), so a file cut off
or changed on disk is caught when it is read, not trained on. Files without one (written by older
versions) are read as before.

``write_checksummed`` serializes in memory, writes ``<name>.tmp`` next to the target, syncs it to
disk and renames it over the target: a full disk or a failed write leaves the previous file intact
and stops with a ``CheckpointWriteError`` that says how much space the file needs and where.
"""
from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Callable

import torch

from .errors import NetworkFileError

SCHEME = 1  # the version of content_checksum's walk, stored with each checksum
SNAPSHOT = re.compile(r"kimg(\d+\.\d+)\.ckpt")  # KimgCheckpoint's kimg<thousands of images>.ckpt


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, file-size limit, ...); the previous one is intact."""


class DamagedCheckpointError(NetworkFileError):
    """A checkpoint whose content does not match the checksum written with it."""


def content_checksum(checkpoint: dict) -> str:
    """The sha256 of ``checkpoint`` but its ``checksum`` key, the same before a ``torch.save`` and
    after ``torch.load(weights_only=True)``."""
    digest = hashlib.sha256()
    _feed(digest, {key: value for key, value in checkpoint.items() if key != "checksum"})
    return digest.hexdigest()


def _feed(digest, value) -> None:
    """Add ``value`` to ``digest``: dicts by sorted key, sequences in order, tensors by dtype, shape
    and bytes, other leaves by type and repr; each part tagged and sized, so no two values collide."""
    if isinstance(value, torch.Tensor):
        data = value.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
        digest.update(f"tensor {value.dtype} {tuple(value.shape)} {data.numel()}\n".encode())
        digest.update(data.numpy())
    elif isinstance(value, dict):
        digest.update(f"dict {len(value)}\n".encode())
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"list {len(value)}\n".encode())
        for item in value:
            _feed(digest, item)
    else:
        text = repr(value)
        digest.update(f"{type(value).__name__} {len(text)} {text}\n".encode())


def verify(data, path: str | os.PathLike) -> None:
    """Nothing when ``data`` (a file's ``torch.load``) matches the checksum it carries or carries none;
    otherwise a ``DamagedCheckpointError`` naming the file."""
    stored = data.get("checksum") if isinstance(data, dict) else None
    if stored is None:
        return
    if not isinstance(stored, dict) or stored.get("scheme") != SCHEME:
        raise DamagedCheckpointError(f"{path} carries a checksum of a scheme this version of lightning-stylegan "
                                     f"does not know ({stored!r}, not scheme {SCHEME}); upgrade lightning-stylegan")
    if content_checksum(data) != stored.get("sha256"):
        raise DamagedCheckpointError(f"{path} is damaged: its content does not match the sha256 checksum written "
                                     "with it (cut off or changed on disk); use an earlier checkpoint of the run "
                                     "(a kimg*.ckpt next to it)")


def write_checksummed(checkpoint: dict, path: Path) -> None:
    """Add the checksum to ``checkpoint`` and write it to ``path`` atomically and durably (a ``.tmp``
    file, fsync, rename, fsync of the directory). On failure the ``.tmp`` is removed, ``path`` is as
    it was, and a ``CheckpointWriteError`` says why, the space needed and the space free."""
    path = Path(path)
    checkpoint["checksum"] = {"sha256": content_checksum(checkpoint), "scheme": SCHEME}
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as file:
            file.write(buffer.getbuffer())
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
        if os.name == "posix":  # the rename itself reaches the disk (Windows cannot open a directory)
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise CheckpointWriteError(_write_failure(path, error, buffer.tell())) from error


def _write_failure(path: Path, error: OSError, size: int) -> str:
    """The one line of a failed write: what failed and, when it is a matter of space, the space
    needed and free and the fix."""
    failed = f"Could not write the checkpoint {path}: {error.strerror or error}"
    if error.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return failed
    existing = next(folder for folder in (path.parent, *path.parents) if folder.exists())
    free = shutil.disk_usage(existing).free
    if error.errno == errno.EFBIG:
        fix = "the file is over this process's file-size limit (ulimit -f): raise it (ulimit -f unlimited)"
    else:
        fix = "free space there or write elsewhere"
    return f"{failed}. It needs {_mib(size)} and {path.parent} has {_mib(free)} free; {fix}"


def _mib(size: int) -> str:
    return f"{size / 2 ** 20:,.1f} MiB ({size:,} bytes)"


def snapshots(directory: Path) -> list[Path]:
    """The ``kimg<kimg>.ckpt`` snapshots in ``directory``, newest (most images seen) first."""
    found = [(float(match[1]), path) for path in Path(directory).glob("kimg*.ckpt")
             if (match := SNAPSHOT.fullmatch(path.name))]
    return [path for _kimg, path in sorted(found, reverse=True)]


def newest_verified(directory: Path, read: Callable[[Path], dict]) -> tuple[Path, dict] | None:
    """The first of ``last.ckpt`` and the snapshots (newest first) in ``directory`` that ``read``
    accepts, and what it read; a ``Skipped <path>: <reason>`` line on stderr for each one before it.
    None when there is no checkpoint at all; a ``NetworkFileError`` listing them when none is accepted."""
    last = Path(directory) / "last.ckpt"
    candidates = [last, *snapshots(directory)]
    if not any(path.exists() for path in candidates):
        return None
    reasons = []
    for path in candidates:
        try:
            return path, read(path)
        except NetworkFileError as error:
            reasons.append(f"{path}: {error}")
            print(f"Skipped {reasons[-1]}", file=sys.stderr)
    raise NetworkFileError(f"No checkpoint in {directory} can be used ({'; '.join(reasons)}). Nothing was "
                           "started: restore a checkpoint there, or start a new run with another "
                           "--trainer.default_root_dir (or --checkpoints.dirpath)")
