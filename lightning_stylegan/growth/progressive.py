"""``progressive`` growth plugin: the progressive-growing schedule of PGGAN and StyleGAN v1, as
used by configs A-D of 002_0a18e98dc55024d1.txt (Appendix B: "start at 8^2 resolution ..., train
for 600k images per resolution, fade in next resolution for 600k images").

Timeline in thousands of images: ``phase_kimg`` at ``start_resolution``, then for each doubling
``fade_kimg`` of fade-in (alpha rising linearly from 0 to 1) followed by ``phase_kimg`` stable, and
the final resolution from then on. The state is a pure function of kimg, so a run resumed mid
fade-in continues at the same resolution and alpha.

``reset_optimizer`` (on by default, as NVlabs' TF StyleGAN and StyleGAN2 training loops have it:
``reset_opt_for_new_lod``) clears G's and D's Adam moments whenever new layers come in: when
floor(lod) or ceil(lod) changes, i.e. as a fade-in starts and as it ends (``GrowthSchedule.lod``).
Off keeps the moments across stages.
"""
from __future__ import annotations

import math

from .base import GrowthSchedule, GrowthState


class ProgressiveGrowing(GrowthSchedule):
    """PGGAN / StyleGAN v1 progressive growing: start at 8x8, 600 kimg per resolution, 600 kimg fade-in."""

    api_version = 1
    progressive = True

    def __init__(self, final_resolution: int, start_resolution: int = 8, phase_kimg: float = 600.0,
                 fade_kimg: float = 600.0, lr_scale: dict | None = None, batch_size: dict | None = None,
                 reset_optimizer: bool = True):
        super().__init__(final_resolution)
        self.reset_optimizer = reset_optimizer
        if start_resolution < 8 or start_resolution > final_resolution or start_resolution & (start_resolution - 1):
            raise ValueError(f"progressive: start_resolution must be a power of two between 8 and the "
                             f"final resolution {final_resolution}, got {start_resolution}")
        if phase_kimg < 0 or fade_kimg < 0:
            raise ValueError(f"progressive: phase_kimg and fade_kimg must be >= 0, got {phase_kimg}, {fade_kimg}")
        self.start_resolution, self.phase_kimg, self.fade_kimg = start_resolution, phase_kimg, fade_kimg
        self.lr_scale = _per_resolution("lr_scale", lr_scale, final_resolution, float)
        self.batch_size = _per_resolution("batch_size", batch_size, final_resolution, int)

    def state(self, kimg: float) -> GrowthState:
        resolution, alpha = self._resolution_alpha(kimg)
        return GrowthState(resolution, alpha, self.lr_scale.get(resolution, 1.0),
                           self.batch_size.get(resolution))

    def _resolution_alpha(self, kimg: float) -> tuple[int, float]:
        doublings = int(math.log2(self.final_resolution // self.start_resolution))
        t = kimg - self.phase_kimg
        if t < 0 or doublings == 0:
            return (self.start_resolution if doublings else self.final_resolution), 1.0
        stage, into = divmod(t, self.fade_kimg + self.phase_kimg)
        if stage >= doublings:
            return self.final_resolution, 1.0
        alpha = min(into / self.fade_kimg, 1.0) if self.fade_kimg > 0 else 1.0
        return self.start_resolution * 2 ** (int(stage) + 1), alpha


def _per_resolution(name: str, values: dict | None, final_resolution: int, kind) -> dict:
    """``{resolution: value}`` with int keys (YAML may give strings). Entries above the final
    resolution are allowed and never apply, so one recipe serves every output size."""
    checked = {}
    for key, value in (values or {}).items():
        resolution = int(key)
        if resolution & (resolution - 1) or resolution < 4:
            raise ValueError(f"progressive: {name} has resolution {key!r}; use powers of two "
                             f"(this network grows from 8 to {final_resolution})")
        checked[resolution] = kind(value)
    return checked
