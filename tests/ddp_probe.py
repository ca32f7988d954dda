"""A callback the DDP test in test_cli_fit.py loads by class path (``ddp_probe.ParamDigest``, with
tests/ on PYTHONPATH): each rank writes what it ended training with to ``<out_dir>/rank<N>.json``,
so the test can compare the ranks without reaching into the processes."""
from __future__ import annotations

import json
from pathlib import Path

from lightning.pytorch import Callback


def digest(tensors) -> dict[str, list[float]]:
    """float64 sum and sum of squares of each named tensor."""
    return {name: [float(t.detach().double().sum()), float(t.detach().double().square().sum())]
            for name, t in tensors}


class ParamDigest(Callback):
    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.first_batch_sum: float | None = None
        self.batches = 0
        self.augment_p: list[float] = []  # after each batch, before the next one's buffer broadcast
        self.local_signs: list[list[float]] = []  # this rank's [sum, count] of sign(D(real)) per batch

    def on_train_start(self, trainer, module) -> None:
        ada = module.ada_controller()
        if ada is not None:  # see the signs this rank gathers, before the controller reduces them
            record = ada.record

            def recording(real_logits):
                signs = real_logits.detach().sign()
                if len(self.local_signs) < self.batches:
                    self.local_signs.append([0.0, 0.0])
                self.local_signs[-1][0] += float(signs.sum())
                self.local_signs[-1][1] += signs.numel()
                record(real_logits)

            ada.record = recording

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if self.first_batch_sum is None:
            self.first_batch_sum = float(batch[0].double().sum())
        self.batches += 1

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.augment_p.append(float(module.augment.p))

    def on_train_end(self, trainer, module) -> None:
        record = {
            "global_rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "strategy": type(trainer.strategy).__name__,
            "find_unused_parameters": getattr(trainer.strategy, "_ddp_kwargs", {}).get("find_unused_parameters"),
            "counters": dict(module.counters),
            "first_batch_sum": self.first_batch_sum,
            "batches": self.batches,
            "augment_p": self.augment_p,
            "local_signs": self.local_signs,
            "params": {net: digest(getattr(module, net).named_parameters()) for net in ("G", "D", "G_ema")},
            "buffers": {net: digest(getattr(module, net).named_buffers()) for net in ("G", "D", "G_ema")},
            "metrics": {name: float(value) for name, value in trainer.callback_metrics.items()
                        if name.startswith("Metrics/")},
        }
        path = Path(self.out_dir) / f"rank{trainer.global_rank}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1))
