"""Where an analysis puts its results: PNG figures and JSON in one folder, written atomically, and
optionally the same figures and scalars in a TensorBoard event file (``<outdir>/tensorboard``)."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch

from ..images import save_png


def _plain(value):
    """JSON-safe: tensors and numpy values to lists/numbers, NaN and inf to None."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike, data: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_plain(data), indent=2) + "\n")
    os.replace(tmp, path)
    return path


class Outputs:
    """``image(name, uint8 [C, H, W])`` -> ``<outdir>/<name>.png``; ``json(name, dict)`` ->
    ``<outdir>/<name>.json``; ``scalar(tag, value, step)``. With ``tensorboard=True`` images and
    scalars also go to a ``SummaryWriter`` in ``<outdir>/tensorboard``."""

    def __init__(self, outdir: str | os.PathLike, tensorboard: bool = False):
        self.outdir = Path(outdir)
        self.outdir.mkdir(parents=True, exist_ok=True)
        self.written: list[Path] = []
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(self.outdir / "tensorboard"))

    def image(self, name: str, image: torch.Tensor) -> Path:
        path = save_png(image, self.outdir / f"{name}.png")
        self.written.append(path)
        if self.writer is not None:
            self.writer.add_image(name, image, dataformats="CHW")
        return path

    def json(self, name: str, data: dict) -> Path:
        path = write_json(self.outdir / f"{name}.json", data)
        self.written.append(path)
        return path

    def scalar(self, tag: str, value: float | None, step: int = 0) -> None:
        if self.writer is not None and value is not None and math.isfinite(value):
            self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
