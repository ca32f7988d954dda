"""``lightning-stylegan dataset`` on real sources the tests write: folders and zips of images, an LMDB
database, CIFAR-10 python batches (a Python 2 style pickle built opcode by opcode among them), MNIST
idx files gzipped and raw. Expected pixels come from PIL called directly or from explicit indices; the
written zip is read back by the project's data module and by an independent reader that follows NVlabs'
``training/dataset.py`` (``ImageFolderDataset``)."""
from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_run import cli
from lightning_stylegan.data.datamodule import ImageDataModule
from lightning_stylegan.data.dataset import ImageDataset
from lightning_stylegan.tools import dataset_tool

RESAMPLE = {"lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX, "bicubic": Image.Resampling.BICUBIC}


def noise(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    shape = (height, width) if channels == 1 else (height, width, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def save(path: Path, array: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def run(capsys, *argv) -> tuple[int, str, str]:
    """``main(argv)`` in this process: (exit status, stdout, stderr); argparse's exit included."""
    try:
        status = dataset_tool.main([str(arg) for arg in argv] + ["--no-progress"])
    except SystemExit as exit:
        status = exit.code
    out, err = capsys.readouterr()
    return status, out, err


def nvlabs_read(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """What NVlabs' ImageFolderDataset makes of a zip: the PIL-readable names sorted, each image HWC ->
    CHW, labels looked up by name in dataset.json; images must be square and of one shape."""
    Image.init()
    with zipfile.ZipFile(path) as zf:
        names = sorted(n for n in zf.namelist() if os.path.splitext(n)[1].lower() in Image.EXTENSION)
        images = []
        for name in names:
            image = np.array(Image.open(io.BytesIO(zf.read(name))))
            image = image[:, :, np.newaxis] if image.ndim == 2 else image
            images.append(image.transpose(2, 0, 1))
        raw = json.loads(zf.read("dataset.json"))["labels"]
    assert len({image.shape for image in images}) == 1 and images[0].shape[1] == images[0].shape[2]
    labels = None if raw is None else np.array([dict(raw)[name] for name in names], dtype=np.int64)
    return np.stack(images), labels


def members(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


def photo_folder(root: Path) -> Path:
    """Two class folders of odd-sized RGB photos (one nested deeper), a hidden file, a non-image."""
    save(root / "dogs" / "b.png", noise(20, 30, seed=1))
    save(root / "cats" / "a.png", noise(31, 17, seed=2))
    save(root / "cats" / "deep" / "c.png", noise(16, 16, seed=3))
    save(root / "dogs" / ".hidden.png", noise(8, 8, seed=4))
    (root / "dogs" / "notes.txt").write_text("not an image")
    return root


# --- folders, zips and the written format --------------------------------------------------------

def test_a_folder_becomes_nvlabs_zip_with_folder_labels_read_back_by_both_readers(tmp_path):
    source, dest = photo_folder(tmp_path / "photos"), tmp_path / "out" / "photos8.zip"
    done = cli("dataset", "--source", source, "--dest", dest, "--resolution", 8, "--labels", "folders", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and "3 images, 8x8, 3 channel(s)" in done.stdout
    assert "2 classes from folder names (cats, dogs): 0 cats: 2, 1 dogs: 1" in done.stdout
    assert "skipped: none" in done.stdout and "dataset:" in done.stderr  # the progress bar
    assert members(dest) == ["00000/img00000000.png", "00000/img00000001.png", "00000/img00000002.png",
                             "dataset.json"]
    with zipfile.ZipFile(dest) as zf:
        meta = json.loads(zf.read("dataset.json"))
        assert all(info.compress_type == zipfile.ZIP_STORED for info in zf.infolist())
    assert meta == {"labels": [["00000/img00000000.png", 0], ["00000/img00000001.png", 0],
                               ["00000/img00000002.png", 1]], "class_names": ["cats", "dogs"]}
    images, labels = nvlabs_read(dest)
    order = ["cats/a.png", "cats/deep/c.png", "dogs/b.png"]  # sorted relative paths
    for image, name in zip(images, order):
        photo = Image.open(source / name)
        side = min(photo.size)
        left, top = (photo.width - side) // 2, (photo.height - side) // 2
        expected = photo.crop((left, top, left + side, top + side)).resize((8, 8), Image.Resampling.LANCZOS)
        assert np.array_equal(image, np.array(expected).transpose(2, 0, 1)), name
    assert labels.tolist() == [0, 0, 1]
    module = ImageDataModule(path=str(dest), resolution=8, channels=3, batch_size=2, use_labels=True, val_images=0)
    assert module.dataset.label_dim == 2 and np.array_equal(module.dataset.labels, np.eye(2)[labels])
    ours = np.stack([np.rint((module.dataset[i][0].numpy() + 1) * 127.5) for i in range(3)]).astype(np.uint8)
    assert np.array_equal(ours, images)


def test_a_zip_keeps_its_dataset_json_labels_by_name_and_one_source_gives_one_zip(tmp_path, capsys):
    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i, name in enumerate(["x/2.png", "x/1.png", "y/3.png"]):
            zf.writestr(name, png(noise(4, 4, 1, seed=i)))
        zf.writestr("dataset.json", json.dumps({"labels": [["y/3.png", 7], ["x/1.png", 2], ["x/2.png", 5]]}))
    status, out, _ = run(capsys, "--source", archive, "--dest", tmp_path / "a.zip")
    assert status == 0 and "1 channel(s) (L)" in out and "4x4" in out
    images, labels = nvlabs_read(tmp_path / "a.zip")
    assert labels.tolist() == [2, 5, 7]  # x/1.png, x/2.png, y/3.png
    with zipfile.ZipFile(archive) as zf:
        assert np.array_equal(images[0, 0], np.array(Image.open(io.BytesIO(zf.read("x/1.png")))))
    dataset = ImageDataset(tmp_path / "a.zip", 4, 1, use_labels=True)
    assert dataset.label_dim == 8 and dataset.labels.argmax(1).tolist() == [2, 5, 7]
    assert run(capsys, "--source", archive, "--dest", tmp_path / "b.zip")[0] == 0
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert run(capsys, "--source", archive, "--dest", tmp_path / "c.zip", "--labels", "none")[0] == 0
    assert nvlabs_read(tmp_path / "c.zip")[1] is None


def test_label_sources_that_cannot_work_are_errors_naming_the_fix(tmp_path, capsys):
    root = photo_folder(tmp_path / "p")
    (root / "dataset.json").write_text(json.dumps({"labels": [["cats/a.png", 1]]}))
    status, _, err = run(capsys, "--source", root, "--dest", tmp_path / "o.zip")
    assert status == 2 and "2 of 3 images have no label" in err and "cats/deep/c.png, dogs/b.png" in err
    assert "--labels none" in err and not (tmp_path / "o.zip").exists()
    (root / "dataset.json").write_text(json.dumps({"labels": None}))
    status, out, _ = run(capsys, "--source", root, "--dest", tmp_path / "o.zip", "--resolution", 8)
    assert status == 0 and "labels: none" in out and nvlabs_read(tmp_path / "o.zip")[1] is None
    status, _, err = run(capsys, "--source", root, "--dest", tmp_path / "q.zip", "--labels", "source")
    assert status == 2 and "carries no labels" in err and "--labels folders" in err
    save(root / "loose.png", noise(8, 8))
    status, _, err = run(capsys, "--source", root, "--dest", tmp_path / "q.zip", "--labels", "folders")
    assert status == 2 and "lie directly in" in err and "loose.png" in err
    single = tmp_path / "single"
    save(single / "only" / "a.png", noise(8, 8))
    status, _, err = run(capsys, "--source", single, "--dest", tmp_path / "q.zip", "--labels", "folders")
    assert status == 2 and "one class only ('only'" in err


# --- transforms and filters ----------------------------------------------------------------------

@pytest.mark.parametrize("resize_filter", ["lanczos", "box", "bicubic"])
@pytest.mark.parametrize("transform", ["center-crop", "pad"])
def test_center_crop_and_pad_match_pil_called_directly(tmp_path, capsys, transform, resize_filter):
    path = save(tmp_path / "src" / "wide.png", noise(21, 40, seed=5))
    dest = tmp_path / "out.zip"
    assert run(capsys, "--source", path.parent, "--dest", dest, "--resolution", 16, "--transform", transform,
               "--resize-filter", resize_filter)[0] == 0
    photo = Image.open(path)
    if transform == "center-crop":  # 21 of 40 columns: columns 9..29 (the odd pixel goes right)
        square = photo.crop((9, 0, 30, 21))
    else:                           # on a 40 x 40 black canvas, rows 9..29
        square = Image.new("RGB", (40, 40))
        square.paste(photo, (0, 9))
    expected = np.array(square.resize((16, 16), RESAMPLE[resize_filter])).transpose(2, 0, 1)
    assert np.array_equal(nvlabs_read(dest)[0][0], expected)


def test_center_crop_wide_crops_to_the_aspect_and_letterboxes_by_explicit_indices(tmp_path, capsys):
    exact = noise(8, 16, seed=6)    # already 16 x 8: placed untouched on rows 4..11 of a 16 x 16 canvas
    tall = noise(30, 20, seed=7)    # 20 wide: the crop is 20 x 10, rows 10..19
    wide = noise(10, 40, seed=8)    # 10 high: the crop is 20 x 10, columns 10..29
    small = noise(6, 12, seed=9)    # 12 x 6 < 16 x 8: left out, not enlarged
    for name, array in [("a_exact", exact), ("b_tall", tall), ("c_wide", wide), ("d_small", small)]:
        save(tmp_path / "src" / f"{name}.png", array)
    dest = tmp_path / "cars.zip"
    status, out, _ = run(capsys, "--source", tmp_path / "src", "--dest", dest, "--transform", "center-crop-wide",
                         "--resolution", "16x8", "--resize-filter", "box")
    assert status == 0 and "3 images, 16x16" in out
    assert "skipped 1 image(s):" in out and "d_small.png: smaller than 16x8 once cropped to 16:8" in out
    images = nvlabs_read(dest)[0].transpose(0, 2, 3, 1)
    assert not images[:, :4].any() and not images[:, 12:].any()  # the letterbox rows are black
    assert np.array_equal(images[0, 4:12], exact)
    for image, crop in [(images[1], tall[10:20, :]), (images[2], wide[:, 10:30])]:
        expected = Image.fromarray(crop).resize((16, 8), Image.Resampling.BOX)
        assert np.array_equal(image[4:12], np.array(expected))


def test_resolution_and_transform_options_that_cannot_work(tmp_path, capsys):
    source = photo_folder(tmp_path / "p")
    for argv, words in [(["--resolution", "100"], "not a power of two, which training needs; use 64 or 128"),
                        (["--resolution", "16x8"], "WxH is for --transform center-crop-wide"),
                        (["--transform", "center-crop-wide", "--resolution", "16"], "needs --resolution WxH"),
                        (["--max-images", "0"], "not a positive integer")]:
        status, _, err = run(capsys, "--source", source, "--dest", tmp_path / "o.zip", *argv)
        assert status == 2 and words in err, err
    status, _, err = run(capsys, "--source", source, "--dest", tmp_path / "o.zip")
    assert status == 2 and "is 17x31: without --resolution" in err and "--resolution" in err
    save(tmp_path / "sizes" / "a.png", noise(8, 8))
    save(tmp_path / "sizes" / "b.png", noise(16, 16))
    status, _, err = run(capsys, "--source", tmp_path / "sizes", "--dest", tmp_path / "o.zip")
    assert status == 2 and "b.png is 16x16 but the first image, a.png, is 8x8" in err and "--resolution 8" in err
    assert not (tmp_path / "o.zip").exists() and leftovers(tmp_path) == []


def test_channels_follow_the_first_image_or_the_option(tmp_path, capsys):
    save(tmp_path / "m" / "a.png", noise(8, 8, 1))
    save(tmp_path / "m" / "b.png", noise(8, 8, 3))
    status, _, err = run(capsys, "--source", tmp_path / "m", "--dest", tmp_path / "o.zip")
    assert status == 2 and "b.png has 3 channel(s) (RGB) but the first image, a.png, has 1" in err
    assert "--channels 3" in err
    assert run(capsys, "--source", tmp_path / "m", "--dest", tmp_path / "o.zip", "--channels", "3")[0] == 0
    images = nvlabs_read(tmp_path / "o.zip")[0]
    gray = np.array(Image.open(tmp_path / "m" / "a.png"))
    assert images.shape == (2, 3, 8, 8) and all(np.array_equal(images[0, c], gray) for c in range(3))
    save(tmp_path / "rgba" / "a.png", noise(8, 8, 4))
    status, out, _ = run(capsys, "--source", tmp_path / "rgba", "--dest", tmp_path / "r.zip")
    assert status == 0 and "4 channel(s) (RGBA)" in out


# --- bad input, existing output, interruption ------------------------------------------------------

def corrupt_folder(root: Path) -> Path:
    save(root / "a.png", noise(8, 8, seed=1))
    (root / "b.png").write_bytes(png(noise(8, 8, seed=2))[:40])  # truncated
    save(root / "c.png", noise(8, 8, seed=3))
    (root / "d.jpg").write_bytes(b"not a jpeg at all")
    return root


def test_an_unreadable_image_stops_the_run_unless_skip_corrupt_lists_it(tmp_path, capsys):
    source = corrupt_folder(tmp_path / "bad")
    status, _, err = run(capsys, "--source", source, "--dest", tmp_path / "o.zip")
    assert status == 2 and str(source / "b.png") in err and "--skip-corrupt" in err and "--data." not in err
    assert not (tmp_path / "o.zip").exists() and leftovers(tmp_path) == []
    status, out, _ = run(capsys, "--source", source, "--dest", tmp_path / "o.zip", "--skip-corrupt")
    assert status == 0 and "2 images" in out and "skipped 2 image(s):" in out
    assert "    b.png: Cannot decode image" in out and "    d.jpg: Cannot decode image" in out
    assert "PIL recognizes no image format" in out
    assert np.array_equal(nvlabs_read(tmp_path / "o.zip")[0][1].transpose(1, 2, 0), noise(8, 8, seed=3))
    status, out, _ = run(capsys, "--source", source, "--dest", tmp_path / "one.zip", "--skip-corrupt",
                         "--max-images", 1)
    assert status == 0 and "1 image," in out and len(members(tmp_path / "one.zip")) == 2
    for name in ("a.png", "c.png"):
        (source / name).unlink()
    status, _, err = run(capsys, "--source", source, "--dest", tmp_path / "none.zip", "--skip-corrupt")
    assert status == 2 and "No image of folder" in err and "all 2 were left out" in err
    assert not (tmp_path / "none.zip").exists() and leftovers(tmp_path) == []


def test_an_existing_output_is_replaced_only_with_force_and_the_output_must_be_a_zip(tmp_path, capsys):
    source = tmp_path / "s"
    save(source / "a.png", noise(8, 8))
    dest = tmp_path / "out.zip"
    dest.write_bytes(b"precious")
    status, _, err = run(capsys, "--source", source, "--dest", dest)
    assert status == 2 and "exists; pass --force" in err and dest.read_bytes() == b"precious"
    assert run(capsys, "--source", source, "--dest", dest, "--force")[0] == 0
    assert members(dest)[-1] == "dataset.json" and leftovers(tmp_path) == []
    status, _, err = run(capsys, "--source", source, "--dest", tmp_path / "out")
    assert status == 2 and "the output is a .zip" in err and "out.zip" in err
    (tmp_path / "dir.zip").mkdir()
    assert "is a folder" in run(capsys, "--source", source, "--dest", tmp_path / "dir.zip")[2]
    status, _, err = run(capsys, "--source", dest, "--dest", dest, "--force")
    assert status == 2 and "is the --source" in err
    status, _, err = run(capsys, "--source", tmp_path / "nowhere", "--dest", tmp_path / "x.zip")
    assert status == 2 and "does not exist" in err and "LMDB" in err
    (tmp_path / "notes.txt").write_text("text")
    assert "not a kind of source read here" in run(capsys, "--source", tmp_path / "notes.txt",
                                                   "--dest", tmp_path / "x.zip")[2]


def test_ctrl_c_leaves_neither_output_nor_temporary_file(tmp_path, capsys, monkeypatch):
    source = tmp_path / "s"
    for i in range(4):
        save(source / f"{i}.png", noise(8, 8, seed=i))
    calls = []

    def interrupted(img):
        calls.append(img)
        if len(calls) == 3:
            assert leftovers(tmp_path) == ["out.zip.tmp%d" % os.getpid()]  # written under the temporary name
            raise KeyboardInterrupt
        return b"png"

    monkeypatch.setattr(dataset_tool, "png_bytes", interrupted)
    status, _, err = run(capsys, "--source", source, "--dest", tmp_path / "out.zip")
    assert status == 130 and "interrupted" in err
    assert not (tmp_path / "out.zip").exists() and leftovers(tmp_path) == []


SIGTERM_AT_SECOND_IMAGE = """
import os, signal, sys
from lightning_stylegan.tools import dataset_tool
written = dataset_tool.png_bytes
def terminated(img, count=[]):
    count.append(1)
    if len(count) == 2:
        os.kill(os.getpid(), signal.SIGTERM)
    return written(img)
dataset_tool.png_bytes = terminated
sys.exit(dataset_tool.main(sys.argv[1:]))
"""


def test_sigterm_removes_the_temporary_file(tmp_path):
    source = tmp_path / "s"
    for i in range(3):
        save(source / f"{i}.png", noise(8, 8, seed=i))
    done = subprocess.run([sys.executable, "-c", SIGTERM_AT_SECOND_IMAGE, "--source", str(source),
                           "--dest", str(tmp_path / "out.zip"), "--no-progress"], capture_output=True, timeout=60)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert not (tmp_path / "out.zip").exists() and leftovers(tmp_path) == []


# --- LMDB ----------------------------------------------------------------------------------------

def test_an_lmdb_database_is_read_in_key_order_and_a_bad_value_needs_skip_corrupt(tmp_path, capsys):
    lmdb = pytest.importorskip("lmdb")
    folder = tmp_path / "cat_lmdb"
    values = {b"0002": png(noise(12, 16, seed=2)), b"0001": png(noise(16, 12, seed=1)), b"0003": b"garbage"}
    with lmdb.open(str(folder), map_size=1 << 20) as env, env.begin(write=True) as txn:
        for key, value in values.items():
            txn.put(key, value)
    status, _, err = run(capsys, "--source", folder, "--dest", tmp_path / "o.zip", "--resolution", 8)
    assert status == 2 and "0003 in LMDB database" in err and "--skip-corrupt" in err
    status, out, _ = run(capsys, "--source", folder, "--dest", tmp_path / "o.zip", "--resolution", 8,
                         "--skip-corrupt")
    assert status == 0 and "LMDB database" in out and "(3 images)" in out and "0003: Cannot decode" in out
    images, labels = nvlabs_read(tmp_path / "o.zip")
    assert labels is None
    for image, key in zip(images, [b"0001", b"0002"]):
        photo = Image.open(io.BytesIO(values[key]))
        side = min(photo.size)
        left, top = (photo.width - side) // 2, (photo.height - side) // 2
        expected = photo.crop((left, top, left + side, top + side)).resize((8, 8), Image.Resampling.LANCZOS)
        assert np.array_equal(image.transpose(1, 2, 0), np.array(expected))


def test_without_the_lmdb_package_the_error_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "data.mdb").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "lmdb", None)  # import lmdb raises ImportError
    status, _, err = run(capsys, "--source", tmp_path / "db", "--dest", tmp_path / "o.zip")
    assert status == 2 and "pip install lmdb" in err


# --- CIFAR-10 ------------------------------------------------------------------------------------

def py2_batch_pickle(data: np.ndarray, labels: list[int]) -> bytes:
    """A CIFAR-10 batch pickled the way Python 2's cPickle wrote the real files (protocol 2, byte
    strings as SHORT_BINSTRING/BINSTRING, numpy.core names), built opcode by opcode."""
    def string(text: bytes) -> bytes:
        return b"U" + bytes([len(text)]) + text if len(text) < 256 else b"T" + len(text).to_bytes(4, "little") + text

    def integer(value: int) -> bytes:
        return b"K" + bytes([value]) if 0 <= value < 256 else b"M" + value.to_bytes(2, "little")

    minus_one = b"J" + (-1).to_bytes(4, "little", signed=True)
    dtype = (b"cnumpy\ndtype\n" + string(b"u1") + integer(0) + integer(1) + b"\x87R"
             + b"(" + integer(3) + string(b"|") + b"NNN" + minus_one + minus_one + integer(0) + b"tb")
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + integer(0) + b"\x85" + string(b"b")
             + b"\x87R" + b"(" + integer(1) + integer(data.shape[0]) + integer(data.shape[1]) + b"\x86" + dtype
             + b"\x89" + string(data.tobytes()) + b"tb")
    label_list = b"](" + b"".join(integer(c) for c in labels) + b"e"
    return (b"\x80\x02}(" + string(b"batch_label") + string(b"training batch 1 of 5") + string(b"data") + array
            + string(b"labels") + label_list + b"u.")


def cifar_batches(count: int = 2) -> dict[str, bytes]:
    """Five tiny training batches (the first in Python 2's form, the others as Python 3 pickles them)
    and batches.meta; images[i] of batch b is noise seeded 10 * b + i."""
    files = {}
    for b in range(1, 6):
        images = np.stack([noise(32, 32, seed=10 * b + i) for i in range(count)])
        data = images.transpose(0, 3, 1, 2).reshape(count, 3072)  # 1024 red, 1024 green, 1024 blue
        labels = [(b + i) % 10 for i in range(count)]
        files[f"data_batch_{b}"] = (py2_batch_pickle(data, labels) if b == 1 else
                                    pickle.dumps({"data": data, "labels": labels}, protocol=2 if b < 4 else 5))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    files["batches.meta"] = pickle.dumps({"label_names": names, "num_vis": 3072}, protocol=2)
    return files


def test_the_python_2_style_fixture_is_what_pickle_itself_reads():
    data = np.arange(2 * 3072).astype(np.uint8).reshape(2, 3072)
    batch = pickle.loads(py2_batch_pickle(data, [3, 300]), encoding="latin1")
    assert np.array_equal(batch["data"], data) and batch["labels"] == [3, 300]


@pytest.mark.parametrize("form", ["tarball", "folder"])
def test_cifar10_batches_give_the_50k_layout_with_labels_and_class_names(tmp_path, capsys, form):
    files = cifar_batches()
    if form == "tarball":
        source = tmp_path / "cifar-10-python.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    else:
        source = tmp_path / "cifar-10-batches-py"
        source.mkdir()
        for name, data in files.items():
            (source / name).write_bytes(data)
    status, out, _ = run(capsys, "--source", source, "--dest", tmp_path / "cifar.zip")
    assert status == 0 and "10 images, 32x32, 3 channel(s)" in out and "1 automobile: 1, 2 bird: 2" in out
    images, labels = nvlabs_read(tmp_path / "cifar.zip")
    expected = [noise(32, 32, seed=10 * b + i).transpose(2, 0, 1) for b in range(1, 6) for i in range(2)]
    assert np.array_equal(images, np.stack(expected))
    assert labels.tolist() == [(b + i) % 10 for b in range(1, 6) for i in range(2)]
    with zipfile.ZipFile(tmp_path / "cifar.zip") as zf:
        assert json.loads(zf.read("dataset.json"))["class_names"][9] == "truck"


def test_one_cifar_batch_file_is_read_alone(tmp_path, capsys):
    (tmp_path / "test_batch").write_bytes(cifar_batches(count=3)["data_batch_2"])
    status, out, _ = run(capsys, "--source", tmp_path / "test_batch", "--dest", tmp_path / "t.zip")
    assert status == 0 and "3 images" in out and "test_batch" in out
    assert nvlabs_read(tmp_path / "t.zip")[1].tolist() == [2, 3, 4]


class _RunsACommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_batch_pickle_naming_any_other_global_is_refused_before_it_runs(tmp_path, capsys):
    marker = tmp_path / "ran"
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, data in cifar_batches().items():
        (folder / name).write_bytes(data)
    evil = pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [0], "payload": _RunsACommand(marker)},
                        protocol=2)
    (folder / "data_batch_3").write_bytes(evil)
    status, _, err = run(capsys, "--source", folder, "--dest", tmp_path / "o.zip")
    assert status == 2 and "data_batch_3" in err and ".system, which a CIFAR-10 batch" in err and "refusing" in err
    assert not marker.exists() and not (tmp_path / "o.zip").exists()
    pickle.loads(evil)  # what a plain unpickler does with the same file
    assert marker.exists()


# --- MNIST idx files -----------------------------------------------------------------------------

def idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()


def test_mnist_idx_files_gzipped_or_raw_are_padded_to_32_with_their_labels(tmp_path, capsys):
    digits = np.stack([noise(28, 28, 1, seed=i) for i in range(5)])
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    gz = tmp_path / "gz"
    gz.mkdir()
    (gz / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(digits)))
    (gz / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    (gz / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(digits[:1])))  # not the training set
    raw = tmp_path / "raw" / "t10k-images-idx3-ubyte"
    raw.parent.mkdir()
    raw.write_bytes(idx_bytes(digits[:2]))  # no labels file beside it
    status, out, _ = run(capsys, "--source", gz, "--dest", tmp_path / "a.zip")
    assert status == 0 and "5 images, 32x32, 1 channel(s) (L)" in out and "train-images-idx3-ubyte.gz" in out
    images, got = nvlabs_read(tmp_path / "a.zip")
    assert got.tolist() == labels.tolist()
    assert np.array_equal(images[:, 0, 2:30, 2:30], digits)   # 2 zero pixels on every side
    images[:, :, 2:30, 2:30] = 0
    assert not images.any()
    status, out, _ = run(capsys, "--source", raw, "--dest", tmp_path / "b.zip")
    assert status == 0 and "2 images" in out and "labels: none" in out
    assert np.array_equal(nvlabs_read(tmp_path / "b.zip")[0][:, 0, 2:30, 2:30], digits[:2])
    status, _, err = run(capsys, "--source", raw, "--dest", tmp_path / "c.zip", "--labels", "folders")
    assert status == 2 and "--labels folders needs a folder or zip of images" in err


FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not (FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(), reason="no Fashion-MNIST here")
def test_the_installed_fashion_mnist_folder_converts(tmp_path, capsys):
    status, out, _ = run(capsys, "--source", FASHION_MNIST, "--dest", tmp_path / "fm.zip", "--max-images", 20)
    assert status == 0 and "20 images, 32x32, 1 channel(s)" in out and "(60000 images)" in out
    with gzip.open(FASHION_MNIST / "train-images-idx3-ubyte.gz") as file:
        first = np.frombuffer(file.read(16 + 20 * 784), np.uint8, offset=16).reshape(20, 28, 28)
    with gzip.open(FASHION_MNIST / "train-labels-idx1-ubyte.gz") as file:
        classes = np.frombuffer(file.read(8 + 20), np.uint8, offset=8)
    images, labels = nvlabs_read(tmp_path / "fm.zip")
    assert np.array_equal(images[:, 0, 2:30, 2:30], first) and labels.tolist() == classes.tolist()
