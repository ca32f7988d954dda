"""A fork server for the tests' ``lightning-stylegan`` runs (see ``cli_run.cli``).

A ``fit`` that trains a few steps takes about 6 s on 2 cores, 5 of them importing torch and
Lightning. This process imports everything the command imports, once, and runs no torch operation
(so no OpenMP thread pool exists to be inherited). For each request it forks a child that becomes
the command's process: its own session, its stdout and stderr in the given files, the given
working directory, environment and ``sys.path`` (``PYTHONPATH``), torch's thread count from
``OMP_NUM_THREADS`` as a fresh interpreter would read it, ``sys.argv`` of the installed script;
then it runs ``lightning_stylegan.cli.main`` (the console script's entry point) and exits with its
status after the interpreter's exit handlers. A DDP run's other ranks are real processes that
Lightning starts from that ``sys.argv``.

Protocol, one JSON object per line: requests on stdin ``{"id", "argv", "env", "cwd", "stdout",
"stderr"}``; on stdout ``{"id", "pid"}`` when the child started and ``{"id", "status"}`` when it
ended (the status as ``subprocess`` reports it: negative for a signal). End of stdin: the server
kills its children and exits.
"""
from __future__ import annotations

import atexit
import importlib
import json
import os
import select
import sys
import traceback

import lightning.pytorch.cli  # noqa: F401  (what `fit` and `validate` import, loaded once here)
import torch

import lightning_stylegan.cli
import lightning_stylegan.data.datamodule  # noqa: F401
import lightning_stylegan.metrics.callback  # noqa: F401
import lightning_stylegan.training.module  # noqa: F401
from lightning_stylegan import registry

SCRIPT = os.path.join(os.path.dirname(sys.executable), "lightning-stylegan")
DEFAULT_THREADS = torch.get_num_threads()  # this interpreter's, read from its own environment


def run_child(request: dict) -> None:
    """Become the command's process; never returns."""
    status = 1
    try:
        os.setsid()
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            file = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(file, fd)
            os.close(file)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[0] = os.path.dirname(SCRIPT)  # a script's folder comes first, then PYTHONPATH (not tests/)
        sys.path[1:1] = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]
        threads = request["env"].get("OMP_NUM_THREADS")
        torch.set_num_threads(int(threads) if threads else DEFAULT_THREADS)
        importlib.invalidate_caches()
        registry.clear_cache()
        sys.argv = [SCRIPT, *request["argv"]]
        try:
            status = lightning_stylegan.cli.main(request["argv"])
        except SystemExit as exit_:  # as the interpreter treats it: None is 0, a message is printed and 1
            status = exit_.code if isinstance(exit_.code, int) or exit_.code is None else 1
            if status == 1 and not isinstance(exit_.code, int):
                print(exit_.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            status = 1
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(status or 0)


def main() -> None:
    children: dict[int, str] = {}  # pid -> request id
    out = sys.stdout

    def reply(**message) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    stdin = sys.stdin.fileno()
    buffer = b""
    while True:
        ready, _, _ = select.select([stdin], [], [], 0.05)
        if ready:
            chunk = os.read(stdin, 1 << 16)
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    run_child(request)
                children[pid] = request["id"]
                reply(id=request["id"], pid=pid)
        while children:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            reply(id=children.pop(pid), status=os.waitstatus_to_exitcode(wait_status))
    for pid in children:
        try:
            os.killpg(pid, 9)
        except ProcessLookupError:
            pass


if __name__ == "__main__":
    main()
