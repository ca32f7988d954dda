"""``none`` growth plugin: train at the final resolution from the start (StyleGAN2 configs E, F)."""
from .base import GrowthSchedule, GrowthState


class FixedResolution(GrowthSchedule):
    """No progressive growing: the final resolution, fully faded in, at every point of training."""

    api_version = 1

    def state(self, kimg: float) -> GrowthState:
        return GrowthState(resolution=self.final_resolution)
