"""The interface of a growth plugin: training resolution and fade-in as a function of images shown.

A growth plugin is a subclass of ``GrowthSchedule`` with ``api_version`` and ``description``. The
training loop asks ``state(kimg)`` with its own counter of images shown (in thousands), never
Lightning's ``global_step``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class GrowthState:
    """Where a schedule is at one point of training.

    ``alpha`` blends the newest resolution in (0: only the up-sampled lower resolution, 1: only the
    new layers); ``lr_scale`` multiplies the base learning rates; ``batch_size`` None keeps the
    configured one.
    """

    resolution: int
    alpha: float = 1.0
    lr_scale: float = 1.0
    batch_size: int | None = None


class GrowthSchedule:
    """Base class of growth plugins; ``final_resolution`` is the network's output resolution.

    ``progressive`` says whether the schedule ever trains below the final resolution: then G and
    D are built with a to-RGB / fromRGB layer at every resolution. Batch sizes are per device.
    """

    description = ""
    progressive = False

    def __init__(self, final_resolution: int):
        self.final_resolution = final_resolution

    reset_optimizer = False  # clear the Adam moments of G and D whenever floor(lod) or ceil(lod) changes

    def state(self, kimg: float) -> GrowthState:
        raise NotImplementedError(f"{type(self).__name__} must implement state()")

    def lod(self, state: GrowthState) -> float:
        """NVlabs' level of detail: log2(final / resolution), plus 1 - alpha while fading in."""
        return math.log2(self.final_resolution / state.resolution) + 1 - state.alpha
