"""Training progress is counted in images shown (thousands: kimg), as NVlabs counts it, never in
Lightning's ``global_step``. Shared by everything that acts "every N kimg" (sample grids,
checkpoints, metrics, tick lines), and the clock of the time such maintenance takes.
"""
from __future__ import annotations

import contextlib
import time
import weakref

_maintenance_seconds: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def crossed(before: int, after: int, every_kimg: float) -> bool:
    """Whether the images seen went past a multiple of ``every_kimg`` thousand in this step."""
    every = max(int(every_kimg * 1000), 1)
    return before // every != after // every


@contextlib.contextmanager
def maintenance(trainer):
    """Count the wall time of the enclosed work (sample grids, checkpoints, metrics) as the
    trainer's maintenance: the ``maintenance`` figure of NVlabs' tick line."""
    start = time.perf_counter()
    try:
        yield
    finally:
        _maintenance_seconds[trainer] = maintenance_seconds(trainer) + time.perf_counter() - start


def maintenance_seconds(trainer) -> float:
    """Seconds spent in ``maintenance(trainer)`` blocks so far."""
    return _maintenance_seconds.get(trainer, 0.0)
