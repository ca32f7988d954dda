"""Stopping a run to be resumed: a preempted, cancelled or interrupted run saves ``last.ckpt`` at a
step boundary and comes back exactly with ``--ckpt_path last`` (callback group ``preemption``).

* The signal handler only records the signal. Polls read the record at points where the training
  state is whole: the end of every step (after that step's sample grid, metrics and periodic
  checkpoint), between the rounds of a metric's batches, before each validation batch, and at the
  end of training. Under DDP a poll is one all-reduce (max) of the recorded signal, at the same
  point on every rank, so a signal that reached one rank stops all of them at once.
* A poll that finds a signal raises ``StopToResume`` on every rank; the work in progress (a metric,
  validation, the end-of-run grids and metrics) is abandoned. Lightning calls ``on_exception``,
  which writes ``last.ckpt`` (atomically, unless this step's is written already), runs
  ``scontrol requeue`` under SLURM on its requeue signal, and the command exits with
  ``PREEMPTED_STATUS``.
* The command records the signals (``stop_signals``) from the start of ``fit``, so one that comes
  during start-up (imports, data, reading the checkpoint) stops the run before its first step.
* Sample grids are written by rank 0 alone, so they check the local record (``stop_signals.received``)
  and stop early without a collective.

A second signal while saving only records itself again: the atomic write finishes, or a SIGKILL
leaves the previous ``last.ckpt`` (and a ``.tmp`` that the next run removes).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys

import torch
import torch.distributed as dist
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.trainer.states import TrainerFn

from ..stop_signals import install_stop_handlers, received, record, restore_stop_handlers

# sysexits.h EX_TEMPFAIL, "try again later": stopped on a signal, last.ckpt saved, resume to go on.
PREEMPTED_STATUS = 75


class StopToResume(Exception):
    """A stop signal reached the run; every rank raises it at the same poll."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.kimg: float | None = None  # where the run stopped, and the last.ckpt saved there
        self.saved = None

    def __str__(self) -> str:
        saved = f" at {self.kimg:g} kimg: saved {self.saved}; resume with --ckpt_path last" if self.saved else ""
        return f"Stopped on {signal.Signals(self.signum).name}{saved} (exit status {PREEMPTED_STATUS})"


class Preemption(Checkpoint):
    """Stop at the next step boundary on SIGTERM (cloud preemption, Kubernetes, ``scancel``),
    SIGUSR1 (SLURM's ``--signal=USR1@90``) or SIGINT (Ctrl-C): save ``last.ckpt`` and exit with
    status 75. Other signals keep their usual effect; SIGKILL loses what was trained since the last
    checkpoint.

    A ``Checkpoint`` callback, so Lightning runs its hooks after the other callbacks': the poll at the
    end of a step comes after that step's grids, metrics and periodic checkpoint.

    Args:
        requeue: under SLURM, after saving on SIGUSR1, rank 0 runs ``scontrol requeue <job id>``
            (the job must allow requeueing: ``sbatch --requeue``). SIGTERM never requeues:
            ``scancel`` sends it, and SLURM requeues the jobs it preempts itself.
    """

    group = "preemption"

    def __init__(self, requeue: bool = True):
        self.requeue = requeue

    def on_fit_start(self, trainer, module) -> None:
        # Installed before Lightning registers its own handlers, so it sees a SIGUSR1 handler and
        # leaves out its SLURM auto-requeue (which saves hpc_ckpt_<n>.ckpt mid-step from the handler).
        install_stop_handlers()

    def on_train_start(self, trainer, module) -> None:
        # Again: Lightning's SIGTERM handler (registered since on_fit_start) broadcasts from inside
        # the handler, which hangs DDP when the signal reaches one rank only.
        if trainer.received_sigterm:
            record(signal.SIGTERM)
        install_stop_handlers()
        self.poll(trainer)  # a signal during start-up: stop before the first step

    def teardown(self, trainer, module, stage: str) -> None:
        restore_stop_handlers()

    # ----------------------------------------------------------------- polls
    def poll(self, trainer) -> None:
        """Raise ``StopToResume`` on every rank when any rank received a stop signal. A collective
        under DDP: every rank must call it at the same point."""
        signum = received()
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            flag = torch.tensor([signum], device=trainer.strategy.root_device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            signum = int(flag.item())
        if signum:
            raise StopToResume(signum)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.poll(trainer)

    def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0) -> None:
        if trainer.state.fn == TrainerFn.FITTING:  # the validation at the end of training
            self.poll(trainer)

    def on_train_end(self, trainer, module) -> None:
        self.poll(trainer)  # a signal during the end-of-run grids and metrics: the exit says so

    # ----------------------------------------------------------------- the stop
    def on_exception(self, trainer, module, exception: BaseException) -> None:
        if isinstance(exception, StopToResume):
            self._save(trainer, module, exception)
        restore_stop_handlers()

    def _save(self, trainer, module, stop: StopToResume) -> None:
        from .checkpoints import KimgCheckpoint

        found = [cb for cb in trainer.callbacks if isinstance(cb, KimgCheckpoint)]
        checkpoints = found[0] if found else KimgCheckpoint()
        if checkpoints.last_saved_at != module.images_seen:
            checkpoints.save_last(trainer, module)
        stop.kimg, stop.saved = module.kimg, checkpoints.last_path(trainer)
        if trainer.is_global_zero and self.requeue and stop.signum == signal.SIGUSR1:
            requeue_slurm_job()


def poll_function(trainer):
    """The run's ``Preemption.poll`` bound to the trainer (for work split over the ranks, such as
    metrics, that polls between rounds); None when the run has no ``Preemption`` callback."""
    found = [cb for cb in trainer.callbacks if isinstance(cb, Preemption)]
    return (lambda: found[0].poll(trainer)) if found else None


def requeue_slurm_job() -> None:
    """``scontrol requeue`` this SLURM job (an array task as ``<array job>_<task>``); says what happened."""
    if not SLURMEnvironment.detect():
        return
    job = os.environ.get("SLURM_JOB_ID", "")
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    if not re.fullmatch(r"[0-9_]+", job):
        print(f"Not requeued: SLURM job id {job!r} is not a job id.", file=sys.stderr)
        return
    scontrol = shutil.which("scontrol")
    if scontrol is None:
        print(f"Not requeued: no scontrol on PATH; resubmit job {job} to resume.", file=sys.stderr)
        return
    result = subprocess.run([scontrol, "requeue", job], capture_output=True, text=True)
    if result.returncode == 0:
        print(f"Requeued SLURM job {job} (scontrol requeue).", file=sys.stderr)
    else:
        print(f"Not requeued: scontrol requeue {job} failed ({result.returncode}: "
              f"{(result.stderr or result.stdout).strip()}); does the job allow it (sbatch --requeue)?",
              file=sys.stderr)
