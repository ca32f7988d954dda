"""The signals that stop a training run to be resumed, recorded instead of obeyed.

SIGTERM (cloud preemption, Kubernetes, ``scancel``), SIGUSR1 (SLURM's ``--signal=USR1@90``) and
SIGINT (Ctrl-C). The handler records the first one and does nothing else; ``training.preemption``
reads the record where the training state is whole. Imports nothing heavy, so that the command can
install the handlers before it loads torch and Lightning (seconds during which a signal would
otherwise kill the process).
"""
from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)

_received = 0  # the first stop signal this process received, 0 = none
_originals: dict[int, object] = {}  # the handlers before install_stop_handlers


def _record(signum: int, _frame) -> None:
    global _received
    _received = _received or signum


def record(signum: int) -> None:
    """Record ``signum`` as if it had been received (a signal another handler caught)."""
    _record(signum, None)


def install_stop_handlers() -> None:
    """Record the stop signals instead of dying of them (from the main thread only: Python delivers
    signals there). Installing again (over another library's handlers) keeps the first originals."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in STOP_SIGNALS:
        previous = signal.signal(signum, _record)
        if previous is not _record:
            _originals.setdefault(signum, previous)


def restore_stop_handlers() -> None:
    """The handlers from before ``install_stop_handlers``, and no signal recorded."""
    global _received
    if threading.current_thread() is threading.main_thread():
        for signum, handler in _originals.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        _originals.clear()
    _received = 0


def received() -> int:
    """The first stop signal received since the handlers were installed, 0 = none."""
    return _received
