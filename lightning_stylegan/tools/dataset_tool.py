"""``lightning-stylegan dataset``: a folder, zip, LMDB, CIFAR-10 or MNIST as a training zip of PNGs.

    lightning-stylegan dataset --source ~/photos --dest data/photos256.zip --resolution 256 --transform center-crop
    lightning-stylegan dataset --source cifar-10-python.tar.gz --dest data/cifar10.zip
    lightning-stylegan dataset --source /usr/share/datasets/fashion-mnist --dest data/fashion-mnist.zip
    lightning-stylegan dataset --source lsun/car_lmdb --dest data/lsuncar.zip --transform center-crop-wide \\
        --resolution 512x384 --max-images 200000

The counterpart of NVlabs stylegan2-ada-pytorch's ``dataset_tool.py``, writing what it writes: an
uncompressed zip of uncompressed PNGs ``00000/img00000000.png``, ``00000/img00000001.png``, ... (1000 to
a folder, numbered without gaps) and ``dataset.json`` = ``{"labels": [["00000/img00000000.png", 6],
...]}`` or ``{"labels": null}``, plus ``"class_names"`` when they are known (NVlabs ignores extra keys).
Both ``--data.path`` of this project and NVlabs' ``train.py --data`` read it. Every image has the same
size and channel count; the size is a power of two.

What ``--source`` can be: ``lightning_stylegan.data.readers``. Labels (``--labels``):
``lightning_stylegan.data.label_sources``. ``--transform`` and ``--resize-filter``:
``lightning_stylegan.data.transforms``. Channels: ``--channels`` 1, 3 or 4 converts every image as the
training data does (``images.to_mode``: 16-bit scaled, palettes expanded, alpha dropped or added);
without it the first image decides (gray -> 1, with alpha -> 4, else 3) and an image that would need
another count stops the run naming the option. Without ``--resolution`` images keep their size,
which must then be one square power of two for all (CIFAR-10: 32; MNIST: 28 padded to 32).

Bad input: an unreadable image stops the run naming it, unless ``--skip-corrupt`` (then it is left out
and listed in the summary, with the images center-crop-wide leaves out). The output is written as
``<dest>.tmp<pid>`` and renamed to ``--dest`` only when complete; an error, Ctrl-C or SIGTERM removes
it, and an existing ``--dest`` is replaced only with ``--force``. Exit status: 0 done, 2 bad input,
1 a failure while writing (e.g. disk full), 130 interrupted.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import sys
import textwrap
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from ..data.images import CHANNEL_MODES, FILTERS, SKIP_HINT, ImageDataError, one_line, to_mode
from ..data.label_sources import LABEL_MODES, Labels, choose_labels
from ..data.readers import SOURCES_READ, open_source
from ..data.sources import LABEL_FILE
from ..data.transforms import TRANSFORMS, transform
from ..errors import UsageError

_FID_NOTE = ("The resize filter changes FID: FFHQ downsized from 1024 with box gave FID 4.3 where lanczos gave 5.3 for "
             "the same network (stylegan2-ada-pytorch issue 283); compare FIDs only between datasets made with the "
             "same filter.")
_EPILOG = ("examples:\n" + __doc__.split("\n\n")[1].rstrip() + "\n\n"
           + "\n\n".join(textwrap.fill(text, 100, break_on_hyphens=False) for text in (f"sources: {SOURCES_READ}.",
                                                                                    _FID_NOTE)))
SKIP_FIX = "Remove or replace it, or pass --skip-corrupt to leave unreadable images out (the summary lists them)."
_SHOWN_CLASSES = 20


def resolution_arg(text: str) -> tuple[int, int]:
    """``'256'`` -> (256, 256); ``'512x384'`` -> (512, 384): the output width (a power of two) and the
    height of the picture inside it (center-crop-wide)."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[x,]\s*(\d+)\s*)?", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; write R (e.g. 256) or, for center-crop-wide, "
                                         "WxH (e.g. 512x384)")
    width = int(match.group(1))
    height = int(match.group(2)) if match.group(2) else width
    if width < 4 or width & (width - 1):
        below = 1 << (max(width, 4).bit_length() - 1)
        raise argparse.ArgumentTypeError(f"{width} is not a power of two, which training needs; use "
                                         f"{below} or {2 * below}")
    if not 1 <= height <= width:
        raise argparse.ArgumentTypeError(f"{text}: the height must be from 1 to the width {width}")
    return width, height


def positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightning-stylegan dataset", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert images into a training zip of PNGs + dataset.json (as NVlabs' dataset_tool.py).",
        epilog=_EPILOG)
    parser.add_argument("--source", required=True, metavar="PATH", help="what to convert (see 'sources' below)")
    parser.add_argument("--dest", required=True, metavar="ZIP", help="the .zip to write")
    parser.add_argument("--resolution", type=resolution_arg, metavar="R|WxH",
                        help="output size R x R, a power of two (center-crop-wide: WxH, e.g. 512x384, the picture "
                             "W x H inside a W x W square); default: the images' own size")
    parser.add_argument("--transform", choices=TRANSFORMS, default="center-crop",
                        help="how a non-square image becomes square: the centered square (center-crop), the "
                             "centered W:H crop letterboxed (center-crop-wide), black borders (pad); "
                             "default center-crop")
    parser.add_argument("--resize-filter", choices=tuple(FILTERS), default="lanczos",
                        help="PIL filter of the resize; default lanczos (NVlabs' default; the StyleGAN2-ADA "
                             "paper's FFHQ 256 used box)")
    parser.add_argument("--channels", type=int, choices=tuple(CHANNEL_MODES),
                        help="1 (gray), 3 (RGB) or 4 (RGBA) for every image; default: as the first image")
    parser.add_argument("--max-images", type=positive_int, metavar="N", help="write only the first N images")
    parser.add_argument("--labels", choices=LABEL_MODES, default="auto",
                        help="source: the source's dataset.json / CIFAR-10 / MNIST labels; folders: first-level "
                             "folder names (sorted -> 0..K-1); none; auto (default): source if it has labels")
    parser.add_argument("--skip-corrupt", action="store_true",
                        help="leave unreadable images out (listed in the summary) instead of stopping")
    parser.add_argument("--force", action="store_true", help="replace --dest if it exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


@dataclass
class Result:
    """What was written and what was left out, for the summary."""

    dest: Path
    source: str
    source_count: int
    labels: Labels
    resolution: int = 0
    channels: int = 0
    written: list[list] = field(default_factory=list)             # [archive name, class] or [archive name]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source name, reason)


def check_options(args) -> None:
    """Raise ``UsageError`` for --resolution / --transform / --dest combinations that cannot work."""
    wide = args.transform == "center-crop-wide"
    if wide and (args.resolution is None or args.resolution[1] == args.resolution[0]):
        raise UsageError("--transform center-crop-wide needs --resolution WxH with H < W, the picture inside the "
                         "W x W square (e.g. --resolution 512x384, NVlabs' LSUN cars); for a square crop use "
                         "--transform center-crop.")
    if not wide and args.resolution is not None and args.resolution[1] != args.resolution[0]:
        raise UsageError(f"--resolution {args.resolution[0]}x{args.resolution[1]}: WxH is for --transform "
                         f"center-crop-wide; the output is square: write --resolution {args.resolution[0]}.")
    dest = Path(args.dest).expanduser()
    if dest.suffix.lower() != ".zip":
        raise UsageError(f"--dest {dest}: the output is a .zip (of PNGs and dataset.json), which this project "
                         f"and NVlabs' train.py read; name it e.g. {dest.with_suffix('.zip').name}.")
    if dest.is_dir():
        raise UsageError(f"--dest {dest} is a folder; give the path of a .zip file to write.")
    if dest.exists() and not args.force:
        raise UsageError(f"--dest {dest} exists; pass --force to replace it (it is replaced only once the new "
                         "zip is complete), or choose another name.")
    source = Path(args.source).expanduser()
    if dest.exists() and source.exists() and source.resolve() == dest.resolve():
        raise UsageError(f"--dest {dest} is the --source; write the converted dataset to another file.")


def natural_channels(img: Image.Image) -> int:
    """The channel count an image asks for: 4 with alpha (or a transparent palette), 1 gray, else 3."""
    bands = img.getbands()
    if "A" in bands or "a" in bands or (img.mode == "P" and "transparency" in img.info):
        return 4
    return 1 if len(bands) == 1 and img.mode != "P" else 3


class Shaper:
    """Brings every image to one channel count and one size: those of the options, or else the first
    image's (see the module docstring)."""

    def __init__(self, args):
        self.channels, self.size = args.channels, args.resolution
        self.keep_channels, self.keep_size = args.channels is None, args.resolution is None
        self.transform, self.resize_filter = args.transform, args.resize_filter
        self.first: str | None = None

    def __call__(self, img: Image.Image, name: str) -> Image.Image | None:
        """``img`` converted and resized; None when center-crop-wide leaves it out."""
        natural = natural_channels(img)
        if self.first is None:
            self.first = name
            self.channels = self.channels or natural
            if self.keep_size:
                self._check_first_size(img, name)
        if self.keep_channels and natural != self.channels:
            raise ImageDataError(
                f"Image {name} has {natural} channel(s) ({img.mode}) but the first image, {self.first}, has "
                f"{self.channels}; pass --channels {max(natural, self.channels)} (or "
                f"{min(natural, self.channels)}) to convert every image to one count.")
        img = to_mode(img, self.channels)
        if not self.keep_size:
            return transform(img, self.transform, self.size[0], self.size[1], self.resize_filter)
        if img.size != self.size:
            raise ImageDataError(f"Image {name} is {img.size[0]}x{img.size[1]} but the first image, {self.first}, is "
                                 f"{self.size[0]}x{self.size[1]}: without --resolution every image keeps its size; "
                                 f"pass --resolution {self.size[0]} (and a --transform) to resize them all.")
        return img

    def too_small(self) -> str:
        """Why center-crop-wide left an image out."""
        width, height = self.size
        return f"smaller than {width}x{height} once cropped to {width}:{height} (center-crop-wide does not enlarge)"

    def _check_first_size(self, img: Image.Image, name: str) -> None:
        width, height = img.size
        if width != height or width < 4 or width & (width - 1):
            raise ImageDataError(f"The first image, {name}, is {width}x{height}: without --resolution images keep "
                                 "their size, which must be square and a power of two; pass --resolution (e.g. "
                                 "--resolution 256) and a --transform.")
        self.size = (width, height)


def png_bytes(img: Image.Image) -> bytes:
    """An uncompressed PNG, as NVlabs' dataset_tool.py stores them (fast to decode while training)."""
    buffer = io.BytesIO()
    img.save(buffer, format="png", compress_level=0, optimize=False)
    return buffer.getvalue()


class ZipOutput:
    """A zip written as ``<dest>.tmp<pid>``, renamed to ``dest`` when the block ends without error and
    removed when it ends with one (KeyboardInterrupt and SystemExit included)."""

    def __init__(self, dest: Path):
        self.dest = dest
        self.tmp = dest.with_name(f"{dest.name}.tmp{os.getpid()}")

    def __enter__(self) -> zipfile.ZipFile:
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED)
        return self.zip

    def __exit__(self, kind, value, traceback) -> None:
        try:
            self.zip.close()
            if kind is None:
                os.replace(self.tmp, self.dest)
        finally:
            self.tmp.unlink(missing_ok=True)


def _member(name: str) -> zipfile.ZipInfo:
    """A stored zip member with a fixed date, so one source and one set of options give one zip, byte for
    byte; unzipped, it is a plain readable file (mode 644)."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o644 << 16
    return info


def convert(args, reader, labels: Labels) -> Result:
    """Write ``reader``'s images to ``args.dest`` (see the module docstring); the summary's facts."""
    result = Result(Path(args.dest).expanduser(), f"{reader.kind} {reader.root}", len(reader), labels)
    shape = Shaper(args)
    total = len(reader) if args.max_images is None else min(len(reader), args.max_images)
    with ZipOutput(result.dest) as out, tqdm(total=total, unit="img", file=sys.stderr, disable=args.no_progress,
                                             desc="dataset") as bar:
        for name, load in reader:
            if args.max_images is not None and len(result.written) >= args.max_images:
                break
            try:
                img = load()
            except ImageDataError as error:
                reason = one_line(str(error).replace(SKIP_HINT, ""))
                if not args.skip_corrupt:
                    raise ImageDataError(f"{reason} {SKIP_FIX}") from error
                result.skipped.append((name, reason))
                bar.set_postfix(skipped=len(result.skipped))
                continue
            img = shape(img, name)
            if img is None:
                result.skipped.append((name, shape.too_small()))
                bar.set_postfix(skipped=len(result.skipped))
                continue
            index = len(result.written)
            archive = f"{index // 1000:05d}/img{index:08d}.png"
            out.writestr(_member(archive), png_bytes(img))
            result.written.append([archive] if labels.table is None else [archive, labels.table[name]])
            bar.update()
        if not result.written:
            raise ImageDataError(f"No image of {result.source} could be written: all {len(result.skipped)} were left "
                                 f"out (the first: {result.skipped[0][0]}: {result.skipped[0][1]}).")
        meta = {"labels": None if labels.table is None else result.written}
        if labels.table is not None and labels.class_names is not None:
            meta["class_names"] = list(labels.class_names)
        out.writestr(_member(LABEL_FILE), json.dumps(meta))
    result.resolution, result.channels = shape.size[0], shape.channels
    return result


def summary(result: Result) -> str:
    """The lines printed when the zip is written: counts, size, labels, what was left out, how to train."""
    count, labels = len(result.written), result.labels
    lines = [f"wrote {result.dest}: {count} image{'s' if count != 1 else ''}, {result.resolution}x{result.resolution}, "
             f"{result.channels} channel(s) ({CHANNEL_MODES[result.channels]})",
             f"  source: {result.source} ({result.source_count} images)"]
    if labels.table is None:
        lines.append(f"  labels: {labels.origin}")
    else:
        counts: dict[int, int] = {}
        for entry in result.written:
            counts[entry[1]] = counts.get(entry[1], 0) + 1
        names = labels.class_names or []
        shown = [f"{c}{f' {names[c]}' if c < len(names) else ''}: {counts[c]}" for c in sorted(counts)]
        more = f", ... ({len(shown) - _SHOWN_CLASSES} more)" if len(shown) > _SHOWN_CLASSES else ""
        lines.append(f"  labels: {len(counts)} classes from {labels.origin}: {', '.join(shown[:_SHOWN_CLASSES])}{more}")
    if result.skipped:
        lines.append(f"  skipped {len(result.skipped)} image(s):")
        lines += [f"    {name}: {reason}" for name, reason in result.skipped]
    else:
        lines.append("  skipped: none")
    use_labels = " --data.use_labels true" if labels.table is not None else ""
    lines.append(f"train on it: --data.path {result.dest} --data.resolution {result.resolution} "
                 f"--data.channels {result.channels}{use_labels}")
    return "\n".join(lines)


def _terminate(signum, frame):
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C, so the temporary zip is removed


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers are set there only
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        check_options(args)
        reader = open_source(args.source)
        result = convert(args, reader, choose_labels(reader, args.labels))
    except UsageError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: {one_line(error)} (nothing was written to {args.dest})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: nothing was written to {args.dest}", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    print(summary(result))
    return 0

