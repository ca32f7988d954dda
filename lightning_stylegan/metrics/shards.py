"""Metric work split over the processes of a ``torch.distributed`` group, with results that do not
depend on how many processes there are.

A metric of ``num_items`` items (images, paths, distance rows) in batches of ``batch_size`` gives
batch j, items ``j * batch_size`` up to ``min((j + 1) * batch_size, num_items)``, to rank
``j % world_size``. Each rank computes its batches; ``Shards.gather`` all-gathers their rows and
puts them in item order on every rank, so every rank holds the same values and any reduction it
then makes in item order gives the same bits everywhere. Random draws are seeded per batch
(``batch_generator(seed, j)``, ``batch_seed``), so item i is the same image with 1 process or 8.

This is the division of NVlabs' stylegan2-ada-pytorch ``metrics/metric_utils.py`` (every GPU
generates a share of the batches, the features of all of them reach every GPU), except that the
shares are exchanged once, when a rank has computed all of its batches, instead of after every
batch, and that the sample streams are seeded per batch, where NVlabs' depend on the GPU count.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

LATENTS, NOISE = 0, 1  # the streams of a batch: latents and labels; the generator's synthesis noise
_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.uint8,
           torch.bool)
_MAX_DIMS = 6


def batch_seed(seed: int, batch: int, stream: int = LATENTS) -> int:
    """The seed of ``stream`` of batch ``batch`` of a metric seeded with ``seed``: numpy's
    ``SeedSequence`` of the three numbers, so nearby seeds and batches give unrelated streams, and
    the same one on whichever rank computes the batch."""
    if seed < 0:
        raise ValueError(f"The metric seed must be a non-negative integer, got {seed}")
    return int(np.random.SeedSequence([seed, batch, stream]).generate_state(1, np.uint64)[0])


def batch_generator(seed: int, batch: int, stream: int = LATENTS) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``batch_seed(seed, batch, stream)``."""
    return torch.Generator().manual_seed(batch_seed(seed, batch, stream))


class Shards:
    """Which batches this process computes (``batches``) and every rank's results in item order
    (``gather``). ``Shards()`` is a single process; ``Shards.from_process_group()`` the ranks of
    the initialized default process group. ``device`` carries the collectives (CPU for gloo, this
    rank's GPU for nccl); gathered tensors are returned on the CPU. ``poll``, if given, is called
    between rounds of batches (``polled``) and may raise to abandon the work, e.g. a training run's
    stop request (``training.preemption``).
    """

    def __init__(self, rank: int = 0, world_size: int = 1, device: str | torch.device = "cpu", poll=None):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"Shards needs 0 <= rank < world_size, got rank {rank} of {world_size}")
        self.rank, self.world_size, self.device = rank, world_size, torch.device(device)
        self.poll = poll

    @classmethod
    def from_process_group(cls, device: str | torch.device | None = None, poll=None) -> Shards:
        """The default process group's rank and size (``Shards(poll=poll)`` when torch.distributed
        is not initialized). ``device`` defaults to the current CUDA device under nccl, else the CPU."""
        if not (dist.is_available() and dist.is_initialized()):
            return cls(poll=poll)
        if device is None:
            device = torch.device("cuda", torch.cuda.current_device()) if "nccl" in str(dist.get_backend()) else "cpu"
        return cls(dist.get_rank(), dist.get_world_size(), device, poll)

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the one that shows progress and writes files."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f"Shards(rank={self.rank}, world_size={self.world_size}, device={str(self.device)!r})"

    def all_batches(self, num_items: int, batch_size: int) -> list[tuple[int, int, int]]:
        """``(j, start, stop)`` of every batch of the split, in order."""
        if num_items < 1 or batch_size < 1:
            raise ValueError(f"Shards split num_items >= 1 items in batches of batch_size >= 1, got "
                             f"{num_items} and {batch_size}")
        return [(j, start, min(start + batch_size, num_items))
                for j, start in enumerate(range(0, num_items, batch_size))]

    def batches(self, num_items: int, batch_size: int) -> list[tuple[int, int, int]]:
        """``(j, start, stop)`` of the batches this rank computes: those with j % world_size == rank."""
        return [batch for batch in self.all_batches(num_items, batch_size)
                if batch[0] % self.world_size == self.rank]

    def polled(self, items, num_items: int, batch_size: int):
        """Yield ``items`` (one per batch of ``batches(num_items, batch_size)``), calling ``poll``
        once per round of ``world_size`` batches: before each of this rank's batches, and once more
        at the end on a rank that has no batch in the last round. So every rank calls it equally
        often, in the same order, and a poll may be a collective."""
        rounds = -(-len(self.all_batches(num_items, batch_size)) // self.world_size)
        for item in items:
            if self.poll is not None:
                self.poll()
            rounds -= 1
            yield item
        for _ in range(rounds if self.poll is not None else 0):
            self.poll()

    def progress_bar(self, batches: list[tuple[int, int, int]], show: bool = True, **options) -> tqdm:
        """A tqdm bar (``options``: desc, unit, ...) over the items of ``batches`` (this rank's, from
        ``batches``), shown on rank 0 only and only with ``show``."""
        return tqdm(total=sum(stop - start for _, start, stop in batches), disable=not show or not self.is_main,
                    **options)

    def gather(self, results: list[torch.Tensor], num_items: int, batch_size: int) -> torch.Tensor:
        """The rows of every rank's batches, [num_items, ...] in item order, on every rank (CPU).

        ``results``: one tensor per batch of ``batches(num_items, batch_size)``, in that order,
        with one row per item of its batch.
        """
        mine = self.batches(num_items, batch_size)
        if len(results) != len(mine) or any(len(r) != stop - start for r, (_, start, stop) in zip(results, mine)):
            raise ValueError(f"Shards.gather needs one result per batch of rank {self.rank} ({len(mine)}) with a "
                             f"row per item, got {len(results)} results of {[len(r) for r in results]} rows")
        local = torch.cat([r.detach() for r in results]) if results else None
        return self.in_item_order(self.all_gather(local), num_items, batch_size)

    def gather_batches(self, values: list[torch.Tensor], num_items: int, batch_size: int) -> torch.Tensor:
        """One value per batch (``values``: a tensor per batch of ``batches(num_items, batch_size)``,
        in that order), stacked [num_batches, ...] in batch order on every rank (CPU)."""
        num_batches = len(self.all_batches(num_items, batch_size))
        return self.gather([value[None] for value in values], num_batches, 1)  # batch j: the same rank

    def in_item_order(self, per_rank: list[torch.Tensor | None], num_items: int, batch_size: int) -> torch.Tensor:
        """Interleave the rows of each rank's batches (``per_rank[r]``: rank r's rows, its batches in
        order) back into item order."""
        taken = [0] * self.world_size
        rows = []
        for j, start, stop in self.all_batches(num_items, batch_size):
            rank = j % self.world_size
            rows.append(per_rank[rank][taken[rank]:taken[rank] + stop - start])
            taken[rank] += stop - start
        return torch.cat(rows)

    def all_gather(self, tensor: torch.Tensor | None) -> list[torch.Tensor | None]:
        """Every rank's ``tensor`` in rank order, on the CPU; None for a rank that has none. Shapes
        may differ between ranks, the dtype may not. Every rank must call it, in the same order."""
        if self.world_size == 1:
            return [None if tensor is None else tensor.detach().cpu()]
        header = torch.zeros(3 + _MAX_DIMS, dtype=torch.int64)  # [present, dtype, ndim, shape...]
        if tensor is not None:
            if tensor.dtype not in _DTYPES or tensor.ndim > _MAX_DIMS:
                raise ValueError(f"Shards.all_gather takes tensors of at most {_MAX_DIMS} dimensions of a dtype in "
                                 f"{_DTYPES}, got {tensor.dtype} {tuple(tensor.shape)}")
            header[:3] = torch.tensor([1, _DTYPES.index(tensor.dtype), tensor.ndim])
            header[3:3 + tensor.ndim] = torch.tensor(tensor.shape)
        headers = [h.cpu() for h in self._all_gather_equal(header)]
        present = [h for h in headers if h[0]]
        if not present:
            return [None] * self.world_size
        if len({int(h[1]) for h in present}) > 1:
            raise ValueError(f"Shards.all_gather got tensors of different dtypes from the ranks: "
                             f"{[_DTYPES[int(h[1])] for h in present]}")
        dtype = _DTYPES[int(present[0][1])]
        shapes = [tuple(h[3:3 + int(h[2])].tolist()) if h[0] else None for h in headers]
        sizes = [int(np.prod(shape)) if shape is not None else 0 for shape in shapes]
        wire = torch.uint8 if dtype == torch.bool else dtype  # nccl has no bool
        flat = torch.zeros(max(sizes), dtype=wire, device=self.device)
        if tensor is not None:
            flat[:tensor.numel()] = tensor.detach().reshape(-1).to(self.device, wire)
        gathered = self._all_gather_equal(flat)
        return [None if shape is None else g[:size].cpu().to(dtype).reshape(shape)
                for g, shape, size in zip(gathered, shapes, sizes)]

    def every_rank(self, flag: bool) -> bool:
        """Whether ``flag`` is true on every rank (the same answer on all of them)."""
        return all(bool(t.item()) for t in self.all_gather(torch.tensor([bool(flag)])))

    def _all_gather_equal(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        tensor = tensor.to(self.device)
        out = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(out, tensor)
        return out
