"""``lightning-stylegan project``: StyleGAN2 Appendix D projection with an LPIPS backbone the tests build."""
from __future__ import annotations

import math
import os
import subprocess
import warnings

import lpips
import numpy as np
import pytest
import torch
from PIL import Image

from lightning_stylegan.metrics.lpips_distance import LPIPSDistance
from lightning_stylegan.network_files import load_generator
from lightning_stylegan.tools import project as projector
from lightning_stylegan.tools.generate import seed_to_z
from lightning_stylegan.tools.project import learning_rate, noise_regularization, project, w_statistics
from lightning_stylegan.tools.projected_w import NOISE_PREFIX, with_noise


pytestmark = pytest.mark.usefixtures("one_thread")


def random_lpips(net: str) -> lpips.LPIPS:
    """LPIPS with its shipped linear layers and a randomly initialised backbone (no ImageNet weights offline)."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return lpips.LPIPS(net=net, pnet_rand=True, verbose=False)


def explicit_regularization(maps: list[torch.Tensor]) -> float:
    """Appendix D written out with loops: L_ij = (1/r^2 sum n(x,y) n(x-1,y))^2 + (1/r^2 sum n(x,y) n(x,y-1))^2,
    wrapping at the edges, over the pyramid n_{i,j+1} = 2 * (2x2 average of n_{i,j}) down to 8x8."""
    total = 0.0
    for noise in maps:
        n = noise.double().tolist()
        while True:
            r = len(n)
            horizontal = sum(n[y][x] * n[y][(x - 1) % r] for y in range(r) for x in range(r)) / r ** 2
            vertical = sum(n[y][x] * n[(y - 1) % r][x] for y in range(r) for x in range(r)) / r ** 2
            total += horizontal ** 2 + vertical ** 2
            if r <= 8:
                break
            n = [[2 * (n[2 * y][2 * x] + n[2 * y][2 * x + 1] + n[2 * y + 1][2 * x] + n[2 * y + 1][2 * x + 1]) / 4
                  for x in range(r // 2)] for y in range(r // 2)]
    return total


def test_noise_regularization_is_appendix_d():
    """StyleGAN2 Appendix D noise regularizer against an explicit loop, and two closed forms."""
    gen = torch.Generator().manual_seed(0)
    maps = [torch.randn(4, 4, generator=gen), torch.randn(8, 8, generator=gen), torch.randn(32, 32, generator=gen)]
    maps[2] += torch.roll(maps[2], 1, dims=0)  # correlated rows: a coherent signal the regularizer penalises
    assert float(noise_regularization(maps)) == pytest.approx(explicit_regularization(maps), rel=1e-6)
    # All ones, 16x16: both coefficients 1 at 16x16; at 8x8 the map is 2 everywhere, coefficients 4 -> 2 + 32.
    assert float(noise_regularization([torch.ones(16, 16)])) == pytest.approx(34.0)
    # A checkerboard: coefficients -1 at 16x16, and its 2x2 averages vanish -> 2.
    checker = (-1.0) ** (torch.arange(16)[:, None] + torch.arange(16)[None, :])
    assert float(noise_regularization([checker])) == pytest.approx(2.0)


def test_learning_rate_schedule():
    """Appendix D: lr ramps up linearly from 0 over the first 50 of 1000 steps, holds 0.1, and falls to 0 with a
    cosine over the last 250: lr = 0.1 * (1 - cos(pi * (1000 - step) / 250)) / 2 there."""
    assert learning_rate(0, 1000) == 0
    assert learning_rate(25, 1000) == pytest.approx(0.05)
    for step in [50, 400, 750]:
        assert learning_rate(step, 1000) == pytest.approx(0.1)
    for step in [800, 875, 999]:
        assert learning_rate(step, 1000) == pytest.approx(0.05 * (1 - math.cos(math.pi * (1000 - step) / 250)))
    assert learning_rate(875, 1000) == pytest.approx(0.05)


def test_w_statistics(tiny_ckpt):
    """mu_w = E f(z) and sigma_w^2 = E ||f(z) - mu_w||^2 (Appendix D), over NVlabs' RandomState(123) z's."""
    G = load_generator(tiny_ckpt)
    w_avg, w_std = w_statistics(G, 300, batch_size=128)
    z = np.random.RandomState(123).randn(300, G.z_dim)
    ws = [G.mapping(torch.from_numpy(z[i:i + 1]), None)[0, 0].double() for i in range(300)]
    mean = sum(ws) / 300
    assert torch.allclose(w_avg.double(), mean, atol=1e-5)
    assert w_std == pytest.approx(math.sqrt(sum(float((w - mean).square().sum()) for w in ws) / 300), rel=1e-5)


def test_projection_recovers_the_w_of_a_generated_image(tiny_ckpt):
    """A target our generator made from w_true is projected closer to it than the W-average start, in LPIPS and in
    ||w - w_true||; every step renormalises the noise maps (Appendix D); the given G is left as it was."""
    G = load_generator(tiny_ckpt)
    with torch.no_grad():  # A trained G's images lie in [-1, 1]; the random one's overshoot and would clip in uint8.
        for name, param in G.named_parameters():
            if "torgb" in name:
                param.mul_(0.5)
    w_true = G.mapping(seed_to_z(1, G.z_dim), None)
    w_avg, _ = w_statistics(G, 2000)
    distance = LPIPSDistance(random_lpips("vgg"))  # vgg: the only LPIPS backbone that takes 16x16 images
    with torch.no_grad():
        target = (G.synthesis(w_true, noise_mode="const") * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0]
        start = G.synthesis(w_avg.repeat(1, G.num_ws, 1), noise_mode="const")
        start_distance = float(distance(target[None] / 127.5 - 1, start))
    before = {name: tensor.clone() for name, tensor in G.state_dict().items()}
    noise_seen = []  # the hook travels with the copy of G that project() optimises
    G.synthesis.b16.conv1.register_forward_pre_hook(
        lambda layer, args: noise_seen.append((float(layer.noise_const.detach().mean()),
                                               float(layer.noise_const.detach().square().mean()))))
    result = project(G, target, distance, num_steps=200, w_avg_samples=2000, progress=False)

    start_error = float((w_avg - w_true[0, 0]).norm())
    error = float((result.ws[0] - w_true[0, 0]).norm())
    assert result.distance < 0.5 * start_distance
    assert error < 0.5 * start_error
    assert result.ws.shape == (G.num_ws, G.w_dim) and torch.equal(result.ws, result.ws[:1].expand(G.num_ws, -1))
    assert result.ws_per_step.shape == (200, G.num_ws, G.w_dim) and torch.equal(result.ws_per_step[-1], result.ws)
    # One call per step plus the final image; from the second step on the maps are renormalised.
    assert len(noise_seen) == 201 and abs(noise_seen[0][0]) > 1e-3
    for mean, mean_square in noise_seen[1:]:
        assert abs(mean) < 1e-5 and mean_square == pytest.approx(1, abs=1e-4)
    for name, tensor in G.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_w_plus_optimises_one_w_per_style(tiny_ckpt):
    G = load_generator(tiny_ckpt)
    target = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    distance = LPIPSDistance(random_lpips("vgg"))
    result = project(G, target, distance, num_steps=4, w_avg_samples=100, w_plus=True, progress=False)
    assert result.ws.shape == (G.num_ws, G.w_dim) and not torch.equal(result.ws[0], result.ws[-1])
    with pytest.raises(ValueError, match=r"\(3, 16, 16\)"):
        project(G, target[:, :8], distance, num_steps=1)


def write_backbone(path) -> None:
    """A torchvision-format AlexNet ``features.*`` state dict (random weights) for ``--lpips-backbone``."""
    state = random_lpips("alex").net.state_dict()
    torch.save({"features." + key.split(".", 1)[1]: value for key, value in state.items()}, path)


def test_cli_end_to_end_gray(tmp_path):
    """The installed command on a gray 32x32 checkpoint: every output file, consistent with each other."""
    from tiny_networks import tiny_checkpoint

    ckpt = tiny_checkpoint(tmp_path / "gray.ckpt", resolution=32, channels=1)
    backbone = tmp_path / "alexnet-features.pth"
    write_backbone(backbone)
    target_file = tmp_path / "target.jpg"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (40, 52, 3), dtype=np.uint8)).save(target_file)
    out = tmp_path / "out"
    run = subprocess.run(["lightning-stylegan", "project", "--ckpt", str(ckpt), "--target", str(target_file),
                          "--outdir", str(out), "--steps", "3", "--w-avg-samples", "100", "--progress-frames", "2",
                          "--lpips-net", "alex", "--lpips-backbone", str(backbone)],
                         capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr
    saved = np.load(out / "projected_w.npz")
    G = load_generator(ckpt)
    assert saved["w"].shape == (G.num_ws, G.w_dim)
    assert f"final LPIPS distance {float(saved['distance']):.6f}" in run.stdout
    target = projector.load_target(target_file, 32, 1)
    assert np.array_equal(np.asarray(Image.open(out / "target.png")), target[0].numpy())
    noise = {key[len(NOISE_PREFIX):]: torch.from_numpy(saved[key]) for key in saved.files
             if key.startswith(NOISE_PREFIX)}
    assert len(noise) == 2 * 4 - 1  # blocks 4..32: every style layer but the one on the 4x4 constant
    with torch.no_grad():
        image = with_noise(G, noise).synthesis(torch.from_numpy(saved["w"])[None], noise_mode="const")
    projection = (image * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0, 0].numpy()
    assert np.array_equal(np.asarray(Image.open(out / "proj.png")), projection)
    side = np.asarray(Image.open(out / "side_by_side.png"))
    assert side.shape == (32, 64) and np.array_equal(side[:, :32], target[0].numpy())
    assert np.array_equal(side[:, 32:], projection)
    assert sorted(p.name for p in (out / "progress").iterdir()) == ["frame0000.png", "frame0001.png"]
    assert Image.open(out / "progress.gif").n_frames == 2
    rendered = subprocess.run(["lightning-stylegan", "generate", "--ckpt", str(ckpt), "--outdir", str(tmp_path / "again"),
                               "--projected-w", str(out / "projected_w.npz")], capture_output=True, text=True,
                              env=os.environ | {"OMP_NUM_THREADS": "1"})  # one thread, as this module
    assert rendered.returncode == 0, rendered.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "again" / "proj.png")), projection)


def test_missing_backbone_weights_are_a_clear_error(tiny_ckpt, tmp_path, capsys):
    target = tmp_path / "t.png"
    Image.new("RGB", (16, 16)).save(target)
    code = projector.main(["--ckpt", str(tiny_ckpt), "--target", str(target), "--outdir", str(tmp_path / "o"),
                           "--lpips-backbone", str(tmp_path / "missing.pth")])
    assert code == 2
    err = capsys.readouterr().err
    assert "vgg16-397923af.pth" in err and "--lpips-backbone" in err
    assert not (tmp_path / "o").exists()
