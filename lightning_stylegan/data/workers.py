"""DataLoader worker processes leave the stop signals to the main process.

A signal sent to a whole process group or job step (Ctrl-C in a terminal, ``kill -TERM -<pgid>``,
SLURM's ``--signal`` and ``scancel``, which signal every process of the step) reaches the workers
too. The default reaction (a worker exits on SIGINT, SIGTERM or SIGUSR1) would fail the main
process's next batch before it can save; ignored, they keep loading until the main process stops
them (``training.preemption`` handles the signal there). A worker forked from the main process
inherits its recording handler anyway; one started by ``spawn`` or ``forkserver`` (Python 3.14's
default on Linux) would not.
"""
from __future__ import annotations

import signal

from ..stop_signals import STOP_SIGNALS


def ignore_stop_signals(_worker_id: int) -> None:
    """``worker_init_fn`` of every DataLoader with workers."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
