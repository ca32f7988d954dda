"""Hyper-parameters that follow the images seen: a number, or a ``Schedule`` from a start to an end
value (R3GAN, Huang et al. 2024, Section 4 / its ``train.py``: learning rate, gamma, Adam's beta2,
EMA length and augmentation probability annealed with a cosine over a number of images).

A schedule is keyed on the training module's checkpointed ``images_seen``, never on Lightning's
step counters, so a resumed run takes the value an uninterrupted one would. In a recipe::

    model:
      g_lr: {start: 2.0e-4, end: 5.0e-5, kimg: 20000}                 # cosine by default
      ema_kimg: {kind: linear, start: 0, end: 500, kimg: 20000}
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal, Union

from ..errors import ConfigError


@dataclass
class Schedule:
    """A value moving from ``start`` to ``end`` over the first ``kimg`` thousand images, then ``end``.

    With t = min(images / (1000 kimg), 1):
    ``constant``: start; ``linear``: start + (end - start) t;
    ``cosine``: start + (end - start) (1 - cos(pi t)) / 2 (R3GAN's ``cosine_decay_with_warmup``
    without warm-up: flat at both ends).
    """

    start: float
    end: float
    kimg: float
    kind: Literal["constant", "linear", "cosine"] = "cosine"

    def __post_init__(self):
        if self.kind not in ("constant", "linear", "cosine"):
            raise ValueError(f"a schedule's kind is constant, linear or cosine, got {self.kind!r}")
        if not self.kimg > 0:
            raise ValueError(f"a schedule's kimg must be > 0, got {self.kimg}")

    def at(self, images_seen: int) -> float:
        t = min(images_seen / (self.kimg * 1000), 1.0)
        if self.kind == "constant":
            return float(self.start)
        if self.kind == "linear":
            return self.start + (self.end - self.start) * t
        return self.start + (self.end - self.start) * (1 - math.cos(math.pi * t)) / 2


Scheduled = Union[float, Schedule]


def as_scheduled(value, name: str) -> float | Schedule:
    """A number, or a ``Schedule`` from one or a mapping of its fields (a checkpoint's
    hyper-parameters keep schedules as plain dicts); ``name`` is the option, for the message."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, dict):
        try:
            return Schedule(**value)
        except TypeError as error:
            raise ConfigError(f"{name}: a schedule has the fields start, end, kimg and kind "
                              f"(constant, linear, cosine), got {value}") from error
        except ValueError as error:
            raise ConfigError(f"{name}: {error}") from error
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number or a schedule {{start, end, kimg, kind}}, got {value!r}")
    return float(value)


def value_at(value: float | Schedule, images_seen: int) -> float:
    """The hyper-parameter's value after ``images_seen`` real images."""
    return value.at(images_seen) if isinstance(value, Schedule) else float(value)


def as_hparam(value: float | Schedule):
    """A number, or the schedule as a plain dict (checkpoints load with ``weights_only=True``)."""
    return asdict(value) if isinstance(value, Schedule) else value


def bounds(value: float | Schedule) -> tuple[float, float]:
    """The smallest and largest value the hyper-parameter takes."""
    if isinstance(value, Schedule):
        ends = (value.start, value.start) if value.kind == "constant" else (value.start, value.end)
        return min(ends), max(ends)
    return float(value), float(value)
