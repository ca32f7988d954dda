"""A callback the multi-node tests load by class path (``cluster_probe.ClusterProbe``, with tests/ on
PYTHONPATH): each process writes where Lightning placed it (global, local and node rank, world
size, the cluster environment it detected) and what it trained on (the float64 sum of each of its
batches) to ``<out_dir>/rank<N>.json``."""
from __future__ import annotations

import json
from pathlib import Path

from lightning.pytorch import Callback

from ddp_probe import digest


class ClusterProbe(Callback):
    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.batch_sums: list[float] = []
        self.batch_sizes: list[int] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.batch_sums.append(float(batch[0].double().sum()))
        self.batch_sizes.append(int(batch[0].shape[0]))

    def on_train_end(self, trainer, module) -> None:
        record = {
            "global_rank": trainer.global_rank, "local_rank": trainer.local_rank, "node_rank": trainer.node_rank,
            "world_size": trainer.world_size, "num_nodes": trainer.num_nodes,
            "environment": type(getattr(trainer.strategy, "cluster_environment", None)).__name__,
            "counters": dict(module.counters), "batch_sums": self.batch_sums, "batch_sizes": self.batch_sizes,
            "params": {net: digest(getattr(module, net).named_parameters()) for net in ("G", "D", "G_ema")},
        }
        path = Path(self.out_dir) / f"rank{trainer.global_rank}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1))
