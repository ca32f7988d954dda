"""``modulate`` normalization plugin: StyleGAN2 weight modulation without demodulation (Eq. 1
only), the ablation that shows what demodulation (Eq. 3) contributes.

Reference: 002_0a18e98dc55024d1.txt Section 2.2 and Appendix B.
"""
from .demod import Demodulation


class Modulation(Demodulation):
    """StyleGAN2 weight modulation without demodulation (Eq. 1 only)."""

    api_version = 1
    demodulate = False
