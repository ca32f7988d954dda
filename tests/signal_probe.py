"""A callback the preemption tests load by class path (``signal_probe.SendSignal``, with tests/ on
PYTHONPATH): the process sends itself (or its process group) a signal at a chosen point of a
chosen step, as a cluster's scheduler would at any moment, on one rank only under DDP;
``also_while_saving`` sends another one while the stop's checkpoint is being built."""
from __future__ import annotations

import os
import signal

from lightning.pytorch import Callback


class SendSignal(Callback):
    """``where``: ``mid_step`` (at G's optimizer step of the step whose ``g_steps`` is ``step``),
    ``step_end`` (after that step, before the callbacks that follow this one: sample grids,
    metrics, checkpoints), ``setup`` (as the fit sets up, before any step) or ``validation`` (as the
validation at the end of training starts); ``step`` counts only for the first two."""

    def __init__(self, signal_name: str, step: int, where: str = "mid_step", rank: int = 0,
                 also_while_saving: str | None = None, process_group: bool = False):
        self.signum = signal.Signals[signal_name]
        self.second = signal.Signals[also_while_saving] if also_while_saving else None
        self.step, self.where, self.rank = step, where, rank
        self.sent, self.current = False, -1
        self.process_group = process_group  # the whole group (DataLoader workers too), as Ctrl-C does

    def setup(self, trainer, module, stage: str) -> None:
        if self.where == "setup" and trainer.global_rank == self.rank:
            self.sent = True
            os.kill(os.getpid(), self.signum)

    def on_validation_start(self, trainer, module) -> None:
        if self.where == "validation" and trainer.global_rank == self.rank:
            self.sent = True
            os.kill(os.getpid(), self.signum)

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.current = module.counters["g_steps"]  # this step's, counted from 0

    def _send(self, trainer, where: str) -> None:
        if not self.sent and where == self.where and trainer.global_rank == self.rank and self.current == self.step:
            self.sent = True
            if self.process_group:
                os.killpg(os.getpgid(0), self.signum)
            else:
                os.kill(os.getpid(), self.signum)

    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        self._send(trainer, "mid_step")

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self._send(trainer, "step_end")

    def on_save_checkpoint(self, trainer, module, checkpoint) -> None:
        if self.sent and self.second is not None and trainer.global_rank == self.rank:
            os.kill(os.getpid(), self.second)
