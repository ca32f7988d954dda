"""Image tensors to pixels: NVlabs' quantization and image grids, saved as PNG with pillow."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images to uint8 exactly as NVlabs' generate.py: ``(x * 127.5 + 128).clamp(0, 255)``."""
    return (images.detach().float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def image_grid(images: torch.Tensor, columns: int | None = None) -> torch.Tensor:
    """[N, C, H, W] -> one [C, rows * H, columns * W] image, filled row by row (blank cells black)."""
    n, c, h, w = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    padded = images.new_zeros(rows * columns, c, h, w)
    padded[:n] = images
    return padded.reshape(rows, columns, c, h, w).permute(2, 0, 3, 1, 4).reshape(c, rows * h, columns * w)


def save_png(image: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write a uint8 [C, H, W] image (C = 1, 3 or 4) atomically (temporary file, then rename; the
    temporary file is removed if the write fails)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = image.cpu().numpy().transpose(1, 2, 0)
    array = array[:, :, 0] if array.shape[2] == 1 else array
    tmp = path.with_name(path.name + ".tmp")
    try:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed write (a full disk) leaves nothing behind
        raise
    return path
