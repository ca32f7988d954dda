"""``blur`` augmentation plugin: StyleGAN3-R's blur of every image D sees, fading out early in
training, followed by another augmentation plugin (``ada`` in NVlabs' ``--cfg stylegan3-r``).

Karras et al. 2021 (*Alias-Free Generative Adversarial Networks*, configuration R): the images D
sees, reals and fakes, are blurred with a Gaussian-like filter whose width fades to 0 over the first
kimg of training, so that the rotation-equivariant G is not pushed toward high frequencies before it
can make them. As NVlabs' ``training/loss.py`` and ``train.py`` compute it, with n real images
shown so far:

    sigma(n) = max(1 - n / (fade_kimg * 1000), 0) * sigma_init      (0 when fade_kimg = 0)
    f(x)     = 2 ** (-(x / sigma) ** 2) / sum_x' 2 ** (-(x' / sigma) ** 2),   x = -r .. r,  r = floor(3 sigma)

(sigma is the half width at half maximum: f(sigma) = f(0) / 2), applied along both axes with zero
padding, so the image keeps its size; r = 0 (sigma < 1/3) leaves the images as they are. NVlabs'
stylegan3-r uses sigma_init 10 px and fade_kimg = batch * 200 / 32; a run started from other
weights (``model.init_from``, NVlabs' ``--resume``) does not blur.

The blur runs before the inner augmentation, as NVlabs' ``run_D`` blurs before its augment pipe.
The inner plugin's probability is this plugin's ``p``: the buffer ``augment.p`` that core saves,
resumes, reports and lets the ``ada`` controller tune (when the inner plugin is adaptive), copied
into the inner plugin at every call. The blur width follows ``set_progress``, which the training
module calls with its checkpointed image counter at every step, so the plugin holds no state of
its own and a resumed run blurs exactly as an uninterrupted one.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lightning_stylegan import registry
from lightning_stylegan.augmentations.base import Augmentation
from lightning_stylegan.plugin_options import bind_options


def blur_sigma(images_seen: int, sigma: float, fade_kimg: float) -> float:
    """The blur's sigma after ``images_seen`` real images (NVlabs' ``blur_sigma``)."""
    if fade_kimg <= 0:
        return 0.0
    return max(1 - images_seen / (fade_kimg * 1e3), 0) * sigma


def blur_filter(sigma: float, device: torch.device | str | None = None) -> torch.Tensor | None:
    """The normalized 1-D taps ``2 ** (-(x / sigma) ** 2)``, x = -floor(3 sigma) .. floor(3 sigma),
    in float32 as NVlabs computes them; None when floor(3 sigma) = 0 (no blur)."""
    radius = math.floor(sigma * 3)
    if radius <= 0:
        return None
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device).div(sigma).square().neg().exp2()
    return taps / taps.sum()


def blur(images: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """``images`` [N, C, H, W] filtered with ``taps`` along the width, then the height, each channel
    on its own, zero-padded to keep the size (NVlabs' ``upfirdn2d.filter2d`` with 1-D taps).
    Two depthwise convolutions: differentiable twice, as R1 through D's input needs."""
    channels, size = images.shape[1], taps.numel()
    taps = taps.to(images.dtype)
    x = F.conv2d(images, taps.reshape(1, 1, 1, size).repeat(channels, 1, 1, 1), padding=(0, size // 2),
                 groups=channels)
    return F.conv2d(x, taps.reshape(1, 1, size, 1).repeat(channels, 1, 1, 1), padding=(size // 2, 0),
                    groups=channels)


class Blur(Augmentation):
    """StyleGAN3-R's fading blur of D's inputs, then the augmentation plugin ``augment``.

    Args:
        sigma: the blur's initial sigma in pixels (NVlabs' ``blur_init_sigma``: 10 for stylegan3-r).
        fade_kimg: thousands of real images over which sigma fades linearly to 0 (NVlabs:
            batch * 200 / 32); 0 = no blur.
        augment: the augmentation plugin applied after the blur (``none``, ``ada``, ``diffaugment``
            or an installed one); ``ada`` as NVlabs' stylegan3-r with its default ``--aug ada``.
        augment_options: that plugin's options, but ``p``.
        p: the inner plugin's probability; here it fixes p, without it the ``ada`` controller tunes
            p when the inner plugin is adaptive.
    """

    api_version = 1
    description = "StyleGAN3-R's fading blur of D's inputs, then another augmentation plugin"

    def __init__(self, sigma: float = 10.0, fade_kimg: float = 200.0, augment: str = "none",
                 augment_options: dict | None = None, p: float = 0.0):
        super().__init__(p)
        if not (math.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"blur: sigma must be a number of pixels >= 0 (stylegan3-r: 10), got {sigma}")
        if not (math.isfinite(fade_kimg) and fade_kimg >= 0):
            raise ValueError(f"blur: fade_kimg must be >= 0 kimg (stylegan3-r: batch * 200 / 32), got {fade_kimg}")
        if augment == "blur":
            raise ValueError("blur: augment names the augmentation applied after the blur; it cannot "
                             "be 'blur' itself (use 'none', 'ada', 'diffaugment' or another plugin)")
        options = dict(augment_options or {})
        if "p" in options:
            raise ValueError(f"blur: set p in model.augment_options, not in its augment_options: the "
                             f"plugin {augment!r} after the blur uses blur's p (augment.p, tuned by ada)")
        try:
            inner = registry.load("augmentation", augment)
        except registry.PluginError as error:
            raise ValueError(f"blur: augment (the plugin after the blur): {error}") from error
        options = bind_options(inner, options, key="model.augment_options.augment_options",
                               label=f"the augmentation plugin {augment!r} after 'blur'")
        self.inner = inner(**options)
        # One p: this module's buffer. The inner plugin's copy is no part of the saved state.
        self.inner.register_buffer("p", self.inner.p, persistent=False)
        self.adaptive = bool(getattr(self.inner, "adaptive", False))
        self.sigma_init, self.fade_kimg = float(sigma), float(fade_kimg)
        self.images_seen, self.transfer = 0, False

    @property
    def sigma(self) -> float:
        """The blur's sigma now: 0 in a run started from other weights, as NVlabs' ``--resume``."""
        return 0.0 if self.transfer else blur_sigma(self.images_seen, self.sigma_init, self.fade_kimg)

    def set_progress(self, images_seen: int, transfer: bool) -> None:
        self.images_seen, self.transfer = int(images_seen), bool(transfer)
        self.inner.set_progress(images_seen, transfer)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        taps = blur_filter(self.sigma, images.device)
        if taps is not None:
            images = blur(images, taps)
        self.inner.p.copy_(self.p)
        return self.inner(images)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma_init:g}, fade_kimg={self.fade_kimg:g}, sigma_now={self.sigma:g}"
