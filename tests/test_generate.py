"""``lightning-stylegan generate``: seeds, quantization, truncation, classes, style mixing, interpolation."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_stylegan.errors import UsageError
from lightning_stylegan.images import image_grid
from lightning_stylegan.network_files import load_generator, load_networks, write_checkpoint
from lightning_stylegan.tools import generate
from lightning_stylegan.tools.generate import (generate_images, interpolation_frames, parse_range, seed_to_z, slerp,
                                               style_mix_grid)
from lightning_stylegan.video import VideoError, grid_seeds, rgb_frame, tile_frames, write_mp4


pytestmark = pytest.mark.usefixtures("one_thread")


def png(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def nvlabs_image(G, seed: int, c=None, psi: float = 1, noise_mode: str = "const") -> torch.Tensor:
    """NVlabs generate.py, written out: z from RandomState(seed), G(z, c, psi), (x * 127.5 + 128).clamp -> uint8."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim))
    with torch.no_grad():
        img = G(z, c, truncation_psi=psi, noise_mode=noise_mode)
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0]


def test_parse_range():
    assert parse_range("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_range("5") == [5]
    assert parse_range("2, 4-5") == [2, 4, 5]
    for bad in ["3-1", "a", "1,,2", "-1"]:
        with pytest.raises(ValueError, match="0-15|backwards"):
            parse_range(bad)


def test_seed_to_z_is_nvlabs_latent():
    for seed in [0, 1, 123, 2 ** 32 - 1]:
        assert torch.equal(seed_to_z(seed, 17), torch.from_numpy(np.random.RandomState(seed).randn(1, 17)))
    with pytest.raises(ValueError, match="seed"):
        seed_to_z(2 ** 32, 4)


def test_images_are_nvlabs_images(tiny_ckpt):
    """Same z, same network call and quantization as NVlabs' generate.py, seed by seed."""
    G = load_generator(tiny_ckpt)
    images = generate_images(G, [0, 5, 9], truncation_psi=0.7)
    for image, seed in zip(images, [0, 5, 9]):
        assert torch.equal(image, nvlabs_image(G, seed, psi=0.7))


def test_cli_writes_identical_pngs_per_seed(tiny_ckpt, tmp_path):
    """End to end through the installed command: two runs give byte-identical files; seeds differ."""
    for run in ["a", "b"]:
        subprocess.run(["lightning-stylegan", "generate", "--ckpt", str(tiny_ckpt), "--outdir", str(tmp_path / run),
                        "--seeds", "0-3,7", "--trunc", "0.8"], check=True, capture_output=True,
                       env=os.environ | {"OMP_NUM_THREADS": "1"})
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["grid.png", "seed0000.png", "seed0001.png", "seed0002.png", "seed0003.png", "seed0007.png"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert not np.array_equal(png(tmp_path / "a" / "seed0000.png"), png(tmp_path / "a" / "seed0001.png"))
    G = load_generator(tiny_ckpt)
    assert np.array_equal(png(tmp_path / "a" / "seed0007.png"), nvlabs_image(G, 7, psi=0.8).permute(1, 2, 0).numpy())
    # 5 images: 3 columns (ceil(sqrt(5))) x 2 rows of 16x16 tiles, filled row by row, the blank cell black.
    grid = png(tmp_path / "a" / "grid.png")
    assert grid.shape == (32, 48, 3)
    assert np.array_equal(grid[16:32, 0:16], png(tmp_path / "a" / "seed0003.png"))
    assert not grid[16:32, 32:48].any()


def test_truncation_psi_zero_gives_the_average_image(tiny_ckpt):
    """The truncation trick (StyleGAN, Karras et al. 2019): w' = w_avg + psi (w - w_avg); psi = 0 gives w_avg's image
    for every seed."""
    G = load_generator(tiny_ckpt)
    G.mapping.w_avg.copy_(torch.randn(G.w_dim, generator=torch.Generator().manual_seed(1)))
    images = generate_images(G, [0, 1, 2], truncation_psi=0)
    with torch.no_grad():
        average = G.synthesis(G.mapping.w_avg.repeat(1, G.num_ws, 1), noise_mode="const")
    expected = (average * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0]
    for image in images:
        assert torch.equal(image, expected)


def test_conditional_network_needs_a_class(tmp_path, capsys):
    from tiny_networks import tiny_checkpoint

    ckpt = tiny_checkpoint(tmp_path / "cond.ckpt", label_dim=3)
    assert generate.main(["--ckpt", str(ckpt), "--outdir", str(tmp_path / "o"), "--seeds", "0"]) == 2
    assert "--class" in capsys.readouterr().err
    assert generate.main(["--ckpt", str(ckpt), "--outdir", str(tmp_path / "o"), "--seeds", "0", "--class", "3"]) == 2
    assert "classes 0 to 2" in capsys.readouterr().err
    assert generate.main(["--ckpt", str(ckpt), "--outdir", str(tmp_path / "o"), "--seeds", "0", "--class", "1"]) == 0
    G = load_generator(ckpt)
    one_hot = torch.tensor([[0.0, 1.0, 0.0]])
    assert np.array_equal(png(tmp_path / "o" / "seed0000.png"), nvlabs_image(G, 0, one_hot).permute(1, 2, 0).numpy())


def test_random_noise_is_deterministic_per_seed(tiny_ckpt, tmp_path):
    networks = load_networks(tiny_ckpt)
    for name, param in networks.G_ema.named_parameters():
        if name.endswith("noise_strength"):
            param.fill_(0.5)  # a fresh network has zero noise strength: give the noise an effect
    ckpt = write_checkpoint(tmp_path / "noisy.ckpt", networks.hparams, networks.G, networks.D, networks.G_ema, "test")
    G = load_generator(ckpt)
    torch.manual_seed(1)
    first = generate_images(G, [3, 4], noise_mode="random", batch_size=2)
    torch.manual_seed(2)  # the global random state does not matter, nor does the other seed of the batch
    again = generate_images(G, [3, 0], noise_mode="random", batch_size=2)  # the same layout: the same arithmetic
    assert torch.equal(first[0], again[0])
    assert not torch.equal(first[0], first[1])
    assert not torch.equal(first[0], generate_images(G, [3], noise_mode="const")[0])


def test_style_mix_cells_take_the_listed_styles_from_their_column_seed(tiny_ckpt):
    """StyleGAN Figure 3 as NVlabs' style_mixing.py lays it out: cell (r, c) is row seed r's w with the styles
    in --styles taken from column seed c. The ws reaching the synthesis network are recorded with a hook."""
    G = load_generator(tiny_ckpt)
    rows, cols, styles = [0, 1], [2, 3, 4], [0, 1, 2]
    seen = []
    G.synthesis.register_forward_pre_hook(lambda module, args, kwargs: seen.append(args[0].clone()), with_kwargs=True)
    mix = style_mix_grid(G, rows, cols, styles)
    w = {s: G.mapping(seed_to_z(s, G.z_dim), None)[0] for s in rows + cols}
    cell_ws = torch.cat(seen)[-len(rows) * len(cols):]  # synthesized last, row by row
    for r, row_seed in enumerate(rows):
        for c, col_seed in enumerate(cols):
            fed = cell_ws[r * len(cols) + c]
            assert torch.equal(fed[styles], w[col_seed][styles])
            assert torch.equal(fed[3:], w[row_seed][3:])
    # Grid: empty corner, column seeds' images on top, row seeds' images on the left.
    h = G.img_resolution
    assert mix.grid.shape == (3, 3 * h, 4 * h)
    assert not mix.grid[:, :h, :h].any()
    assert torch.equal(mix.grid[:, :h, 2 * h:3 * h], mix.cols[1])
    assert torch.equal(mix.grid[:, 2 * h:, :h], mix.rows[1])
    assert torch.equal(mix.grid[:, 2 * h:, 3 * h:], mix.cells[1, 2])
    assert torch.equal(mix.cols[2], nvlabs_image(G, 4))
    # Taking every style from the column seed gives the column seed's image.
    every = style_mix_grid(G, rows, cols, list(range(G.num_ws)))
    for r in range(len(rows)):
        assert torch.equal(every.cells[r], every.cols)
    with pytest.raises(ValueError, match=f"{G.num_ws} styles"):
        style_mix_grid(G, rows, cols, [0, G.num_ws])


def test_style_mix_cli_files(tiny_ckpt, tmp_path):
    out = tmp_path / "out"
    assert generate.main(["--ckpt", str(tiny_ckpt), "--outdir", str(out), "--style-mix", "--rows", "0-1",
                          "--cols", "5,6", "--styles", "0-1"]) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"grid.png", "0-0.png", "1-1.png", "5-5.png", "6-6.png", "0-5.png", "0-6.png", "1-5.png", "1-6.png"}
    assert png(out / "grid.png").shape == (48, 48, 3)


def test_slerp_closed_form():
    """Slerp (Shoemake; the path of StyleGAN Eq. 2 / 003_22a7711458f25a1a.txt): for unit a, b at angle W the point at
    t is cos(tW) a + sin(tW) u, u the unit vector of b - (a.b) a; it stays on the sphere; ends are exact."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 6, 9, dtype=torch.float64, generator=gen)
    a, b = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    t = torch.rand(6, 1, dtype=torch.float64, generator=gen)
    out = slerp(a, b, t)
    for i in range(6):
        angle = math.acos(float(a[i] @ b[i]))
        u = b[i] - float(a[i] @ b[i]) * a[i]
        u = u / u.norm()
        expected = math.cos(float(t[i]) * angle) * a[i] + math.sin(float(t[i]) * angle) * u
        assert torch.allclose(out[i], expected, atol=1e-12)
    assert torch.allclose(out.norm(dim=-1), torch.ones(6, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(slerp(3 * a, 3 * b, t).norm(dim=-1), torch.full((6,), 3.0, dtype=torch.float64))
    assert torch.equal(slerp(a, b, 0.0), a) and torch.equal(slerp(a, b, 1.0), b)
    assert torch.allclose(slerp(a[0], 2 * a[0], 0.5), 1.5 * a[0])  # parallel: no plane, lerp


@pytest.mark.parametrize("space,spherical", [("z", False), ("z", True), ("w", False)])
def test_interpolation_ends_on_the_seeds(tiny_ckpt, space, spherical):
    G = load_generator(tiny_ckpt)
    seeds = [0, 1, 2]
    frames = interpolation_frames(G, seeds, frames=4, space=space, spherical=spherical, truncation_psi=0.9)
    ends = generate_images(G, seeds, truncation_psi=0.9)
    assert len(frames) == 4 * 2 + 1
    assert torch.equal(frames[0], ends[0]) and torch.equal(frames[4], ends[1]) and torch.equal(frames[-1], ends[2])
    assert not torch.equal(frames[1], frames[0])
    looped = interpolation_frames(G, seeds, frames=4, space=space, spherical=spherical, loop=True, truncation_psi=0.9)
    assert len(looped) == 4 * 3 and torch.equal(looped[:9], frames)


def test_interpolation_cli_gif(tiny_ckpt, tmp_path, capsys):
    assert generate.main(["--ckpt", str(tiny_ckpt), "--outdir", str(tmp_path), "--interpolate", "--seeds", "0,1,2",
                          "--frames", "3", "--slerp", "--duration", "50"]) == 0
    assert sorted(p.name for p in tmp_path.glob("frame*.png")) == [f"frame{i:04d}.png" for i in range(7)]
    gif = Image.open(tmp_path / "interpolation.gif")
    assert gif.n_frames == 7 and gif.size == (16, 16) and gif.info["duration"] == 50
    assert generate.main(["--ckpt", str(tiny_ckpt), "--outdir", str(tmp_path), "--interpolate", "--seeds", "0,1",
                          "--space", "w", "--slerp"]) == 2
    assert "--space z" in capsys.readouterr().err
    assert generate.main(["--ckpt", str(tiny_ckpt), "--outdir", str(tmp_path), "--interpolate", "--seeds", "4"]) == 2
    assert "at least two seeds" in capsys.readouterr().err


def test_output_transform_is_gen_images_make_transform():
    """Rotation by the angle, then translation: a point (x, y) goes to R (x, y) + t, with R
    [[cos, sin], [-sin, cos]] (x right, y down: counterclockwise as the image is seen)."""
    m = generate.output_transform((0.25, -0.5), 90)
    assert torch.allclose(m, torch.tensor([[0.0, 1, 0.25], [-1, 0, -0.5], [0, 0, 1]], dtype=torch.float64), atol=1e-15)
    right = torch.tensor([1.0, 0, 1], dtype=torch.float64)
    assert torch.allclose(generate.output_transform(rotate=90) @ right, torch.tensor([0.0, -1, 1], dtype=torch.float64),
                          atol=1e-15)  # the point right of the center goes up
    angle = math.radians(30)
    for x, y in [(0.3, -0.1), (-1.0, 2.0)]:
        expected = [math.cos(angle) * x + math.sin(angle) * y + 0.1, -math.sin(angle) * x + math.cos(angle) * y + 0.2]
        moved = generate.output_transform((0.1, 0.2), 30) @ torch.tensor([x, y, 1.0], dtype=torch.float64)
        assert torch.allclose(moved, torch.tensor([*expected, 1.0], dtype=torch.float64), atol=1e-15)
    assert torch.equal(generate.output_transform(), torch.eye(3, dtype=torch.float64))


def test_translate_and_rotate_go_to_the_synthesis_hook(tiny_ckpt, tmp_path, monkeypatch, capsys):
    """A generator plugin's optional set_transform receives the matrix; without it, an error names
    the options and the generator, and nothing is written."""
    seen = []
    loaded = load_generator(tiny_ckpt)
    loaded.synthesis.set_transform = seen.append
    monkeypatch.setattr("lightning_stylegan.network_files.load_generator", lambda path: loaded)
    assert generate.main(["--ckpt", str(tiny_ckpt), "--outdir", str(tmp_path), "--seeds", "0",
                          "--translate=-0.5,0.25", "--rotate", "45"]) == 0
    assert len(seen) == 1 and torch.equal(seen[0], generate.output_transform((-0.5, 0.25), 45))
    monkeypatch.undo()
    code = generate.main(["--ckpt", str(tiny_ckpt), "--outdir", str(tmp_path / "none"), "--seeds", "0",
                          "--translate", "0.1,0"])
    err = capsys.readouterr().err
    assert code == 2 and "--translate/--rotate" in err and "'skip' generator" in err and "set_transform" in err
    assert not (tmp_path / "none").exists()
    with pytest.raises(SystemExit):
        generate.build_parser().parse_args(["--ckpt", "x", "--outdir", "y", "--translate", "1"])
    assert "two numbers X,Y" in capsys.readouterr().err


def decode_mp4(path) -> tuple[dict, np.ndarray]:
    """(metadata, uint8 RGB frames [F, H, W, 3]) as ffmpeg decodes the file."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    return meta, np.stack([np.frombuffer(frame, np.uint8).reshape(height, width, 3) for frame in reader])


def assert_encodes(decoded: np.ndarray, image: torch.Tensor, other: torch.Tensor):
    """The decoded frame [H, W, 3] is the image [3, H, W] through H.264 at CRF 18 in yuv420p, which keeps colour at half
    the resolution each way: in means over 2x2 pixels only the quantization remains, a few levels of 255 (under 10).
    Pixel by pixel the noise-like images of a random 16 px network are 8 to 17 levels off on average, still far nearer
    the image than another seed's image (``other``, 60 to 120 levels away)."""
    image, other = (x.permute(1, 2, 0).numpy().astype(np.float64) for x in (image, other))
    h, w = image.shape[0] // 2, image.shape[1] // 2
    blocks = [x.reshape(h, 2, w, 2, 3).mean(axis=(1, 3)) for x in (decoded, image)]
    assert np.abs(blocks[0] - blocks[1]).mean() < 10
    assert np.abs(decoded - image).mean() < 0.3 * np.abs(decoded - other).mean()


def test_interpolation_video_is_an_mp4_of_the_frames(tiny_ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    assert generate.main(["--ckpt", str(tiny_ckpt), "--interpolate", "--seeds", "0,1,2", "--frames", "3",
                          "--video", str(out / "walk.mp4"), "--fps", "12"]) == 0
    assert f"{out / 'walk.mp4'}: 7 frames at 12 fps" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["walk.mp4"]  # no frames, GIF or temporary file
    meta, decoded = decode_mp4(out / "walk.mp4")
    assert meta["fps"] == 12 and meta["codec"].startswith("h264") and decoded.shape == (7, 16, 16, 3)
    frames = interpolation_frames(load_generator(tiny_ckpt), [0, 1, 2], frames=3)
    assert_encodes(decoded[0], frames[0], frames[3])  # seed 0's image; seed 1's
    assert_encodes(decoded[3], frames[3], frames[0])


def test_video_grid_tiles_each_walk_through_its_own_seeds(tiny_ckpt, tmp_path):
    """NVlabs gen_video.py --grid WxH: W columns, H rows; tile k, row by row, walks through the k-th run of seeds."""
    assert grid_seeds(list(range(8)), 2, 2) == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert grid_seeds([5, 6, 7], 1, 1) == [[5, 6, 7]]
    G = load_generator(tiny_ckpt)
    walks = [interpolation_frames(G, seeds, frames=2, loop=True) for seeds in grid_seeds(list(range(6)), 3, 1)]
    tiled = list(tile_frames(walks, columns=3))
    assert len(tiled) == 4 and all(torch.equal(frame, image_grid(torch.stack([w[i] for w in walks]), 3))
                                   for i, frame in enumerate(tiled))
    assert tiled[0].shape == (3, 16, 48) and torch.equal(tiled[2][:, :, 16:32], walks[1][2])
    video = tmp_path / "grid.mp4"
    assert generate.main(["--ckpt", str(tiny_ckpt), "--interpolate", "--seeds", "0-5", "--frames", "2", "--loop",
                          "--grid", "3x1", "--video", str(video)]) == 0
    meta, decoded = decode_mp4(video)
    assert meta["fps"] == 30 and decoded.shape == (4, 16, 48, 3)  # 1 row x 3 columns of 16 px tiles
    seed_images = generate_images(G, [0, 2, 4])  # each tile starts on the first seed of its run
    for k in range(3):
        assert_encodes(decoded[0][:, 16 * k:16 * (k + 1)], seed_images[k], seed_images[(k + 1) % 3])
    assert generate.main(["--ckpt", str(tiny_ckpt), "--interpolate", "--seeds", "0-3", "--frames", "2",
                          "--grid", "1x2", "--video", str(video)]) == 0
    assert decode_mp4(video)[1].shape == (3, 32, 16, 3)  # 2 rows x 1 column


def test_video_frames_gray_odd_sizes_and_tensors():
    """Gray frames play as RGB; an odd size gains a repeated last row or column (yuv420p needs even sizes); a
    [C, H, W] tensor is the same frame as its [H, W, C] array."""
    gray = np.arange(63, dtype=np.uint8).reshape(7, 9, 1)
    rgb = rgb_frame(gray)
    assert rgb.shape == (8, 10, 3)
    assert np.array_equal(rgb[:7, :9], np.repeat(gray, 3, axis=2))
    assert np.array_equal(rgb[7, :9], rgb[6, :9]) and np.array_equal(rgb[:, 9], rgb[:, 8])
    assert np.array_equal(rgb_frame(torch.from_numpy(gray).permute(2, 0, 1)), rgb)
    with pytest.raises(VideoError, match="uint8"):
        rgb_frame(gray.astype(np.float32))


def test_write_mp4_pads_odd_sizes_and_leaves_nothing_on_a_bad_frame(tmp_path):
    frames = [np.full((7, 9, 1), level, np.uint8) for level in (40, 120, 200)]
    assert write_mp4(frames, tmp_path / "gray.mp4", fps=5) == 3
    meta, decoded = decode_mp4(tmp_path / "gray.mp4")
    assert meta["size"] == (10, 8) and len(decoded) == 3
    assert np.abs(decoded.astype(int) - np.array([40, 120, 200])[:, None, None, None]).max() <= 3  # flat frames
    with pytest.raises(VideoError, match="one size: the first is 10x8, a later one 16x16"):
        write_mp4([frames[0], np.zeros((16, 16, 3), np.uint8)], tmp_path / "bad.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gray.mp4"]


def test_video_without_imageio_ffmpeg_says_what_to_install(tiny_ckpt, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # `import imageio_ffmpeg` raises ImportError
    with pytest.raises(UsageError, match=r'pip install "lightning-stylegan\[video\]"'):
        write_mp4([np.zeros((4, 4, 3), np.uint8)], tmp_path / "x.mp4")
    assert generate.main(["--ckpt", str(tiny_ckpt), "--interpolate", "--seeds", "0,1", "--frames", "2",
                          "--video", str(tmp_path / "walk.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "lightning-stylegan[video]"' in err and "imageio-ffmpeg" in err
    assert not (tmp_path / "walk.mp4").exists()


@pytest.mark.parametrize("argv,message", [
    (["--seeds", "0-5", "--grid", "2x2"], "give a multiple of 4 seeds, 8 or more (got 6)"),
    (["--seeds", "0-3", "--grid", "2x2"], "give a multiple of 4 seeds, 8 or more (got 4)"),
    (["--seeds", "0-7", "--fps", "0"], "frame rate (--fps) must be a positive number"),
    (["--seeds", "0-7", "--outdir", "o"], "leave one out"),
    (["--seeds", "0-7", "--video", "walk.avi"], "name the file *.mp4"),
])
def test_video_errors_are_one_line(tiny_ckpt, tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert generate.main(["--ckpt", str(tiny_ckpt), "--interpolate", "--video", "walk.mp4", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.ckpt"]


def test_video_option_errors(tiny_ckpt, tmp_path, capsys):
    for grid in ["2y2", "0x2", "2"]:
        with pytest.raises(SystemExit):
            generate.build_parser().parse_args(["--ckpt", "x", "--grid", grid])
        assert "is not a grid of WxH tiles" in capsys.readouterr().err
    assert generate.main(["--ckpt", str(tiny_ckpt), "--seeds", "0-3", "--video", str(tmp_path / "v.mp4")]) == 2
    assert "add --interpolate" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        generate.main(["--ckpt", str(tiny_ckpt), "--interpolate", "--seeds", "0,1"])
    assert "--outdir (or --interpolate --video PATH.mp4)" in capsys.readouterr().err
