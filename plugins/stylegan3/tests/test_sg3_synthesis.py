"""StyleGAN3's synthesis network (Karras et al. 2021) against independent computations: the
Fourier-feature input by explicit loop (Section 3.1, Appendix F), StyleGAN3's modulated convolution
in float64 (StyleGAN2 Eqs. 1-3 after the unit-RMS normalization, with the magnitude-EMA input gain of
Section 3.2), the magnitude EMA's update rule, and the translation equivariance of one layer
(Section 3.2: the filtered non-linearity) on band-limited inputs, integer and sub-pixel shifts, with
the unfiltered non-linearity as the control that fails. Then the generator in core's interface: in a
real training run (magnitude EMAs move only in the D main pass) and in the analysis tools."""
from __future__ import annotations

import math

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lightning_stylegan.analysis.layers import synthesis_layers
from lightning_stylegan.data.datamodule import ImageDataModule
from lightning_stylegan.errors import ConfigError
from lightning_stylegan.networks import Generator
from lightning_stylegan.training.module import StyleGAN2
from lightning_stylegan.training.options import DiscriminatorOptions, GeneratorOptions
from lightning_stylegan_stylegan3.layers import SynthesisInput, SynthesisLayer, modulated_conv
from lightning_stylegan_stylegan3.schedule import LayerSpec, layer_schedule

TINY = dict(z_dim=16, w_dim=16, mapping_layers=2, channel_base=256, channel_max=16, use_noise=False,
            synthesis_options={"num_layers": 4, "num_critical": 1})


def tiny_generator(topology="stylegan3-t", resolution=16, **kwargs) -> Generator:
    torch.manual_seed(0)
    return Generator(resolution, 3, topology=topology, **(TINY | kwargs))


# ------------------------------------------------------------------ the Fourier-feature input
def explicit_fourier_features(layer: SynthesisInput, w: np.ndarray) -> np.ndarray:
    """Appendix F by loop, in float64: the affine's (r_c, r_s, t_x, t_y), normalized by |(r_c, r_s)|,
    gives M = R(r) T(-t) U; channel c at pixel p is a_c sin(2 pi (f_c . (M p)_xy + phi_c)), with
    a_c = clamp(1 - (|f_c M| - b) / (s / 2 - b), 0, 1); then the C x C map / sqrt(C)."""
    aff = layer.affine
    t = w @ (aff.weight.detach().double().numpy() * aff.weight_gain).T + aff.bias.detach().double().numpy() * aff.bias_gain
    t = t / math.hypot(t[0], t[1])
    rotation = np.array([[t[0], -t[1], 0], [t[1], t[0], 0], [0, 0, 1]])
    translation = np.array([[1, 0, -t[2]], [0, 1, -t[3]], [0, 0, 1]])
    m = rotation @ translation @ layer.transform.double().numpy()
    freqs, phases = layer.freqs.double().numpy(), layer.phases.double().numpy()
    size, rate, band = layer.size, layer.sampling_rate, layer.bandwidth
    out = np.zeros((layer.channels, size, size))
    for c in range(layer.channels):
        f = freqs[c] @ m[:2, :2]
        amplitude = min(max(1 - (math.hypot(*f) - band) / (rate / 2 - band), 0), 1)
        for i in range(size):  # row: y
            for j in range(size):  # column: x
                p = np.array([(j + 0.5 - size / 2) / rate, (i + 0.5 - size / 2) / rate, 1.0])
                q = m @ p
                out[c, i, j] = amplitude * math.sin(2 * math.pi * (freqs[c] @ q[:2] + phases[c]))
    weight = layer.weight.detach().double().numpy() / math.sqrt(layer.channels)
    return np.einsum("dc,chw->dhw", weight, out)


def test_fourier_features_are_the_explicit_sinusoids_under_the_learned_and_user_transform():
    torch.manual_seed(1)
    layer = SynthesisInput(w_dim=6, channels=5, size=12, sampling_rate=8, bandwidth=2)
    with torch.no_grad():
        layer.affine.weight.normal_()  # a non-trivial learned rotation and translation
        layer.transform.copy_(torch.tensor([[0.6, 0.8, 0.3], [-0.8, 0.6, -0.1], [0, 0, 1]]))
        layer.freqs.mul_(3)  # some frequencies beyond the band: their amplitudes fade
    w = torch.randn(1, 6)
    ours = layer(w)[0].detach().double().numpy()
    np.testing.assert_allclose(ours, explicit_fourier_features(layer, w[0].double().numpy()), atol=2e-5)


def test_a_user_translation_by_one_pixel_shifts_the_features_by_one_pixel():
    """gen_images.py's --translate: the transform is the inverse of the image's motion, so a motion
    by one sample (1 / sampling_rate) in x moves every feature one column to the right."""
    torch.manual_seed(2)
    layer = SynthesisInput(w_dim=4, channels=6, size=16, sampling_rate=16, bandwidth=2)
    w = torch.randn(2, 4)
    before = layer(w)
    with torch.no_grad():
        layer.transform[0, 2] = -1 / 16
    after = layer(w)
    torch.testing.assert_close(after[..., 1:], before[..., :-1], atol=1e-5, rtol=0)
    assert (after[..., 0] - before[..., 0]).abs().max() > 1e-2  # the new column is new content


# ------------------------------------------------------------------ modulated convolution and magnitude EMA
def explicit_modulated_conv(x, weight, styles, gain, demodulate, padding):
    """Per sample in float64: w_oik / rms_o(w) * s_i / rms(s), divided by sqrt(sum_ik (.)^2 + 1e-8)
    when demodulating (StyleGAN2 Eq. 3), times the input gain, then a plain convolution."""
    x, weight, styles = x.double(), weight.double(), styles.double()
    out = []
    for n in range(x.shape[0]):
        w = weight
        s = styles[n]
        if demodulate:
            w = w / w.square().mean(dim=[1, 2, 3], keepdim=True).sqrt()
            s = s / styles.square().mean().sqrt()
        wn = w * s[None, :, None, None]
        if demodulate:
            wn = wn / (wn.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        out.append(F.conv2d(x[n:n + 1], wn * gain, padding=padding))
    return torch.cat(out)


@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("fused", [True, False])
def test_modulated_conv_is_the_per_sample_formula(demodulate, fused):
    torch.manual_seed(3)
    x, weight, styles = torch.randn(3, 5, 7, 7), torch.randn(4, 5, 3, 3), torch.randn(3, 5)
    gain = torch.tensor(0.7)
    ours = modulated_conv(x, weight, styles, gain, demodulate=demodulate, padding=2, fused=fused)
    expected = explicit_modulated_conv(x, weight, styles, 0.7, demodulate, 2)
    torch.testing.assert_close(ours.double(), expected, atol=1e-5, rtol=1e-5)


def test_the_magnitude_ema_follows_the_mean_square_of_the_input_only_when_asked():
    schedule = layer_schedule(16, 3, 256, 16, num_layers=4, num_critical=1)
    layer = SynthesisLayer(schedule[0], schedule[1], w_dim=4, magnitude_ema_beta=0.9)
    x, w = torch.randn(2, schedule[0].channels, schedule[0].size, schedule[0].size) * 3, torch.randn(2, 4)
    layer(x, w)
    assert float(layer.magnitude_ema) == 1.0
    layer(x, w, update_emas=True)
    expected = 0.9 * 1.0 + 0.1 * float(x.double().square().mean())
    assert float(layer.magnitude_ema) == pytest.approx(expected, rel=1e-6)
    # The input is divided by sqrt(magnitude_ema): scaling x by k and the EMA by k^2 changes nothing
    # in a layer whose output is demodulated.
    scaled = SynthesisLayer(schedule[0], schedule[1], w_dim=4, magnitude_ema_beta=0.9)
    scaled.load_state_dict(layer.state_dict())
    scaled.magnitude_ema.mul_(4)
    torch.testing.assert_close(scaled(2 * x, w), layer(x, w), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------ translation equivariance of one layer
RATE, SIZE, CHANNELS, PERIOD = 16, 96, 8, 32  # samples per unit, side, channels, period in samples


def band_limited(shift: tuple[float, float]) -> torch.Tensor:
    """[1, C, SIZE, SIZE] float64: per channel six random cosines of frequencies k / PERIOD samples,
    |f| <= 3 (the layer's input cutoff is 4, its Nyquist rate 8), translated by ``shift`` units."""
    coords = (np.arange(SIZE) + 0.5 - SIZE / 2) / RATE
    y, x = np.meshgrid(coords, coords, indexing="ij")
    waves = [(kx, ky) for kx in range(-6, 7) for ky in range(-6, 7) if 0 < kx * kx + ky * ky <= 36]
    rng = np.random.default_rng(1)
    out = np.zeros((1, CHANNELS, SIZE, SIZE))
    for c in range(CHANNELS):
        for _ in range(6):
            kx, ky = waves[rng.integers(len(waves))]
            fx, fy = kx * RATE / PERIOD, ky * RATE / PERIOD
            out[0, c] += rng.normal() * np.cos(2 * np.pi * (fx * (x - shift[0]) + fy * (y - shift[1]))
                                                + rng.uniform(0, 2 * np.pi))
    return torch.from_numpy(out)


def fourier_shift(window: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """The ideal (band-limited) translation of a periodic window by (sx, sy) samples."""
    kx, ky = np.fft.fftfreq(window.shape[-1]), np.fft.fftfreq(window.shape[-2])
    phase = np.exp(-2j * np.pi * (kx[None, :] * sx + ky[:, None] * sy))
    return np.real(np.fft.ifft2(np.fft.fft2(window) * phase))


def shift_error_db(lrelu_upsampling: int, sx: float, sy: float) -> float:
    """PSNR-like figure, -20 log10(relative RMS error), of layer(shifted input) against the ideally
    shifted layer(input), over one period in the middle of the output (far from its borders)."""
    spec = lambda index: LayerSpec(index, 4.0, 6.0, RATE, 4.0, SIZE, CHANNELS, False)
    torch.manual_seed(4)
    layer = SynthesisLayer(spec(0), spec(1), w_dim=4, lrelu_upsampling=lrelu_upsampling).double()
    w = torch.randn(1, 4, dtype=torch.float64)
    lo = SIZE // 2 - PERIOD // 2
    with torch.no_grad():
        before = layer(band_limited((0, 0)), w)[0, :, lo:lo + PERIOD, lo:lo + PERIOD].numpy()
        after = layer(band_limited((sx / RATE, sy / RATE)), w)[0, :, lo:lo + PERIOD, lo:lo + PERIOD].numpy()
    expected = fourier_shift(before, sx, sy)
    return float(-10 * np.log10(((after - expected) ** 2).mean() / (expected ** 2).mean()))


def test_a_layer_is_equivariant_to_integer_shifts_exactly():
    assert shift_error_db(2, 1, 0) > 250 and shift_error_db(2, 2, 3) > 250  # float64 rounding only


@pytest.mark.parametrize("sx, sy", [(0.5, 0), (0.5, 0.5), (0.25, 0.75)])
def test_a_layer_is_equivariant_to_sub_pixel_shifts_and_the_unfiltered_nonlinearity_is_not(sx, sy):
    """Section 3.2: the leaky ReLU at twice the rate between the low-pass filters keeps the output
    band-limited, so shifting the input by a fraction of a pixel shifts the output alike; the same
    layer with the non-linearity at the sampling rate (lrelu_upsampling 1, no filters) aliases."""
    filtered, unfiltered = shift_error_db(2, sx, sy), shift_error_db(1, sx, sy)
    assert filtered > 45, filtered  # 50-88 dB
    assert unfiltered < 32 and filtered - unfiltered > 20, (filtered, unfiltered)  # 22-30 dB


# ------------------------------------------------------------------ the generator in core's interface
def test_the_generator_has_the_schedules_layers_and_core_interface():
    G = tiny_generator()
    names = [spec.name for spec in layer_schedule(16, 3, 256, 16, num_layers=4, num_critical=1)]
    assert G.synthesis.layer_names == names and G.num_ws == 6 and G.mapping.num_ws == 6
    images = G(torch.randn(2, 16))
    assert images.shape == (2, 3, 16, 16) and images.dtype == torch.float32
    R = tiny_generator("stylegan3-r")
    assert all(layer.conv_kernel == 1 for layer in R.synthesis.layers())
    assert [layer.down_filter.ndim for layer in R.synthesis.layers() if layer.down_filter is not None] == [2, 2, 2, 1]
    layers = synthesis_layers(G)  # core's analysis tools see the style layers, not to-RGB
    assert [layer.name for layer in layers] == [f"synthesis.{name}" for name in names[:-1]]
    assert [layer.resolution for layer in layers] == [spec.size for spec in layer_schedule(16, 3, 256, 16, 4, 1)][:-1]


@pytest.mark.parametrize("options, message", [
    (dict(normalization="adain"), "normalization to demod"),
    (dict(use_noise=True), "use_noise to false"),
    (dict(progressive=True), "does not grow"),
])
def test_options_it_cannot_honour_are_refused_with_the_fix(options, message):
    with pytest.raises(ValueError, match=message):
        tiny_generator(**options)


def test_an_unknown_synthesis_option_names_the_key_and_the_closest_option():
    with pytest.raises(ConfigError, match=r"model.generator.synthesis_options.*'num_layer'.*did you mean 'num_layers'"):
        tiny_generator(synthesis_options={"num_layer": 4})
    with pytest.raises(ConfigError, match=r"synthesis_options.margin_size.*expects int"):
        tiny_generator(synthesis_options={"margin_size": "wide"})


def test_training_moves_the_magnitude_emas_in_the_d_main_pass_and_g_ema_follows(tmp_path):
    torch.manual_seed(0)
    options = dict(TINY)
    model = StyleGAN2(resolution=16, channels=1, total_kimg=0.012, style_mixing_prob=0.0,
                      generator=GeneratorOptions(topology="stylegan3-t", **options),
                      discriminator=DiscriminatorOptions(channel_base=64, channel_max=16, mbstd_group_size=2,
                                                         mapping_layers=2))
    calls = []
    synthesis_forward = model.G.synthesis.forward
    model.G.synthesis.forward = lambda ws, **kw: (calls.append(kw.get("update_emas")), synthesis_forward(ws, **kw))[1]
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=-1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
                         limit_val_batches=0, default_root_dir=tmp_path)
    trainer.fit(model, ImageDataModule(resolution=16, channels=1, batch_size=4, max_images=32, val_images=4, seed=0))
    assert model.counters["g_steps"] == 3
    assert calls.count(True) == 3  # one D main pass per step
    emas = [float(layer.magnitude_ema) for layer in model.G.synthesis.layers()]
    assert all(value != 1.0 for value in emas)
    # G_ema copies G's buffers (NVlabs copies them too): the same magnitudes.
    assert [float(layer.magnitude_ema) for layer in model.G_ema.synthesis.layers()] == emas


def test_the_analysis_commands_run_on_a_stylegan3_checkpoint(tmp_path):
    """``analyze layers / features / rates / ablate`` (core's tools, unchanged) on a tiny stylegan3-t
    checkpoint: the layers are the schedule's, the activation rates have the layers' map shapes."""
    import json
    import subprocess
    import sys

    from lightning_stylegan.network_files import write_checkpoint

    torch.manual_seed(0)
    module = StyleGAN2(resolution=16, channels=3, generator=GeneratorOptions(topology="stylegan3-t", **TINY),
                       discriminator=DiscriminatorOptions(channel_base=256, channel_max=16))
    ckpt = str(write_checkpoint(tmp_path / "sg3.ckpt", dict(module.hparams), module.G, module.D, module.G_ema, "tests"))

    def analyze(*args: str) -> str:
        outdir = [] if args[0] == "layers" else ["--outdir", str(tmp_path / args[0])]
        done = subprocess.run([sys.executable, "-m", "lightning_stylegan.cli", "analyze", *args, "--ckpt", ckpt,
                               *outdir], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    listing = analyze("layers")
    for name in module.G.synthesis.layer_names[:-1]:
        assert name in listing
    assert module.G.synthesis.layer_names[-1] not in listing  # to-RGB is not a style layer
    analyze("features", "--seed", "1")
    analyze("rates", "--num", "16", "--batch", "8")
    rates = np.load(tmp_path / "rates" / "rates.npz")
    for index, layer in enumerate(module.G.synthesis.blocks()):
        assert rates[f"counts_{index}"].shape == (layer.out_channels, layer.out_size, layer.out_size)
    analyze("ablate", "--seeds", "0-1", "--rates", str(tmp_path / "rates" / "rates.npz"), "--layers", "0,1")
    assert json.loads((tmp_path / "ablate").joinpath(next(p.name for p in (tmp_path / "ablate").glob("*.json"))).read_text())


def test_synthesis_options_typed_on_the_command_line_are_stored_as_the_values_they_spell():
    """``--model.generator.synthesis_options.num_layers 4`` arrives as the string '4': the checkpoint
    records 4, so a recipe that writes 4 resumes it."""
    options = dict(TINY, synthesis_options={"num_layers": "4", "num_critical": "1", "magnitude_ema_beta": "0.99"})
    model = StyleGAN2(resolution=16, channels=1, generator=GeneratorOptions(topology="stylegan3-t", **options))
    expected = {"num_layers": 4, "num_critical": 1, "magnitude_ema_beta": 0.99}
    assert model.hparams["generator"]["synthesis_options"] == expected
    assert model.G.init_kwargs["synthesis_options"] == expected
    assert model.G.synthesis.L0_36_16.magnitude_ema_beta == 0.99


def test_projection_into_w_works_on_a_stylegan3_generator():
    """Core's ``project`` (StyleGAN2 Appendix D) unchanged: a generator without noise maps
    optimizes w alone and gets closer to an image the generator made."""
    from lightning_stylegan.images import to_uint8
    from lightning_stylegan.tools.project import project, w_statistics

    class SquaredDistance(torch.nn.Module):  # a stand-in for LPIPS (no weights offline)
        def forward(self, a, b):
            return (a - b).square().mean(dim=[1, 2, 3])

    G = tiny_generator(resolution=16).eval()
    with torch.no_grad():
        target = to_uint8(G(torch.randn(1, 16, generator=torch.Generator().manual_seed(7))))[0]
    result = project(G, target, SquaredDistance(), num_steps=40, w_avg_samples=200, progress=False)
    with torch.no_grad():
        w_avg, _ = w_statistics(G, 200)  # where the optimization starts
        start = SquaredDistance()(target[None].float() / 127.5 - 1, G.synthesis(w_avg.expand(1, G.num_ws, -1)))
    assert result.noise == {} and result.ws.shape == (G.num_ws, 16)
    assert result.distance < 0.7 * float(start)
