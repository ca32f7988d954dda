"""Running the installed ``lightning-stylegan`` command in tests: a subprocess in the repository
that is killed (process group included) when it hangs, and the tiny quickstart options that make a
run of a few steps take seconds."""
from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
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
        env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``lightning-stylegan *args`` in the repository. Kill its process group (DDP ranks included)
    and fail after ``timeout`` s, or after ``stall`` s in which no file under ``watch`` changed."""
    return cli_processes([(args, env)], timeout=timeout, stall=stall, watch=watch)[0]


def cli_processes(runs: list[tuple[list, dict | None]], timeout: float = 240, stall: float | None = None,
                  watch: Path | None = None) -> list[subprocess.CompletedProcess]:
    """Run several ``lightning-stylegan`` commands at once (``(args, env)`` each: the processes of one
    distributed job, as a cluster launcher starts them on its nodes) and wait for all of them; on a
    hang or time-out, as ``cli``, kill every one of them and fail."""
    commands = [[COMMAND, *map(str, args)] for args, _env in runs]
    with contextlib.ExitStack() as stack:
        files = [(stack.enter_context(tempfile.TemporaryFile("w+")), stack.enter_context(tempfile.TemporaryFile("w+")))
                 for _ in runs]
        procs = [subprocess.Popen(command, cwd=REPO, stdout=out, stderr=err, text=True, env=env,
                                  start_new_session=True)
                 for command, (_args, env), (out, err) in zip(commands, runs, files)]
        start = time.time()
        while any(proc.poll() is None for proc in procs):
            time.sleep(0.5)
            now, active = time.time(), max(start, newest_mtime(watch) if watch else 0.0)
            if now - start > timeout or (stall and now - active > stall):
                tails = []
                for proc, command, (_out, err) in zip(procs, commands, files):
                    if proc.poll() is None:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
                    err.seek(0)
                    tails.append(f"`{' '.join(command)}` stderr tail:\n{err.read()[-3000:]}")
                pytest.fail(f"{'hung' if now - start <= timeout else 'timed out'}: killed after {now - start:.0f} s, "
                            f"{now - active:.0f} s without output files changing.\n" + "\n".join(tails))
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
