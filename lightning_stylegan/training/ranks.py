"""Callback state that each DDP process keeps for itself, saved so that a resume is exact.

Path length's running target ``pl_mean`` is updated by each rank from its own lengths (as in
NVlabs' code, where every GPU keeps its own), and ADA's controller gathers the signs of its own
rank's reals between updates. A checkpoint written by rank 0 alone would hand rank 0's values to
every rank on resume, and the resumed run would drift from the uninterrupted one. ``every_rank``
gathers a value from all ranks when the checkpoint is built (every rank builds it), and
``this_ranks`` gives each rank its own back.
"""
from __future__ import annotations

import torch.distributed as dist


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the world size (0 and 1 without torch.distributed)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def every_rank(value):
    """``value`` (picklable: a float, a list of floats) of every rank, in rank order. A collective:
    every rank must call it at the same point."""
    _, world = rank_and_world()
    if world == 1:
        return [value]
    gathered = [None] * world
    dist.all_gather_object(gathered, value)
    return gathered


def this_ranks(per_rank: list | None):
    """This rank's entry of ``per_rank`` (saved by ``every_rank``); None when there is no list (a
    checkpoint of an older version) or it was saved by another world size."""
    rank, world = rank_and_world()
    return per_rank[rank] if per_rank is not None and len(per_rank) == world else None
