"""MP4 videos of frames, and NVlabs' grid of walks (stylegan3 ``gen_video.py``).

``write_mp4`` encodes H.264 (libx264, yuv420p, CRF 18: close to visually lossless) with the ffmpeg
that the ``imageio-ffmpeg`` wheel ships, an optional dependency (``pip install
"lightning-stylegan[video]"``) imported only when a video is written. Frames are streamed to the
encoder one at a time, so a long video need not fit in memory.

A grid video plays ``columns x rows`` walks side by side as NVlabs' ``gen_video.py --grid WxH``
does: the seeds are split into consecutive runs, one per tile, row by row, and each tile walks
through its own run (``grid_seeds``); frame i of the video tiles frame i of every walk
(``tile_frames``).
"""
from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from .errors import UsageError
from .images import image_grid

CRF = 18  # x264's constant rate factor: 0 lossless, 23 its default, 51 worst


class VideoError(UsageError, ValueError):
    """A video that cannot be written as asked: its frames, file name, frame rate or grid, or no encoder."""


def parse_grid(text: str) -> tuple[int, int]:
    """``'4x2'`` -> (4, 2): columns x rows (width x height in tiles, as NVlabs' ``--grid WxH``)."""
    match = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", str(text))
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise VideoError(f"{text!r} is not a grid of WxH tiles; write columns x rows, e.g. 2x2 or 4x2")
    return int(match.group(1)), int(match.group(2))


def grid_seeds(seeds: list[int], columns: int, rows: int) -> list[list[int]]:
    """The seeds of each tile of a ``columns x rows`` grid, row by row: consecutive runs of
    ``len(seeds) / (columns * rows)`` seeds (NVlabs ``gen_video.py``); one grid tile (1x1) takes them all."""
    tiles = columns * rows
    if tiles > 1 and (len(seeds) % tiles or len(seeds) < 2 * tiles):
        raise VideoError(f"--grid {columns}x{rows} plays {tiles} walks, each through at least two seeds of its own: "
                         f"give a multiple of {tiles} seeds, {2 * tiles} or more (got {len(seeds)})")
    run = len(seeds) // tiles
    return [seeds[k * run:(k + 1) * run] for k in range(tiles)]


def tile_frames(walks: list[Iterable[torch.Tensor]], columns: int) -> Iterator[torch.Tensor]:
    """Frames [C, rows * H, columns * W] of the walks played side by side: frame i tiles frame i
    [C, H, W] of every walk, row by row; the walks must have as many frames each."""
    for frames in zip(*walks, strict=True):
        yield image_grid(torch.stack(frames), columns)


def rgb_frame(frame: np.ndarray | torch.Tensor) -> np.ndarray:
    """A uint8 frame (numpy [H, W, C] or tensor [C, H, W], C = 1, 3 or 4) as contiguous RGB [H', W', 3]:
    gray repeated in the three channels, alpha dropped, an odd height or width made even by repeating
    the last row or column (yuv420p halves both for the colour)."""
    array = frame.detach().cpu().numpy().transpose(1, 2, 0) if isinstance(frame, torch.Tensor) else np.asarray(frame)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise VideoError(f"A video frame must be uint8 [H, W, C] (numpy) or [C, H, W] (tensor) with C = 1, 3 or 4; "
                         f"got {array.dtype} of shape {tuple(array.shape)} as [H, W, C]")
    array = np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array[:, :, :3]
    return np.ascontiguousarray(np.pad(array, ((0, array.shape[0] % 2), (0, array.shape[1] % 2), (0, 0)), mode="edge"))


def write_mp4(frames: Iterable[np.ndarray | torch.Tensor], path: str | os.PathLike, fps: float = 30) -> int:
    """Write the uint8 frames (see ``rgb_frame``) as an H.264 MP4 at ``fps`` frames per second,
    atomically (a temporary file, renamed once the encoder has finished); returns how many."""
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise VideoError(f"{str(path)!r}: a video is written as MP4; name the file *.mp4")
    if not fps > 0:
        raise VideoError(f"The frame rate (--fps) must be a positive number of frames per second, got {fps}")
    try:
        import imageio_ffmpeg
    except ImportError:
        raise VideoError('Writing a video needs imageio-ffmpeg: pip install "lightning-stylegan[video]" '
                         '(or pip install imageio-ffmpeg)') from None
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise VideoError(f"No frames to write to {path}")
    height, width, _ = rgb_frame(first).shape
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(b"")  # an unwritable place fails here, in one line, rather than inside ffmpeg
    # The sizes are even (rgb_frame): macro_block_size 1 keeps ffmpeg from rescaling them to a multiple of 16.
    writer = imageio_ffmpeg.write_frames(str(tmp), (width, height), fps=fps, codec="libx264", quality=None,
                                         macro_block_size=1, ffmpeg_log_level="error",
                                         output_params=["-crf", str(CRF), "-f", "mp4"])
    count = 0
    try:
        writer.send(None)
        for frame in itertools.chain([first], frames):
            frame = rgb_frame(frame)
            if frame.shape[:2] != (height, width):
                raise VideoError(f"Video frames must have one size: the first is {width}x{height}, "
                                 f"a later one {frame.shape[1]}x{frame.shape[0]}")
            try:
                writer.send(frame)
            except OSError:
                raise OSError(f"ffmpeg stopped while encoding {path} (its message is above)") from None
            count += 1
        writer.close()  # waits for ffmpeg to finish the file
        os.replace(tmp, path)
    finally:
        writer.close()
        tmp.unlink(missing_ok=True)
    return count
