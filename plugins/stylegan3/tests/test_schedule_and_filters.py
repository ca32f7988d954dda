"""StyleGAN3's layer schedule and filter design (Karras et al. 2021, Section 3.2, Figure 4,
Appendix C) against independent computations: NVlabs' released networks' layer names, scipy's
Kaiser-window FIR design, and the jinc's closed form."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import scipy.special

from lightning_stylegan_stylegan3.filters import design_lowpass, kaiser_beta
from lightning_stylegan_stylegan3.schedule import layer_schedule

# Layer attribute names in NVlabs' released pickles (``synthesis.L{i}_{size}_{channels}``).
NVLABS_T_256 = ["L0_36_512", "L1_36_512", "L2_36_512", "L3_52_512", "L4_52_512", "L5_84_512", "L6_84_512",
                "L7_148_512", "L8_148_512", "L9_148_362", "L10_276_256", "L11_276_181", "L12_276_128",
                "L13_256_128", "L14_256_3"]
NVLABS_R_1024 = ["L0_36_1024", "L1_36_1024", "L2_52_1024", "L3_52_1024", "L4_84_1024", "L5_148_1024",
                 "L6_148_1024", "L7_276_645", "L8_276_406", "L9_532_256", "L10_1044_161", "L11_1044_102",
                 "L12_1044_64", "L13_1024_64", "L14_1024_3"]


def test_layer_names_match_nvlabs_released_networks():
    assert [layer.name for layer in layer_schedule(256, 3)] == NVLABS_T_256
    assert [layer.name for layer in layer_schedule(1024, 3, channel_base=65536, channel_max=1024)] == NVLABS_R_1024


def test_the_1024_schedule_follows_the_papers_progression():
    """Figure 4 (1024 px, T): f_c from 2 to 512 and f_t from 2^2.1 to 512 * 2^0.3, geometric up to
    layer 12, then flat over the critically sampled layers; sampling rates 16 ... 1024."""
    layers = layer_schedule(1024, 3)
    assert layers[0].cutoff == 2 and layers[0].stopband == pytest.approx(2 ** 2.1)
    for i, layer in enumerate(layers[:13]):
        assert layer.cutoff == pytest.approx(2 * 256 ** (i / 12))
        assert layer.stopband == pytest.approx(2 ** 2.1 * (512 * 2 ** 0.3 / 2 ** 2.1) ** (i / 12))
    assert all(layer.cutoff == 512 and layer.critically_sampled for layer in layers[12:])
    assert [layer.sampling_rate for layer in layers] == [16, 16, 32, 32, 64, 128, 128, 256, 256, 512] + [1024] * 5
    for layer in layers:
        assert layer.sampling_rate >= min(2 * layer.stopband, 1024) > layer.sampling_rate / 2
        assert layer.half_width == pytest.approx(max(layer.stopband, layer.sampling_rate / 2) - layer.cutoff)


@pytest.mark.parametrize("numtaps, cutoff, width, fs", [(12, 2.0, 12.0, 32), (24, 128.0, 100.0, 1024), (6, 8, 16, 32)])
def test_separable_filter_is_scipys_kaiser_windowed_sinc(numtaps, cutoff, width, fs):
    ours = design_lowpass(numtaps, cutoff, width, fs)
    reference = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
    np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-15)
    assert kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2))) == \
        pytest.approx(scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2))))


def test_radial_filter_is_the_windowed_jinc():
    numtaps, cutoff, width, fs = 12, 64.0, 80.0, 256
    taps = design_lowpass(numtaps, cutoff, width, fs, radial=True)
    window = np.kaiser(numtaps, scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2))))
    expected = np.zeros((numtaps, numtaps))
    for i in range(numtaps):
        for j in range(numtaps):
            r = math.hypot((i - (numtaps - 1) / 2) / fs, (j - (numtaps - 1) / 2) / fs)
            expected[i, j] = scipy.special.j1(2 * math.pi * cutoff * r) / (math.pi * r) * window[i] * window[j]
    np.testing.assert_allclose(taps, expected / expected.sum(), rtol=1e-12)
    assert np.allclose(taps, taps.T) and np.allclose(taps, taps[::-1, ::-1])
    odd = design_lowpass(7, cutoff, width, fs, radial=True)
    assert np.isfinite(odd).all() and odd[3, 3] == odd.max()  # the centre tap's limit, J1(z) ~ z / 2


def test_one_tap_is_the_identity():
    assert design_lowpass(1, 2.0, 4.0, 16) is None
    with pytest.raises(ValueError, match="numtaps"):
        design_lowpass(0, 2.0, 4.0, 16)


def explicit_filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp):
    """The same op by loops over pixels, in float64: zero insertion, padding, convolution with the
    flipped 2-D filter, bias + leaky ReLU + gain + clamp, convolution, decimation."""
    x = x + b[None, :, None, None]
    n, c, h, w = x.shape
    upsampled = np.zeros((n, c, h * up, w * up))
    upsampled[:, :, ::up, ::up] = x
    x0, x1, y0, y1 = padding
    padded = np.pad(upsampled, ((0, 0), (0, 0), (y0, y1), (x0, x1)))

    def convolve(image, f):
        k = f.shape[0]
        out = np.zeros(image.shape[:2] + (image.shape[2] - k + 1, image.shape[3] - k + 1))
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                out[:, :, i, j] = (image[:, :, i:i + k, j:j + k] * f[::-1, ::-1]).sum(axis=(2, 3))
        return out

    y = convolve(padded, np.outer(fu, fu) * up ** 2)
    y = np.where(y >= 0, y, y * slope) * gain
    if clamp is not None:
        y = np.clip(y, -clamp, clamp)
    return convolve(y, fd if fd.ndim == 2 else np.outer(fd, fd))[:, :, ::down, ::down]


@pytest.mark.parametrize("up, down, padding, clamp, radial", [
    (2, 2, (5, 6, 5, 6), None, False), (4, 2, (9, 10, 7, 8), 0.5, False), (2, 1, (3, 4, 3, 4), None, False),
    (2, 2, (5, 6, 5, 6), None, True)])
def test_filtered_lrelu_equals_the_explicit_upsample_act_filter_downsample(up, down, padding, clamp, radial):
    """The filtered leaky ReLU (Section 3.2), separable or with stylegan3-r's radial down-sampling filter."""
    import torch

    from lightning_stylegan_stylegan3.filtered_lrelu import filtered_lrelu

    rng = np.random.default_rng(0)
    x, b = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal(3)
    fu = design_lowpass(6 * up, 3.0, 6.0, 8 * up)
    fd = design_lowpass(6 * down, 3.0, 6.0, 8 * up, radial=radial) if down > 1 else np.ones(1)
    ours = filtered_lrelu(torch.from_numpy(x), torch.from_numpy(fu), torch.from_numpy(fd), torch.from_numpy(b),
                          up=up, down=down, padding=padding, gain=math.sqrt(2), slope=0.2, clamp=clamp)
    expected = explicit_filtered_lrelu(x, fu, fd, b, up, down, padding, math.sqrt(2), 0.2, clamp)
    assert tuple(ours.shape) == expected.shape
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-10, atol=1e-12)
