"""Running the installed ``lightning-stylegan`` command in tests: a process in the repository that
is killed (process group included) when it hangs, and the tiny quickstart options that make a run
of a few steps take seconds.

``cli`` starts each command as a child of ``cli_server.py``, a process that has imported torch and
Lightning once (5 of the 6 s of a tiny ``fit``); ``cli(..., fresh=True)`` and ``cli_processes`` start
the installed console script as a new interpreter."""
from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("lightning-stylegan")  # installed with this interpreter
COMMAND = str(SCRIPT) if SCRIPT.exists() else "lightning-stylegan"
BATCH, RES, ROWS, COLUMNS = 4, 8, 2, 3
# The quickstart recipe at 8x8 with tiny networks: a run of a few steps takes seconds.
TINY = ["--config", "recipes/quickstart.yaml", "--data.resolution", RES, "--data.batch_size", BATCH,
        "--data.max_images", 64, "--data.val_images", 8,
        "--model.generator.channel_base", 64, "--model.generator.channel_max", 16,
        "--model.generator.z_dim", 16, "--model.generator.w_dim", 16,
        "--model.discriminator.channel_base", 64, "--model.discriminator.channel_max", 16,
        "--model.discriminator.mbstd_group_size", 2,
        "--samples.every_kimg", 0.008, "--samples.rows", ROWS, "--samples.columns", COLUMNS,
        "--checkpoints.every_kimg", 0.016, "--trainer.enable_progress_bar", "false",
        "--trainer.log_every_n_steps", 4,
        "--metrics.metrics", "[]"]  # the recipe's fid5k_full would score 5000 images at the end
TOTAL_KIMG = 0.022  # not a whole number of batches: the run ends with the batch that reaches it
IMAGES = math.ceil(TOTAL_KIMG * 1000 / BATCH) * BATCH  # 24 images = 6 steps
LOSS_TAGS = {"Loss/G/loss", "Loss/D/loss", "Loss/pl_penalty", "Loss/scores/real", "Loss/scores/fake",
             "Progress/kimg", "Timing/sec_per_kimg"}


def cli(*args, timeout: float = 240, stall: float | None = None, watch: Path | None = None,
        env: dict | None = None, fresh: bool = False, preexec_fn=None) -> subprocess.CompletedProcess:
    """Run ``lightning-stylegan *args`` in the repository, forked from the fork server (``fresh``: as
    a new interpreter, which first calls ``preexec_fn``, e.g. to set a resource limit). Kill its
    process group (DDP ranks included) and fail after ``timeout`` s, or after ``stall`` s in which no
    file under ``watch`` changed."""
    if fresh:
        return cli_processes([(args, env)], timeout=timeout, stall=stall, watch=watch, preexec_fn=preexec_fn)[0]
    with tempfile.TemporaryDirectory() as folder:
        out, err = Path(folder) / "stdout", Path(folder) / "stderr"
        run = fork_server().start([str(a) for a in args], dict(os.environ if env is None else env), out, err)
        command = [COMMAND, *map(str, args)]

        def kill() -> str:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.pid, signal.SIGKILL)
            run.done.wait()
            return f"`{' '.join(command)}` stderr tail:\n{err.read_text()[-3000:]}"

        wait_or_kill(lambda: not run.done.wait(0.5), kill, timeout, stall, watch)
        return subprocess.CompletedProcess(command, run.status, out.read_text(), err.read_text())


def wait_or_kill(running, kill, timeout: float, stall: float | None, watch: Path | None) -> None:
    """Poll ``running()`` (which waits a little) until it is False; after ``timeout`` s, or ``stall``
    s in which no file under ``watch`` changed, call ``kill()`` (-> the stderr tails) and fail."""
    start = time.time()
    while running():
        now, active = time.time(), max(start, newest_mtime(watch) if watch else 0.0)
        if now - start > timeout or (stall and now - active > stall):
            tails = kill()
            pytest.fail(f"{'hung' if now - start <= timeout else 'timed out'}: killed after {now - start:.0f} s, "
                        f"{now - active:.0f} s without output files changing.\n{tails}")


class ServerRun:
    def __init__(self):
        self.pid: int | None = None
        self.status: int | None = None
        self.started, self.done = threading.Event(), threading.Event()


class ForkServer:
    """The client of ``cli_server.py``: one server for the test session, started at the first
    ``cli`` call; requests from several threads at once."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("cli_server.py"))],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        self.runs: dict[int, ServerRun] = {}
        self.lock = threading.Lock()
        self.ids = itertools.count()
        threading.Thread(target=self._read, daemon=True).start()

    def start(self, argv: list[str], env: dict, stdout: Path, stderr: Path) -> ServerRun:
        run, key = ServerRun(), next(self.ids)
        with self.lock:
            self.runs[key] = run
            self.process.stdin.write(json.dumps({"id": key, "argv": argv, "env": env, "cwd": str(REPO),
                                                 "stdout": str(stdout), "stderr": str(stderr)}) + "\n")
            self.process.stdin.flush()
        if not run.started.wait(60):
            pytest.fail(f"the fork server did not start `lightning-stylegan {' '.join(argv)}` in 60 s")
        return run

    def _read(self) -> None:
        for line in self.process.stdout:
            message = json.loads(line)
            run = self.runs[message["id"]]
            if "pid" in message:
                run.pid = message["pid"]
                run.started.set()
            else:
                run.status = message["status"]
                run.done.set()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


_server: ForkServer | None = None
_server_lock = threading.Lock()


def fork_server() -> ForkServer:
    global _server
    with _server_lock:
        if _server is None or _server.process.poll() is not None:
            _server = ForkServer()
            atexit.register(_server.close)
        return _server


def cli_processes(runs: list[tuple[list, dict | None]], timeout: float = 240, stall: float | None = None,
                  watch: Path | None = None, preexec_fn=None) -> list[subprocess.CompletedProcess]:
    """Run several ``lightning-stylegan`` commands at once (``(args, env)`` each: the processes of one
    distributed job, as a cluster launcher starts them on its nodes; each calls ``preexec_fn`` before
    it starts) and wait for all of them; on a hang or time-out, as ``cli``, kill every one of them and fail."""
    commands = [[COMMAND, *map(str, args)] for args, _env in runs]
    with contextlib.ExitStack() as stack:
        files = [(stack.enter_context(tempfile.TemporaryFile("w+")), stack.enter_context(tempfile.TemporaryFile("w+")))
                 for _ in runs]
        procs = [subprocess.Popen(command, cwd=REPO, stdout=out, stderr=err, text=True, env=env,
                                  start_new_session=True, preexec_fn=preexec_fn)
                 for command, (_args, env), (out, err) in zip(commands, runs, files)]

        def running() -> bool:
            time.sleep(0.5)
            return any(proc.poll() is None for proc in procs)

        def kill() -> str:
            tails = []
            for proc, command, (_out, err) in zip(procs, commands, files):
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                err.seek(0)
                tails.append(f"`{' '.join(command)}` stderr tail:\n{err.read()[-3000:]}")
            return "\n".join(tails)

        wait_or_kill(running, kill, timeout, stall, watch)
        results = []
        for proc, command, (out, err) in zip(procs, commands, files):
            out.seek(0)
            err.seek(0)
            results.append(subprocess.CompletedProcess(command, proc.returncode, out.read(), err.read()))
        return results


def free_port() -> int:
    """A TCP port free on this machine now, for the main address of a test's process group."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def newest_mtime(folder: Path) -> float:
    times = []
    for path in folder.rglob("*"):
        try:
            times.append(path.stat().st_mtime)
        except FileNotFoundError:  # a checkpoint's .tmp renamed meanwhile
            pass
    return max(times, default=0.0)
