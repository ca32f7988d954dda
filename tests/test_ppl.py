"""Perceptual path length (StyleGAN Section 4.2, Eqs. 2-3; StyleGAN2 Section 3 / Table 1) and the
offline LPIPS loader. No test touches the network: LPIPS backbones are random networks built here."""
from __future__ import annotations

import math
import urllib.error

import lpips
import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from lightning_stylegan.metrics.lpips_distance import BACKBONE_ENV, LPIPSDistance, LPIPSWeightsError, load_lpips
from lightning_stylegan.metrics.ppl import (PPL_METRICS, downsample, face_crop, filtered_mean, pair_distances,
                                            perceptual_path_length, slerp)
from lightning_stylegan.network_files import load_generator


# --- toy generators whose path length is known in closed form -------------------------------------

class Mapping(nn.Module):
    """w = B z in float64 (w_avg = 0, so truncation scales w by psi), broadcast to num_ws styles."""

    def __init__(self, B: torch.Tensor, num_ws: int, record: list):
        super().__init__()
        self.B, self.num_ws, self.record = B, num_ws, record.append  # a builtin method survives deepcopy

    def forward(self, z, c=None, truncation_psi=1.0):
        self.record(("mapping", z.clone()))
        w = truncation_psi * (z.double() @ self.B.T)
        return w.unsqueeze(1).repeat(1, self.num_ws, 1)


class Synthesis(nn.Module):
    """image = (A vec(ws)) ** power, reshaped to [N, 1, R, R]."""

    def __init__(self, A: torch.Tensor, resolution: int, power: int, record: list):
        super().__init__()
        self.A, self.resolution, self.power, self.record = A, resolution, power, record.append

    def forward(self, ws, noise_mode="random"):
        self.record(("synthesis", ws.clone()))
        return ((ws.flatten(1) @ self.A.T) ** self.power).reshape(-1, 1, self.resolution, self.resolution)


class ToyGenerator(nn.Module):
    def __init__(self, A, B, num_ws=2, resolution=4, power=1):
        super().__init__()
        self.calls = []
        self.z_dim, self.c_dim, self.num_ws, self.img_resolution = B.shape[1], 0, num_ws, resolution
        self.mapping = Mapping(B, num_ws, self.calls)
        self.synthesis = Synthesis(A, resolution, power, self.calls)


def squared_l2(img0, img1):
    return (img1 - img0).square().flatten(1).sum(1)


def random_toy(power=1, z_dim=6, w_dim=5, num_ws=2, resolution=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(resolution * resolution, num_ws * w_dim, generator=gen, dtype=torch.float64)
    B = torch.randn(w_dim, z_dim, generator=gen, dtype=torch.float64)
    return ToyGenerator(A, B, num_ws, resolution, power)


def test_w_space_linear_generator_matches_closed_form():
    """StyleGAN Eq. 3 with g linear (image = A vec(w)) and d = squared L2: every pair's value is
    ||A vec(w(z1) - w(z0))||^2, whatever t and eps; the metric is their 1-99 percentile mean,
    computed here by an explicit loop over the latents the metric drew (seeded)."""
    G = random_toy()
    result = perceptual_path_length(G, squared_l2, num_samples=40, epsilon=1e-4, space="w", sampling="full",
                                    batch_size=8, seed=3, progress=False)
    toy = random_toy()  # same A, B (the metric worked on a copy; the call record is shared)
    z_batches = [z for kind, z in G.calls if kind == "mapping"]
    assert len(z_batches) == 5
    values = []
    for z in z_batches:
        z0, z1 = z.chunk(2)
        for a, b in zip(z0, z1):
            dw = (b.double() - a.double()) @ toy.mapping.B.T
            values.append(float((toy.synthesis.A @ dw.repeat(2)).square().sum()))
    kept = sorted(values)[0:40]  # 1st 'lower' percentile = 1st value, 99th 'higher' = last of 40
    assert result == pytest.approx(sum(kept) / len(kept), rel=1e-9)
    again = perceptual_path_length(random_toy(), squared_l2, num_samples=40, epsilon=1e-4, space="w",
                                   sampling="full", batch_size=8, seed=3, progress=False)
    assert again == result


def test_end_sampling_uses_t_zero_and_full_sampling_uniform_t():
    """StyleGAN Section 4.2: 'end' sampling evaluates the path at t = 0, 'full' at t ~ U(0, 1).
    The quadratic toy image (A w)^2 makes the value depend on t: at t = 0 it is exactly
    ||2 (A w0)(A dw) + eps (A dw)^2||^2 for finite eps."""
    eps = 1e-3
    for sampling in ("end", "full"):
        G = random_toy(power=2)
        perceptual_path_length(G, squared_l2, num_samples=6, epsilon=eps, space="w", sampling=sampling,
                               batch_size=6, progress=False)
        (_, z), (_, ws) = G.calls
        w0, w1 = (z.double() @ G.mapping.B.T).chunk(2)
        wt0 = ws[:6, 0]
        t = ((wt0 - w0) / (w1 - w0)).mean(dim=1)
        assert torch.allclose(ws[:6, 0], ws[:6, 1]) and torch.allclose(ws[6:, 0], ws[6:, 1])  # all ws equal
        if sampling == "end":
            assert torch.equal(wt0, w0)
        else:
            assert bool(((t > 0) & (t < 1)).all()) and float(t.std()) > 0.05
            assert torch.allclose(wt0, w0 + t[:, None] * (w1 - w0))
    G = random_toy(power=2)
    z0, z1 = torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(1))
    got = pair_distances(G, squared_l2, z0, z1, torch.zeros(5), None, eps, "w", crop=False)
    A = G.synthesis.A
    w0, w1 = z0.double() @ G.mapping.B.T, z1.double() @ G.mapping.B.T
    for i in range(5):
        a, da = A @ w0[i].repeat(2), A @ (w1[i] - w0[i]).repeat(2)
        expected = (2 * a * da + eps * da ** 2).square().sum()
        assert float(got[i]) == pytest.approx(float(expected), rel=1e-9)


def test_z_space_slerp_speed_is_the_angle():
    """StyleGAN Eq. 2: slerp(z0, z1; t) moves along the unit great circle at speed theta =
    angle(z0, z1). With G the identity (image = unit z) and d = squared L2, a pair's value is the
    chord (2 sin(eps theta / 2))^2 / eps^2 for any t, which tends to theta^2 as eps -> 0."""
    z_dim = 16
    G = ToyGenerator(torch.eye(z_dim, dtype=torch.float64), torch.eye(z_dim, dtype=torch.float64),
                     num_ws=1, resolution=4)
    gen = torch.Generator().manual_seed(2)
    z0, z1 = torch.randn(2, 8, z_dim, generator=gen)
    theta = torch.acos((z0 / z0.norm(dim=1, keepdim=True) * z1 / z1.norm(dim=1, keepdim=True)).sum(1)).double()
    t = torch.rand(8, generator=gen)
    for eps in (1e-1, 1e-2):
        got = pair_distances(G, squared_l2, z0, z1, t, None, eps, "z", crop=False).double()
        assert torch.allclose(got, (2 * torch.sin(eps * theta / 2) / eps) ** 2, rtol=1e-3)
    got = pair_distances(G, squared_l2, z0, z1, t, None, 1e-3, "z", crop=False).double()
    assert torch.allclose(got, theta ** 2, rtol=1e-2)
    # slerp's ends: t = 0 gives z0's direction, t = 1 z1's.
    assert torch.allclose(slerp(z0, z1, torch.zeros(8, 1)), z0 / z0.norm(dim=1, keepdim=True), atol=1e-6)
    assert torch.allclose(slerp(z0, z1, torch.ones(8, 1)), z1 / z1.norm(dim=1, keepdim=True), atol=1e-5)


def test_filtered_mean_drops_tails_like_numpy_percentiles():
    """NVlabs' PPL mean: keep lo <= d <= hi, lo = 1st percentile ('lower'), hi = 99th ('higher')."""
    d = np.random.default_rng(0).permutation(np.arange(1.0, 201.0))
    d = np.append(d, 1e9)  # planted outlier
    assert filtered_mean(d) == pytest.approx(101.0)  # sorted index 2 (=3) .. 198 (=199): mean 101
    values = np.random.default_rng(1).lognormal(size=150)
    s = sorted(values)
    lo, hi = s[math.floor(0.01 * 149)], s[math.ceil(0.99 * 149)]
    kept = [v for v in values if lo <= v <= hi]
    assert len(kept) == 148
    assert filtered_mean(values) == pytest.approx(sum(kept) / len(kept), rel=1e-12)
    assert filtered_mean(torch.tensor(values)) == pytest.approx(filtered_mean(values), rel=1e-12)


def test_face_crop_window_and_downsampling():
    """StyleGAN's FFHQ face crop (c = R // 8: rows 3c..7c, columns 2c..6c) and the area downsampling
    by img_resolution // 256 (NVlabs' PyTorch code)."""
    img = torch.arange(2 * 3 * 64 * 64, dtype=torch.float32).reshape(2, 3, 64, 64)
    assert torch.equal(face_crop(img), img[:, :, 24:56, 16:48])
    big = torch.arange(1024 * 1024, dtype=torch.float32).reshape(1, 1, 1024, 1024)
    assert torch.equal(face_crop(big), big[:, :, 384:896, 256:768])
    with pytest.raises(ValueError, match="square"):
        face_crop(img[:, :, :, :32])
    x = torch.randn(2, 3, 512, 512)
    assert torch.allclose(downsample(x, 512), nn.functional.avg_pool2d(x, 2), atol=1e-6)
    assert downsample(face_crop(big), 1024).shape[-1] == 128
    assert downsample(img, 256) is img
    assert downsample(img, 64) is img


def test_named_configurations_match_nvlabs():
    """NVlabs metric_main.py: 50k samples, eps 1e-4, batch 2; ppl_* crop the face, ppl2_wend does not."""
    assert set(PPL_METRICS) == {"ppl_zfull", "ppl_wfull", "ppl_zend", "ppl_wend", "ppl2_wend"}
    for name, kwargs in PPL_METRICS.items():
        space, sampling = name.split("_")[1][0], name.split("_")[1][1:]
        assert kwargs == dict(num_samples=50000, epsilon=1e-4, space=space, sampling=sampling,
                              crop=name != "ppl2_wend", batch_size=2)


def test_bad_arguments_are_named():
    G = random_toy()
    with pytest.raises(ValueError, match="space"):
        perceptual_path_length(G, squared_l2, num_samples=2, space="x", progress=False)
    with pytest.raises(ValueError, match="sampling"):
        perceptual_path_length(G, squared_l2, num_samples=2, sampling="middle", progress=False)
    G.c_dim = 3
    with pytest.raises(ValueError, match="labels"):
        perceptual_path_length(G, squared_l2, num_samples=2, progress=False)


# --- a real tiny generator with a random LPIPS backbone ---------------------------------------------

@pytest.fixture(scope="module")
def random_alex():
    torch.manual_seed(0)
    with pytest.warns(UserWarning):  # lpips passes torchvision's deprecated ``pretrained``
        return LPIPSDistance(lpips.LPIPS(net="alex", pnet_rand=True, verbose=False))


def test_ppl_on_tiny_generator(tmp_path, random_alex):
    """PPL of a real (random) StyleGAN2 at 32 px with LPIPS: finite, positive, reproducible for a seed;
    psi = 0 puts both ends of every path at w_avg, so the path length is 0 as both images of a pair
    share the const noise maps."""
    from tiny_networks import tiny_checkpoint

    G = load_generator(tiny_checkpoint(tmp_path / "tiny32.ckpt", resolution=32))
    with torch.no_grad():  # noise strengths start at 0: make the noise matter
        for name, param in G.named_parameters():
            if name.endswith("noise_strength"):
                param.fill_(0.5)
    run = dict(num_samples=24, batch_size=8, progress=False)
    first = perceptual_path_length(G, random_alex, space="w", sampling="end", seed=1, **run)
    assert math.isfinite(first) and first > 0
    assert perceptual_path_length(G, random_alex, space="w", sampling="end", seed=1, **run) == first
    assert perceptual_path_length(G, random_alex, space="w", sampling="end", seed=2, **run) != first
    zfull = perceptual_path_length(G, random_alex, space="z", sampling="full", crop=False, **run)
    assert math.isfinite(zfull) and zfull > 0
    for space in ("w", "z"):
        assert perceptual_path_length(G, random_alex, space=space, truncation_psi=0.0, **run) == pytest.approx(0, abs=1e-6)


def test_lpips_too_small_images_are_named(tiny_ckpt, random_alex):
    """AlexNet's pooling reduces 16 px images to nothing: the error says so and names the fix."""
    with pytest.raises(ValueError, match="at least 31x31.*'vgg'"):
        perceptual_path_length(load_generator(tiny_ckpt), random_alex, num_samples=2, progress=False)


def test_lpips_distance_channels(random_alex):
    """Gray images are compared as RGB copies, RGBA without alpha; identical images are at distance 0."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 3, 32, 32, generator=gen) * 2 - 1
    rgb = random_alex(a, b)
    assert rgb.shape == (3,) and bool((rgb > 0).all())
    assert torch.allclose(random_alex(a, a), torch.zeros(3), atol=1e-7)
    alpha = torch.rand(3, 1, 32, 32, generator=gen)
    assert torch.allclose(random_alex(torch.cat([a, alpha], 1), torch.cat([b, -alpha], 1)), rgb)
    gray0, gray1 = a[:, :1], b[:, :1]
    assert torch.allclose(random_alex(gray0, gray1), random_alex(gray0.repeat(1, 3, 1, 1), gray1.repeat(1, 3, 1, 1)))
    with pytest.raises(ValueError, match="1, 3 or 4 channels"):
        random_alex(a[:, :2], b[:, :2])


# --- the offline LPIPS backbone loader ---------------------------------------------------------------

@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty torch hub cache and a download function that fails (no socket is opened)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(BACKBONE_ENV, raising=False)
    urls = []

    def no_download(url, *args, **kwargs):
        urls.append(url)
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    return urls


def save_backbone(model: nn.Module, path):
    """torchvision's state dict: all of ``features`` plus (to keep the file small) only the
    classifier's biases, standing in for the keys the loader must ignore."""
    state = {k: v for k, v in model.state_dict().items() if k.startswith("features.") or k.endswith("bias")}
    torch.save(state, path)
    return path


@pytest.mark.parametrize("net, builder", [("alex", "alexnet"), ("vgg", "vgg16")])
def test_backbone_file_reaches_lpips_slices(net, builder, tmp_path, offline, monkeypatch):
    """A torchvision state dict loaded through ``backbone_weights`` gives the same LPIPS as lpips.LPIPS
    built by lpips itself around that torchvision model (lpips' own slicing of ``features``)."""
    torch.manual_seed(1)
    reference_backbone = getattr(torchvision.models, builder)()
    path = save_backbone(reference_backbone, tmp_path / f"{builder}.pth")
    loaded = load_lpips(net, backbone_weights=path)
    torch.manual_seed(2)
    with pytest.warns(UserWarning):  # lpips passes torchvision's deprecated ``pretrained``
        other = LPIPSDistance(lpips.LPIPS(net=net, pnet_rand=True, verbose=False))
    monkeypatch.setattr(lpips.pretrained_networks.tv, builder, lambda **kwargs: reference_backbone)
    reference = LPIPSDistance(lpips.LPIPS(net=net, verbose=False))
    x = torch.rand(2, 2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    expected = reference(*x)
    assert torch.allclose(loaded(*x), expected, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(other(*x), expected, rtol=1e-3)
    assert offline == []


def test_backbone_from_env_and_from_hub_cache(tmp_path, offline, monkeypatch):
    """The env var names the file; without it the torch hub cache copy is used, no download tried."""
    torch.manual_seed(3)
    alex = torchvision.models.alexnet()
    path = save_backbone(alex, tmp_path / "alex.pth")
    monkeypatch.setenv(BACKBONE_ENV, str(path))
    images = torch.rand(2, 2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    from_env = load_lpips("alex")(*images)
    monkeypatch.delenv(BACKBONE_ENV)
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    save_backbone(alex, cache / "alexnet-owt-7be5be79.pth")
    assert torch.equal(load_lpips("alex")(*images), from_env)
    assert torch.equal(load_lpips("alex", backbone_weights=path)(*images), from_env)
    assert offline == []


def test_offline_without_weights_names_file_url_option_and_cache(tmp_path, offline):
    """Nothing cached and no network: the error tells where the file comes from and where to put it."""
    with pytest.raises(LPIPSWeightsError) as caught:
        load_lpips("vgg")
    message = str(caught.value)
    assert offline == ["https://download.pytorch.org/models/vgg16-397923af.pth"]
    for part in ("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth",
                 "--lpips-backbone PATH", BACKBONE_ENV, str(tmp_path / "torch_home" / "hub" / "checkpoints"),
                 "no network in tests"):
        assert part in message


def test_missing_or_wrong_backbone_file(tmp_path, offline, monkeypatch):
    with pytest.raises(LPIPSWeightsError, match="nope.pth.*not a file.*alexnet-owt-7be5be79.pth"):
        load_lpips("alex", backbone_weights=tmp_path / "nope.pth")
    monkeypatch.setenv(BACKBONE_ENV, str(tmp_path / "gone.pth"))
    with pytest.raises(LPIPSWeightsError, match=f"\\${BACKBONE_ENV} names .*gone.pth"):
        load_lpips("alex")
    torch.manual_seed(0)
    squeeze = save_backbone(torchvision.models.squeezenet1_1(), tmp_path / "squeeze.pth")
    with pytest.raises(LPIPSWeightsError, match="not torchvision's 'alex' state dict"):
        load_lpips("alex", backbone_weights=squeeze)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(LPIPSWeightsError, match="alexnet-owt"):
        load_lpips("alex", backbone_weights=tmp_path / "junk.pth")
    with pytest.raises(ValueError, match="Unknown LPIPS backbone 'resnet'"):
        load_lpips("resnet")
    assert offline == []
