"""The data package on real files: folders and zips written with PIL and zipfile in ``tmp_path``."""
from __future__ import annotations

import gzip
import io
import itertools
import json
import pickle
import zipfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image, features

from lightning_stylegan.data import build_fashion_mnist
from lightning_stylegan.data.datamodule import ImageDataModule
from lightning_stylegan.data.dataset import ImageDataset
from lightning_stylegan.data.embedded import EMBEDDED_NAME, load_embedded
from lightning_stylegan.data.images import EXTENSIONS, ImageDataError, convert_image, decode_image
from lightning_stylegan.data.sampler import InfiniteSampler


def save(path: Path, img: Image.Image | np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (img if isinstance(img, Image.Image) else Image.fromarray(img)).save(path, **kwargs)
    return path


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def gray(value: int, size=(4, 4)) -> np.ndarray:
    return np.full(size[::-1], value, dtype=np.uint8)


def uint8(img: torch.Tensor) -> np.ndarray:
    """The dataset's [-1, 1] floats back to the exact uint8 values they came from."""
    return np.rint((img.numpy() + 1) * 127.5).astype(np.uint8)


def make_folder(root: Path, count: int = 6) -> Path:
    for i in range(count):
        save(root / f"sub{i % 2}" / f"img{i}.png", gray(10 * i))
    return root


# --- sources ---------------------------------------------------------------------------------------

def test_a_folder_is_searched_recursively_for_every_image_extension_in_path_order(tmp_path):
    save(tmp_path / "b.png", gray(1))
    save(tmp_path / "a" / "c.JPG", gray(2), quality=100)
    save(tmp_path / "a" / "deep" / "d.jpeg", gray(3), quality=100)
    save(tmp_path / "e.BMP", gray(4))
    save(tmp_path / "f.gif", gray(5))                 # not an accepted extension
    save(tmp_path / ".hidden.png", gray(6))           # dot-files and dot-folders are ignored
    save(tmp_path / ".cache" / "g.png", gray(7))
    (tmp_path / "notes.txt").write_text("not an image")
    expected = ["a/c.JPG", "a/deep/d.jpeg", "b.png", "e.BMP"]
    if features.check("webp"):
        save(tmp_path / "z.webp", gray(8), lossless=True)
        expected.append("z.webp")
    ds = ImageDataset(str(tmp_path), resolution=4, channels=1)
    assert ds.names == expected and len(ds) == len(expected) and ds.num_images == len(expected)
    assert ds.image_shape == (1, 4, 4)
    values = [int(uint8(ds[i][0])[0, 0, 0]) for i in range(len(ds))]
    assert values == [2, 3, 1, 4, 8][:len(expected)]


def test_a_zip_is_read_member_by_member_like_the_folder_it_came_from(tmp_path):
    folder = make_folder(tmp_path / "folder")
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("sub0/", "")                                  # a folder entry
        zf.writestr("__MACOSX/sub0/._img0.png", b"resource fork")  # macOS junk, not an image
        for path in sorted(folder.rglob("*.png")):
            zf.write(path, path.relative_to(folder).as_posix())
    from_zip, from_folder = ImageDataset(archive, 4, 1), ImageDataset(folder, 4, 1)
    assert from_zip.names == from_folder.names == [f"sub{i % 2}/img{i}.png" for i in (0, 2, 4, 1, 3, 5)]
    for i in range(len(from_zip)):
        assert torch.equal(from_zip[i][0], from_folder[i][0])


def test_a_zip_backed_dataset_pickles_after_reading_and_reads_again(tmp_path):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(3):
            zf.writestr(f"{i}.png", png_bytes(Image.fromarray(gray(40 * i))))
    ds = ImageDataset(archive, 4, 3, xflip=True)
    first = ds[1][0]
    copy = pickle.loads(pickle.dumps(ds))
    assert torch.equal(copy[1][0], first) and len(copy) == 6


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "No images"),
    (lambda p: (p / "notes.txt").write_text("x") and p / "notes.txt", "neither a folder nor a .zip"),
    (lambda p: (p / "bad.zip").write_bytes(b"not a zip") and p / "bad.zip", "not a valid zip"),
])
def test_a_path_without_images_is_a_clear_error_naming_it(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ImageDataError, match=message) as info:
        ImageDataset(path, 4, 1)
    assert str(path) in str(info.value)


def test_an_empty_zip_and_bad_arguments_are_clear_errors(tmp_path):
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as zf:
        zf.writestr("readme.txt", "no images here")
    with pytest.raises(ImageDataError, match="No images.*empty.zip"):
        ImageDataset(tmp_path / "empty.zip", 4, 1)
    folder = make_folder(tmp_path / "f")
    with pytest.raises(ValueError, match=r"channels must be one of \(1, 3, 4\)"):
        ImageDataset(folder, 4, 2)
    with pytest.raises(ValueError, match="center-crop, pad"):
        ImageDataset(folder, 4, 1, resize="stretch")
    with pytest.raises(ValueError, match="max_images"):
        ImageDataset(folder, 4, 1, max_images=0)


def test_max_images_keeps_the_first_images_in_path_order(tmp_path):
    ds = ImageDataset(make_folder(tmp_path), 4, 1, max_images=2)
    assert ds.names == ["sub0/img0.png", "sub0/img2.png"] and len(ds) == 2


# --- labels ----------------------------------------------------------------------------------------

def write_labels(root: Path, labels) -> None:
    (root / "dataset.json").write_text(json.dumps({"labels": labels}))


def test_dataset_json_gives_one_hot_labels_sized_by_the_largest_class(tmp_path):
    root = make_folder(tmp_path, count=3)
    write_labels(root, [["sub0/img0.png", 0], ["sub1/img1.png", 4], ["sub0/img2.png", 2]])
    ds = ImageDataset(root, 4, 1, use_labels=True)
    assert ds.label_dim == 5
    labels = [ds[i][1] for i in range(3)]  # names sorted: sub0/img0, sub0/img2, sub1/img1
    assert all(label.dtype == torch.float32 and label.shape == (5,) for label in labels)
    assert [int(label.argmax()) for label in labels] == [0, 2, 4] and all(label.sum() == 1 for label in labels)
    plain = ImageDataset(root, 4, 1)
    assert plain.label_dim == 0 and plain[0][1].shape == (0,) and plain[0][1].dtype == torch.float32


def test_dataset_json_in_a_zip(tmp_path):
    archive = tmp_path / "labelled.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a/x.png", png_bytes(Image.fromarray(gray(5))))
        zf.writestr("dataset.json", json.dumps({"labels": [["a/x.png", 1]]}))
    ds = ImageDataset(archive, 4, 1, use_labels=True)
    assert ds.label_dim == 2 and ds[0][1].tolist() == [0.0, 1.0]


def test_label_problems_name_the_file_and_the_fix(tmp_path):
    root = make_folder(tmp_path, count=2)
    with pytest.raises(ImageDataError, match="dataset.json.*does not exist.*use_labels=False"):
        ImageDataset(root, 4, 1, use_labels=True)
    write_labels(root, [["sub0/img0.png", 0]])
    with pytest.raises(ImageDataError, match=r"1 image\(s\) have no label") as info:
        ImageDataset(root, 4, 1, use_labels=True)
    assert str(root / "sub1/img1.png") in str(info.value)
    write_labels(root, None)
    with pytest.raises(ImageDataError, match='"labels": null'):
        ImageDataset(root, 4, 1, use_labels=True)
    assert ImageDataset(root, 4, 1).label_dim == 0  # without use_labels, dataset.json is not read
    write_labels(root, [["sub0/img0.png", "shoe"]])
    with pytest.raises(ImageDataError, match="non-negative integer"):
        ImageDataset(root, 4, 1, use_labels=True)


# --- resize policy ---------------------------------------------------------------------------------

def halves(width: int = 8, height: int = 4) -> np.ndarray:
    """A wide image whose left half is 200 and right half 50."""
    img = np.full((height, width), 50, dtype=np.uint8)
    img[:, : width // 2] = 200
    return img


def test_center_crop_keeps_the_middle_square(tmp_path):
    out = uint8(ImageDataset(save(tmp_path / "x" / "wide.png", halves()).parent, 4, 1)[0][0])[0]
    assert (out[:, :2] == 200).all() and (out[:, 2:] == 50).all()  # columns 2..5 of the 8


def test_pad_adds_centered_black_borders(tmp_path):
    out = uint8(ImageDataset(save(tmp_path / "x" / "wide.png", halves()).parent, 8, 1, resize="pad")[0][0])[0]
    assert (out[:2] == 0).all() and (out[6:] == 0).all()      # two black rows above and below
    assert (out[2:6, :4] == 200).all() and (out[2:6, 4:] == 50).all()


def test_an_odd_margin_goes_right_and_the_square_is_resized_with_lanczos():
    columns = np.tile(np.arange(1, 6, dtype=np.uint8) * 40, (2, 1))   # 5 wide x 2 high: 40 80 120 160 200
    crop = convert_image(Image.fromarray(columns), 2, 1, "center-crop")[0]
    assert crop.tolist() == [[80, 120], [80, 120]]                     # columns 1 and 2
    tall = convert_image(Image.fromarray(columns.T.copy()), 5, 1, "pad")[0]  # 2 wide x 5 high
    assert (tall[:, [0, 3, 4]] == 0).all() and tall[:, 1].tolist() == [40, 80, 120, 160, 200]
    big = convert_image(Image.fromarray(halves(64, 32)), 16, 1, "pad")[0]
    assert (big[[0, -1]] == 0).all() and (big[[1, 2, -3, -2]] <= 2).all()  # borders, a little ringing
    assert abs(int(big[8, 2]) - 200) <= 2 and abs(int(big[8, 13]) - 50) <= 2
    small = convert_image(Image.fromarray(halves(64, 32)), 16, 1, "center-crop")[0]
    assert (small[:, 0] == 200).all() and (small[:, -1] == 50).all()


def test_an_image_already_at_the_resolution_is_untouched(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    for resize in ("center-crop", "pad"):
        out = ImageDataset(save(tmp_path / "x" / "rgb.png", pixels).parent, 8, 3, resize=resize)[0][0]
        assert (uint8(out) == pixels.transpose(2, 0, 1)).all()


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("L", (8, 4), 255)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90: the stored 8x4 image is shown 4 wide, 8 high
    save(tmp_path / "x" / "photo.jpg", img, exif=exif, quality=100)
    out = uint8(ImageDataset(tmp_path / "x", 8, 1, resize="pad")[0][0])[0]
    assert (out[:, :2] < 10).all() and (out[:, 6:] < 10).all() and (out[:, 2:6] > 245).all()


# --- channels --------------------------------------------------------------------------------------

def luma(rgb) -> int:
    return Image.new("RGB", (1, 1), tuple(rgb)).convert("L").getpixel((0, 0))


def palette_image(transparent: bool) -> Image.Image:
    img = Image.new("P", (4, 4), 0)
    img.putpalette([10, 200, 60, 90, 90, 90] + [0] * 762)
    img.putpixel((0, 0), 1)
    if transparent:
        img.info["transparency"] = 1
    return img


# source image -> (pixel (0,0) as RGBA, pixel (3,3) as RGBA); gray expected values are luma(RGB)
CONVERSIONS = {
    "L": (Image.fromarray(gray(100)), (100, 100, 100, 255), (100, 100, 100, 255)),
    "1": (Image.fromarray(np.eye(4, dtype=bool)), (255, 255, 255, 255), (255, 255, 255, 255)),
    "I;16": (Image.fromarray(np.diag([65535, 25700, 0, 257]).astype(np.uint16)),
             (255, 255, 255, 255), (1, 1, 1, 255)),
    "RGB": (Image.new("RGB", (4, 4), (10, 200, 60)), (10, 200, 60, 255), (10, 200, 60, 255)),
    "RGBA": (Image.new("RGBA", (4, 4), (10, 200, 60, 128)), (10, 200, 60, 128), (10, 200, 60, 128)),
    "LA": (Image.new("LA", (4, 4), (100, 50)), (100, 100, 100, 50), (100, 100, 100, 50)),
    "P": (palette_image(False), (90, 90, 90, 255), (10, 200, 60, 255)),
    "P+transparency": (palette_image(True), (90, 90, 90, 0), (10, 200, 60, 255)),
}


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("mode", list(CONVERSIONS))
def test_every_mode_converts_to_every_channel_count(tmp_path, mode, channels):
    img, first, last = CONVERSIONS[mode]
    path = save(tmp_path / "x" / "img.png", img)
    out = uint8(ImageDataset(path.parent, 4, channels)[0][0])
    assert out.shape == (channels, 4, 4)
    for (y, x), rgba in (((0, 0), first), ((3, 3), last)):
        expected = [luma(rgba[:3])] if channels == 1 else list(rgba[:channels])
        assert out[:, y, x].tolist() == expected, (mode, channels, (y, x))


def test_16_bit_gray_is_scaled_not_clipped(tmp_path):
    img = Image.fromarray(np.array([[0, 257 * 37, 32896, 65535]], dtype=np.uint16).repeat(4, 0))
    assert Image.open(save(tmp_path / "x" / "deep.png", img)).mode.startswith("I")
    assert uint8(ImageDataset(tmp_path / "x", 4, 1)[0][0])[0, 0].tolist() == [0, 37, 128, 255]


def test_cmyk_and_ycbcr_go_through_rgb():
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 0, 0))
    assert convert_image(cmyk, 4, 3)[:, 0, 0].tolist() == list(cmyk.convert("RGB").getpixel((0, 0)))
    assert convert_image(cmyk, 4, 4)[3, 0, 0] == 255
    ycbcr = Image.new("RGB", (4, 4), (10, 200, 60)).convert("YCbCr")
    assert convert_image(ycbcr, 4, 1)[0, 0, 0] == luma(ycbcr.convert("RGB").getpixel((0, 0)))


# --- corrupt files ---------------------------------------------------------------------------------

def write_bad_files(root: Path) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    good = png_bytes(Image.fromarray(noise))
    (root / "b_truncated.png").write_bytes(good[: len(good) // 2])
    (root / "c_random.jpg").write_bytes(np.random.default_rng(2).bytes(500))


def test_a_corrupt_file_is_an_error_naming_it_and_the_fix(tmp_path):
    root = make_folder(tmp_path / "d", count=2)
    write_bad_files(root)
    ds = ImageDataset(root, 4, 1)
    assert ds.names[:2] == ["b_truncated.png", "c_random.jpg"]
    for i, name in enumerate(ds.names[:2]):
        with pytest.raises(ImageDataError, match="skip_corrupt") as info:
            ds[i]
        assert str(root / name) in str(info.value) and "Remove" in str(info.value)
    with pytest.raises(ImageDataError, match="garbage.jpg"):
        decode_image(b"\xff\xd8\xff" + b"\0" * 40, "garbage.jpg", 4, 1)


def test_a_corrupt_zip_member_error_names_the_member_and_the_zip(tmp_path):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("inner/broken.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    with pytest.raises(ImageDataError, match="skip_corrupt") as info:
        ImageDataset(archive, 4, 1)[0]
    assert "inner/broken.png" in str(info.value) and str(archive) in str(info.value)


def test_skip_corrupt_drops_counts_and_reports_bad_files(tmp_path):
    root = make_folder(tmp_path / "d", count=3)
    write_bad_files(root)
    with pytest.warns(UserWarning, match=r"Skipped 2 unreadable.*b_truncated.png, c_random.jpg"):
        ds = ImageDataset(root, 4, 1, skip_corrupt=True)
    assert ds.num_skipped == 2 and ds.skipped == ["b_truncated.png", "c_random.jpg"]
    assert len(ds) == 3 and all(ds[i][0].shape == (1, 4, 4) for i in range(3))
    with pytest.warns(UserWarning, match="Skipped 2"):
        assert ImageDataset(root, 4, 1, skip_corrupt=True, max_images=2).names == ["sub0/img0.png",
                                                                                  "sub0/img2.png"]
    for name in ds.names:
        (root / name).unlink()
    with pytest.warns(UserWarning), pytest.raises(ImageDataError, match="None of the 2 images"):
        ImageDataset(root, 4, 1, skip_corrupt=True)


# --- items -----------------------------------------------------------------------------------------

def test_items_are_float32_in_minus_one_to_one(tmp_path):
    pixels = np.zeros((4, 4), dtype=np.uint8)
    pixels[:, 2:] = 255
    img, label = ImageDataset(save(tmp_path / "x" / "bw.png", pixels).parent, 4, 1)[0]
    assert img.dtype == torch.float32 and img.shape == (1, 4, 4)
    assert img.min() == -1 and img.max() == 1 and label.shape == (0,)


def test_xflip_doubles_the_length_with_mirrored_copies(tmp_path):
    root = make_folder(tmp_path / "d", count=2)
    save(root / "wide.png", halves())
    write_labels(root, [[n, i] for i, n in enumerate(["sub0/img0.png", "sub1/img1.png", "wide.png"])])
    ds = ImageDataset(root, 4, 1, xflip=True, use_labels=True)
    assert len(ds) == 6 and ds.num_images == 3
    for i in range(3):
        img, label = ds[i]
        flipped, flipped_label = ds[i + 3]
        assert torch.equal(flipped, img.flip(-1)) and torch.equal(flipped_label, label)
    assert uint8(ds[5][0])[0, 0].tolist() == [50, 50, 200, 200]
    with pytest.raises(IndexError):
        ds[6]


# --- embedded Fashion-MNIST ------------------------------------------------------------------------

def test_the_embedded_fashion_mnist_is_the_default():
    ds = ImageDataset(None, 32, 1, use_labels=True)
    assert len(ds) == 6000 and ds.image_shape == (1, 32, 32) and ds.label_dim == 10
    img, label = ds[0]
    assert img.shape == (1, 32, 32) and -1 <= img.min() < img.max() <= 1 and label.shape == (10,)
    images, labels = load_embedded()
    assert images.shape == (6000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [600] * 10 and int(label.argmax()) == labels[0] == 9
    raw = ImageDataset(EMBEDDED_NAME, 28, 1)
    assert raw.label_dim == 0 and (uint8(raw[17][0])[0] == images[17]).all()
    rgb = ImageDataset(EMBEDDED_NAME, 32, 3)[5][0]
    assert rgb.shape == (3, 32, 32) and torch.equal(rgb[0], rgb[1]) and torch.equal(rgb[1], rgb[2])
    assert torch.equal(rgb[:1], ImageDataset(None, 32, 1)[5][0])


def test_the_embedded_file_can_be_rebuilt_from_idx_files(tmp_path):
    labels = np.arange(30, dtype=np.uint8) % 10
    images = np.arange(30 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(30, 28, 28)
    header = lambda array: bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header(images) + images.tobytes()))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(header(labels) + labels.tobytes())  # not gzipped
    out = build_fashion_mnist.main([str(tmp_path), "--out", str(tmp_path / "out.npz")])
    with np.load(out) as npz:
        assert np.array_equal(npz["labels"], labels) and np.array_equal(npz["images"], images)
    picked, picked_labels = build_fashion_mnist.select(images, labels, per_class=2)
    assert picked_labels.tolist() == list(range(10)) * 2 and np.array_equal(picked, images[:20])


# --- DataModule ------------------------------------------------------------------------------------

def test_the_datamodule_knows_its_shape_and_labels_at_once_and_batches(tmp_path):
    root = make_folder(tmp_path / "d", count=10)
    write_labels(root, [[f"sub{i % 2}/img{i}.png", i % 3] for i in range(10)])
    dm = ImageDataModule(str(root), resolution=8, channels=3, batch_size=4, use_labels=True, val_images=5)
    assert dm.label_dim == 3 and dm.num_images == 10 and dm.image_shape == (3, 8, 8)
    train = list(itertools.islice(dm.train_dataloader(), 5))  # an endless stream: 20 images = 2 passes
    assert all(x.shape == (4, 3, 8, 8) and c.shape == (4, 3) for x, c in train)
    seen = Counter(tuple(x.flatten().tolist()) for batch, _ in train for x in batch)
    assert sorted(seen.values()) == [2] * 10
    val = list(dm.val_dataloader())
    assert [len(x) for x, _ in val] == [4, 1]
    assert torch.equal(torch.cat([x for x, _ in val]), torch.stack([dm.dataset[i][0] for i in range(5)]))
    assert ImageDataModule(str(root), batch_size=4, val_images=0).val_dataloader() == []


def test_the_datamodule_defaults_to_fashion_mnist_and_rejects_too_small_datasets(tmp_path):
    dm = ImageDataModule()
    assert dm.label_dim == 0 and dm.num_images == 6000 and dm.image_shape == (1, 32, 32)
    x, c = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 1, 32, 32) and c.shape == (32, 0)
    small = ImageDataModule(str(make_folder(tmp_path / "d", count=3)), batch_size=4, xflip=True)
    batches = list(itertools.islice(small.train_dataloader(), 3))  # 6 items with the mirrored copies
    assert [len(x) for x, _ in batches] == [4, 4, 4]
    with pytest.raises(ValueError, match="fewer than batch_size=8.*--data.batch_size"):
        ImageDataModule(str(tmp_path / "d"), batch_size=8).train_dataloader()


def test_worker_processes_read_a_zip(tmp_path):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(8):
            zf.writestr(f"{i}.png", png_bytes(Image.fromarray(gray(20 * i))))
    dm = ImageDataModule(str(archive), resolution=8, batch_size=4, num_workers=2)
    dm.dataset[0]  # the zip is now open in this process; workers must open their own
    batches = list(dm.val_dataloader())
    assert [uint8(x)[:, 0, 0, 0].tolist() for x, _ in batches] == [[0, 20, 40, 60], [80, 100, 120, 140]]


# --- InfiniteSampler -------------------------------------------------------------------------------

def test_the_infinite_sampler_covers_each_pass_and_splits_ranks():
    size, world = 7, 3
    streams = [list(itertools.islice(iter(InfiniteSampler(size, seed=1, rank=r, world_size=world)), 7))
               for r in range(world)]
    interleaved = [streams[i % world][i // world] for i in range(3 * 7)]  # the global order
    for data_pass in range(3):
        assert sorted(interleaved[data_pass * size:(data_pass + 1) * size]) == list(range(size))
    assert interleaved[:size] != list(range(size))  # shuffled
    assert interleaved[:size] != interleaved[size:2 * size]  # reshuffled every pass


def test_the_infinite_sampler_resumes_where_it_stopped():
    full = list(itertools.islice(iter(InfiniteSampler(5, seed=3, rank=1, world_size=2)), 20))
    # after 6 global images (3 per rank), rank 1 continues from its 4th index
    resumed = list(itertools.islice(iter(InfiniteSampler(5, seed=3, rank=1, world_size=2, start=6)), 17))
    assert resumed == full[3:]


# --- every bad input: one ImageDataError, one line, naming the culprit and the fix -----------------

def one_line_error(info, *words: str) -> str:
    """The message of a raised ``ImageDataError``: one line that contains every one of ``words``."""
    assert info.type is ImageDataError, info.type
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    for word in words:
        assert word in message, (word, message)
    return message


def truncated(kind: str) -> bytes:
    noise = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format={"png": "PNG", "jpg": "JPEG"}[kind])
    return buf.getvalue()[: len(buf.getvalue()) // 2]


BAD_IMAGES = {  # name -> (bytes, words of the reason)
    "truncated.png": (truncated("png"), ["truncated"]),
    "truncated.jpg": (truncated("jpg"), ["truncated"]),
    "text.png": (b"hello, this is text saved as .png", ["recognizes no image format", "hello"]),
    "html.jpeg": (b"<!DOCTYPE html><html>404</html>", ["recognizes no image format"]),
    "empty.webp": (b"", ["empty"]),
}


def bad_image_source(tmp_path: Path, where: str, name: str) -> tuple[Path, str]:
    """A folder or zip with two good images and the bad ``name`` in ``sub/``; (source, its name in errors)."""
    data = BAD_IMAGES[name][0]
    if where == "folder":
        root = make_folder(tmp_path / "images", count=2)
        (root / "sub").mkdir()
        (root / "sub" / name).write_bytes(data)
        return root, str(root / "sub" / name)
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(2):
            zf.writestr(f"img{i}.png", png_bytes(Image.fromarray(gray(30 * i))))
        zf.writestr(f"sub/{name}", data)
    return archive, f"sub/{name} in zip file {archive}"


@pytest.mark.parametrize("where", ["folder", "zip"])
@pytest.mark.parametrize("name", list(BAD_IMAGES))
def test_a_bad_image_is_named_when_decoded_and_dropped_with_skip_corrupt(tmp_path, where, name):
    """Cases 1 and 2: a truncated PNG/JPEG, or a non-image with an image extension."""
    source, culprit = bad_image_source(tmp_path, where, name)
    ds = ImageDataset(source, 8, 1)  # listing only: nothing is decoded yet
    index = ds.names.index(f"sub/{name}")
    with pytest.raises(ImageDataError) as info:
        ds[index]
    one_line_error(info, culprit, *BAD_IMAGES[name][1], "Remove or replace", "--data.skip_corrupt true")
    good = [i for i in range(len(ds)) if i != index]
    assert all(ds[i][0].shape == (1, 8, 8) for i in good)
    with pytest.warns(UserWarning, match=f"Skipped 1 unreadable.*sub/{name}"):
        skipping = ImageDataset(source, 8, 1, skip_corrupt=True)
    assert skipping.skipped == [f"sub/{name}"] and len(skipping) == 2


def test_a_bad_image_stops_training_with_its_name(tmp_path):
    source, culprit = bad_image_source(tmp_path, "folder", "truncated.png")
    dm = ImageDataModule(str(source), resolution=8, batch_size=3, val_images=0)
    with pytest.raises(ImageDataError) as info:
        next(iter(dm.train_dataloader()))  # every batch of 3 holds all 3 images
    one_line_error(info, culprit, "--data.skip_corrupt true")


def test_when_every_image_is_bad_skip_corrupt_names_the_first(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    for name in ("a.png", "b.jpg"):
        (root / name).write_bytes(b"not an image")
    with pytest.warns(UserWarning), pytest.raises(ImageDataError) as info:
        ImageDataset(root, 8, 1, skip_corrupt=True)
    one_line_error(info, "None of the 2 images", str(root / "a.png"), "--data.path")


def test_a_worker_process_reraises_the_image_data_error_with_the_message_last(tmp_path):
    """With num_workers > 0 torch re-raises the worker's ImageDataError (same type) whose text is
    "Caught ImageDataError in DataLoader worker process N. Original Traceback ..." ending with the
    line "lightning_stylegan.data.images.ImageDataError: <the one-line message>"."""
    source, culprit = bad_image_source(tmp_path, "zip", "text.png")
    dm = ImageDataModule(str(source), resolution=8, batch_size=3, num_workers=1, val_images=3)
    batches = iter(dm.val_dataloader())  # not persistent: its worker ends with the iterator
    with pytest.raises(ImageDataError) as info:
        next(batches)
    batches._shutdown_workers()  # now: the traceback would keep the worker until garbage collection
    text = str(info.value)
    assert text.startswith("Caught ImageDataError in DataLoader worker process 0.")
    last = text.strip().splitlines()[-1]
    prefix = "lightning_stylegan.data.images.ImageDataError: "
    assert last.startswith(prefix) and culprit in last and "--data.skip_corrupt" in last


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


SEARCHED = " ".join(EXTENSIONS)
NO_PATHS = {  # case -> (make the path, words of the message)
    "empty folder": (lambda p: (p / "empty").mkdir() or p / "empty",
                     ["No images found in folder", SEARCHED, "the folder is empty", "--data.path"]),
    "folder of non-images": (lambda p: (p / "docs").mkdir() or (p / "docs" / "a.txt").write_text("x")
                             and (p / "docs" / "b.gif").write_bytes(b"GIF89a") and p / "docs",
                             ["No images found in folder", SEARCHED, "2 other file(s)", "a.txt, b.gif", ".png"]),
    "hidden images only": (lambda p: save(p / "dots" / ".a.png", gray(1)).parent,
                           ["No images found", "dot-files", ".a.png"]),
    "missing path": (lambda p: p / "missing",
                     ["does not exist", "--data.path", "a folder", ".zip", "embedded Fashion-MNIST"]),
    "zip without images": (lambda p: write_zip(p / "docs.zip", {"readme.txt": b"x"}),
                           ["No images found in zip file", SEARCHED, "readme.txt", "--data.path"]),
    "empty zip": (lambda p: write_zip(p / "nothing.zip", {}), ["No images found in zip file", "is empty"]),
    "not a zip": (lambda p: (p / "bad.zip").write_bytes(b"not a zip") and p / "bad.zip",
                  ["not a valid zip file", "re-create it", "--data.path"]),
    "truncated zip": (lambda p: (p / "cut.zip").write_bytes(
        write_zip(p / "whole.zip", {f"{i}.png": png_bytes(Image.fromarray(gray(i))) for i in range(3)})
        .read_bytes()[:100]) and p / "cut.zip", ["not a valid zip file", "re-create it"]),
    "tar archive": (lambda p: (p / "images.tar").write_bytes(b"x" * 512) and p / "images.tar",
                    ["neither a folder nor a .zip", "extract it", "--data.path accepts a folder", ".zip",
                     "nothing (null"]),
    "text file": (lambda p: (p / "data.txt").write_text("x") and p / "data.txt",
                  ["neither a folder nor a .zip", "--data.path accepts a folder", "embedded Fashion-MNIST"]),
    "one image": (lambda p: save(p / "photo.png", gray(1)),
                  ["neither a folder nor a .zip", "a single image is not a dataset", "--data.path accepts"]),
}


@pytest.mark.parametrize("case", list(NO_PATHS))
def test_a_path_without_usable_images_is_one_clear_error(tmp_path, case):
    """Cases 3 to 6: empty folders, missing paths, zips without images, files of another kind."""
    make, words = NO_PATHS[case]
    path = make(tmp_path)
    with pytest.raises(ImageDataError) as info:
        ImageDataset(path, 8, 1)
    one_line_error(info, str(path), *words)
    with pytest.raises(ImageDataError) as info:
        ImageDataModule(str(path), resolution=8)
    one_line_error(info, str(path), *words)


@pytest.mark.parametrize("xflip", [False, True])
def test_fewer_images_than_a_batch_names_batch_size_and_the_count(tmp_path, xflip):
    """Case 7, when the data module is made (before a run writes anything)."""
    root = make_folder(tmp_path / "d", count=3)
    with pytest.raises(ImageDataError) as info:
        ImageDataModule(str(root), resolution=8, batch_size=8, xflip=xflip)
    count = "3 image(s) (6 with xflip copies)" if xflip else "3 image(s)"
    one_line_error(info, str(root), count, "batch_size=8", f"lower --data.batch_size to at most {3 * (1 + xflip)}")


def fake_trainer(staged_batch_size):
    growth = SimpleNamespace(state=lambda kimg: SimpleNamespace(batch_size=staged_batch_size))
    return SimpleNamespace(global_rank=0, world_size=1,
                           lightning_module=SimpleNamespace(images_seen=0, growth=growth))


def test_the_dataloader_checks_the_batch_size_a_growth_schedule_stages(tmp_path):
    root = make_folder(tmp_path / "d", count=6)
    dm = ImageDataModule(str(root), resolution=8, batch_size=6)
    dm.trainer = fake_trainer(4)  # 4 images a batch at this resolution
    assert next(iter(dm.train_dataloader()))[0].shape == (4, 1, 8, 8)
    dm = ImageDataModule(str(root), resolution=8, batch_size=2)
    dm.trainer = fake_trainer(16)  # more than the 6 images
    with pytest.raises(ImageDataError) as info:
        dm.train_dataloader()
    one_line_error(info, "batch_size=16", "growth schedule", "--model.growth_options")


@pytest.mark.parametrize("resolution", [0, -8, 3, 4, 6, 12, 100, 2048, 8.0, True, "32"])
def test_a_resolution_the_networks_cannot_build_is_refused_at_once(resolution):
    """Case 8: powers of two from 8 to 1024, checked before any image is listed."""
    with pytest.raises(ImageDataError) as info:
        ImageDataModule("/no/such/folder", resolution=resolution)
    one_line_error(info, repr(resolution), "--data.resolution", "8, 16, 32, 64, 128, 256, 512, 1024")


def test_every_supported_resolution_is_accepted():
    for resolution in (8, 1024):
        assert ImageDataModule(resolution=resolution).image_shape == (1, resolution, resolution)


@pytest.mark.parametrize("option, value, words", [
    ("channels", 2, ["--data.channels", "1, 3 or 4"]),
    ("channels", 0, ["--data.channels"]),
    ("channels", True, ["--data.channels"]),
    ("resize", "stretch", ["--data.resize", "center-crop, pad"]),
    ("batch_size", 0, ["--data.batch_size", "positive integer"]),
    ("batch_size", 2.5, ["--data.batch_size"]),
    ("batch_size", True, ["--data.batch_size"]),
    ("num_workers", -1, ["--data.num_workers", "non-negative integer"]),
    ("val_images", -1, ["--data.val_images", "non-negative integer"]),
    ("max_images", 0, ["--data.max_images", "null for all"]),
])
def test_a_bad_data_option_names_it_and_the_valid_values(option, value, words):
    """Case 9 and the other options of ImageDataModule."""
    with pytest.raises(ImageDataError) as info:
        ImageDataModule(resolution=8, **{option: value})
    one_line_error(info, repr(value), *words)
    if option in ("channels", "resize", "max_images"):  # ImageDataset's own arguments
        with pytest.raises(ImageDataError) as info:
            ImageDataset(None, 8, **({"channels": 1} | {option: value}))
        one_line_error(info, repr(value), *words)
