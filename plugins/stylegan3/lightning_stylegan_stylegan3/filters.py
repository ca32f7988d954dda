"""Low-pass filter design of StyleGAN3 (Karras et al. 2021, Section 3 and Appendix C; NVlabs'
``SynthesisLayer.design_lowpass_filter``).

* Separable (stylegan3-t): the Kaiser-windowed sinc, h[n] = (2 f_c / f_s) sinc(2 f_c / f_s
  (n - (N - 1) / 2)) w[n], with the Kaiser window w of the beta that Kaiser's formulas give for a
  transition band of ``width`` (Hz, in the units of ``fs``), normalized to a DC gain of 1.
* Radial (stylegan3-r's down-sampling): the jinc, h(r) = J1(2 pi f_c r) / (pi r), on the 2-D grid
  of the same taps, windowed by the outer product of the same Kaiser window, normalized to sum 1.
"""
from __future__ import annotations

import math

import numpy as np


def kaiser_attenuation(numtaps: int, width_nyquist: float) -> float:
    """Kaiser's estimate of the stop-band attenuation (dB) of a ``numtaps`` filter whose
    transition band is ``width_nyquist`` (a fraction of the Nyquist frequency)."""
    return 2.285 * (numtaps - 1) * math.pi * width_nyquist + 7.95


def kaiser_beta(attenuation: float) -> float:
    """Kaiser's window parameter for a stop-band attenuation in dB."""
    if attenuation > 50:
        return 0.1102 * (attenuation - 8.7)
    if attenuation > 21:
        return 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21)
    return 0.0


def kaiser_window(numtaps: int, width: float, fs: float) -> np.ndarray:
    return np.kaiser(numtaps, kaiser_beta(kaiser_attenuation(numtaps, width / (fs / 2))))


def design_lowpass(numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False) -> np.ndarray | None:
    """The filter taps in float64: [numtaps] (separable) or [numtaps, numtaps] (radial); None for
    one tap (the identity)."""
    if numtaps < 1:
        raise ValueError(f"numtaps must be >= 1, got {numtaps}")
    if numtaps == 1:
        return None
    window = kaiser_window(numtaps, width, fs)
    if not radial:
        n = np.arange(numtaps) - (numtaps - 1) / 2
        taps = 2 * cutoff / fs * np.sinc(2 * cutoff / fs * n) * window
        return taps / taps.sum()
    import scipy.special  # here, not at the top: `lightning-stylegan plugins` imports this module

    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    with np.errstate(invalid="ignore", divide="ignore"):
        taps = scipy.special.j1(2 * math.pi * cutoff * r) / (math.pi * r)
    taps[r == 0] = cutoff  # the limit at r = 0 (odd numtaps): J1(z) ~ z / 2
    taps *= np.outer(window, window)
    return taps / taps.sum()
