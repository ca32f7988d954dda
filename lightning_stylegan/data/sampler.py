"""An endless, resumable stream of dataset indices, split across ranks (as NVlabs' InfiniteSampler).

Pass p over the data visits ``randperm(N)`` drawn from a generator seeded with (seed, p); global
position i is element ``i % N`` of pass ``i // N``, and rank r of w takes positions r, r + w, ...
Starting at ``start`` (the number of images the run has already seen, over all ranks) therefore
continues a resumed run with exactly the images an uninterrupted run would have drawn.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


class InfiniteSampler(Sampler[int]):
    def __init__(self, size: int, seed: int = 0, rank: int = 0, world_size: int = 1, start: int = 0,
                 shuffle: bool = True):
        if size < 1:
            raise ValueError("InfiniteSampler needs a non-empty dataset")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.size, self.seed, self.rank, self.world_size = size, seed, rank, world_size
        self.start, self.shuffle = start, shuffle

    def order(self, data_pass: int) -> torch.Tensor:
        """The order of the dataset in one pass."""
        if not self.shuffle:
            return torch.arange(self.size)
        generator = torch.Generator().manual_seed(hash((self.seed, data_pass)) % 2 ** 63)
        return torch.randperm(self.size, generator=generator)

    def __iter__(self) -> Iterator[int]:
        position = self.start + self.rank
        data_pass, order = -1, None
        while True:
            if position // self.size != data_pass:
                data_pass = position // self.size
                order = self.order(data_pass)
            yield int(order[position % self.size])
            position += self.world_size


class StagedBatchSampler:
    """Batches of an ``InfiniteSampler`` whose size is ``batch_size_at(images seen)`` (progressive
    growing's batch size per resolution). The size is a function of the position in the stream
    (over all ranks), never of the training loop's state, so prefetching, ranks and resumed runs
    all cut the stream the same way."""

    def __init__(self, sampler: InfiniteSampler, batch_size_at):
        self.sampler, self.batch_size_at = sampler, batch_size_at

    def __iter__(self) -> Iterator[list[int]]:
        indices = iter(self.sampler)
        seen = self.sampler.start
        while True:
            size = self.batch_size_at(seen)
            yield [next(indices) for _ in range(size)]
            seen += size * self.sampler.world_size
