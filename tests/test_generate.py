"""``lightning-stylegan generate``: seeds, quantization, truncation, classes, style mixing, interpolation."""
from __future__ import annotations

import math
import os
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_stylegan.network_files import load_generator, load_networks, write_checkpoint
from lightning_stylegan.tools import generate
from lightning_stylegan.tools.generate import (generate_images, interpolation_frames, parse_range, seed_to_z, slerp,
                                               style_mix_grid)


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
