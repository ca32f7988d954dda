"""A kill-and-signal storm (issue 28): the quickstart at 16 px trained once straight through, then
again under ``--each`` signals of each kind (SIGTERM, SIGUSR1, SIGINT, SIGKILL) sent in a random
order at random moments (start-up included), each run resumed with ``--ckpt_path last`` until the
signals are spent and the run completes. The final ``last.ckpt`` must equal the straight run's in
every tensor and counter (weights, buffers, Adam, path length and ADA state, counters).

Reported per signal kind: the exit statuses; the seconds from the signal to the ``Stopped on`` line
(printed once last.ckpt is written: the target is 2 steps plus one checkpoint write, both measured
here) and to the end of every process of the run (that adds the interpreter's exit, about 1 s with
torch and Lightning loaded, as for any finished run); how many came during start-up. With ``--ddp``: 2 processes (gloo, one thread each);
SIGTERM, SIGUSR1 and SIGINT go to one rank chosen at random, SIGKILL to the whole process group
(a rank killed alone leaves the others waiting in a collective, as on any cluster).

    python benchmarks/preemption_storm.py [--each 20] [--ddp] [--out /tmp/storm] [--json storm.json]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
COMMAND = str(Path(sys.executable).with_name("lightning-stylegan"))
KINDS = ("SIGTERM", "SIGUSR1", "SIGINT", "SIGKILL")


def fit_args(root: Path, total_kimg: float, ddp: bool) -> list[str]:
    args = ["fit", "--config", "recipes/quickstart.yaml", "--data.resolution", "16",
            "--model.total_kimg", str(total_kimg), "--trainer.default_root_dir", str(root),
            "--checkpoints.every_kimg", "1", "--checkpoints.save_every", "false", "--samples.every_kimg", "2",
            "--metrics.every_kimg", "4", "--trainer.enable_progress_bar", "false"]
    if ddp:
        args += ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu",
                 "--data.batch_size", "8"]  # the quickstart's global batch of 16
    return args


def children(pid: int) -> list[int]:
    try:
        found = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
        return found
    except (FileNotFoundError, ProcessLookupError):
        return []


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return any(_in_group(pid, pgid) for pid in _pids())


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _in_group(pid: int, pgid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[2]) == pgid and fields[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def images_seen(root: Path) -> int:
    last = root / "checkpoints" / "last.ckpt"
    return torch.load(last, weights_only=True)["counters"]["images_seen"] if last.exists() else 0


def launch(args: list[str], env: dict, log: Path, stopped: list) -> subprocess.Popen:
    """Start ``lightning-stylegan *args``; its output goes to ``log``, and the moment its
    ``Stopped on`` line appears to ``stopped``."""
    process = subprocess.Popen([COMMAND, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)

    def copy() -> None:
        with open(log, "w") as out:
            for line in process.stdout:
                if line.startswith("Stopped on"):
                    stopped.append(time.perf_counter())
                out.write(line)

    threading.Thread(target=copy, daemon=True).start()
    return process


def one_launch(root: Path, args: list[str], env: dict, log: Path, kind: str, delay: float, ddp: bool,
               rng: random.Random) -> dict:
    before, stopped = images_seen(root), []
    process = launch(args, env, log, stopped)
    start = time.perf_counter()
    while time.perf_counter() - start < delay and process.poll() is None:
        time.sleep(0.02)
    if process.poll() is not None:  # finished (or failed) before the signal
        return {"kind": kind, "sent": False, "status": process.returncode, "log": str(log)}
    target, rank = process.pid, 0
    if ddp and kind != "SIGKILL":
        ranks = [process.pid] + [c for c in children(process.pid) if "lightning-stylegan" in _cmdline(c)]
        rank = rng.randrange(len(ranks))
        target = ranks[rank]
    sent = time.perf_counter()
    if kind == "SIGKILL":
        os.killpg(process.pid, signal.SIGKILL)
    else:
        os.kill(target, signal.Signals[kind])
    status = process.wait()
    while group_alive(process.pid):  # DDP's other ranks and DataLoader workers too
        time.sleep(0.01)
    seconds = time.perf_counter() - sent
    time.sleep(0.1)  # the last lines
    after = images_seen(root)
    text = log.read_text()
    return {"kind": kind, "sent": True, "rank": rank, "delay_s": round(delay, 2), "status": status,
            "saved_s": round(stopped[0] - sent, 3) if stopped else None, "exit_s": round(seconds, 3),
            "images_before": before, "images_after": after,
            "during_start_up": status == 75 and after == before,
            "stopped_line": next((line for line in text.splitlines() if line.startswith("Stopped on")), None),
            "log": str(log)}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def training_state(path: Path) -> dict:
    checkpoint = torch.load(path, weights_only=True)
    return {key: checkpoint[key] for key in ("state_dict", "optimizer_states", "callbacks", "counters", "growth_lod",
                                             "global_step")}


def step_and_save_seconds(root: Path, batch: int) -> tuple[float, float]:
    """Median seconds per step of the straight run (its tick lines) and of writing its last.ckpt."""
    stats = [json.loads(line) for line in next(root.rglob("stats.jsonl")).read_text().splitlines()]
    per_kimg = statistics.median(s["sec_per_kimg"] for s in stats[1:] if s.get("sec_per_kimg"))
    checkpoint = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    start = time.perf_counter()
    torch.save(checkpoint, root / "resave.tmp")
    os.fsync(os.open(root / "resave.tmp", os.O_RDONLY))
    save = time.perf_counter() - start
    (root / "resave.tmp").unlink()
    return per_kimg * batch / 1000, save


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--each", type=int, default=20, help="signals of each kind")
    parser.add_argument("--total-kimg", type=float, default=24.0, help="long enough to outlast the signals")
    parser.add_argument("--max-delay", type=float, default=12.0, help="signals come 0.2 s to this after a launch")
    parser.add_argument("--ddp", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/preemption-storm"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    env = os.environ | {"OMP_NUM_THREADS": "1"}  # the same arithmetic in every launch
    rng = random.Random(args.seed)

    straight = args.out / "straight"
    start = time.perf_counter()
    result = subprocess.run([COMMAND, *fit_args(straight, args.total_kimg, args.ddp)], cwd=REPO, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stderr[-3000:])
        return 1
    straight_s = time.perf_counter() - start
    step_s, save_s = step_and_save_seconds(straight, 16)

    storm = args.out / "storm"
    kinds = [kind for kind in KINDS for _ in range(args.each)]
    rng.shuffle(kinds)
    launches = []
    for i, kind in enumerate(kinds):
        delay = rng.uniform(0.2, args.max_delay)
        record = one_launch(storm, fit_args(storm, args.total_kimg, args.ddp) + ["--ckpt_path", "last"], env,
                            args.out / f"launch{i:03d}.log", kind, delay, args.ddp, rng)
        launches.append(record)
        print(json.dumps(record), flush=True)
    finals = 0
    while images_seen(storm) < args.total_kimg * 1000:
        finals += 1
        final = subprocess.run([COMMAND, *fit_args(storm, args.total_kimg, args.ddp), "--ckpt_path", "last"],
                               cwd=REPO, env=env, capture_output=True, text=True)
        if final.returncode != 0:
            print(final.stderr[-3000:])
            return 1

    equal = same(training_state(storm / "checkpoints" / "last.ckpt"), training_state(straight / "checkpoints" / "last.ckpt"))
    summary = {"ddp": args.ddp, "total_kimg": args.total_kimg, "straight_s": round(straight_s, 1),
               "step_s": round(step_s, 3), "checkpoint_write_s": round(save_s, 3),
               "target_exit_s": round(2 * step_s + save_s, 3), "final_resumes": finals, "equal_to_straight": equal,
               "kinds": {}}
    for kind in KINDS:
        sent = [r for r in launches if r["kind"] == kind and r["sent"]]
        times = [r["exit_s"] for r in sent]
        saved = [r["saved_s"] for r in sent if r["saved_s"] is not None]
        summary["kinds"][kind] = {
            "sent": len(sent), "not_sent_run_ended_first": sum(r["kind"] == kind and not r["sent"] for r in launches),
            "statuses": {str(s): sum(r["status"] == s for r in sent) for s in sorted({r["status"] for r in sent})},
            "during_start_up": sum(r["during_start_up"] for r in sent),
            "saved_s_median": round(statistics.median(saved), 3) if saved else None,
            "saved_s_max": round(max(saved), 3) if saved else None,
            "exit_s_median": round(statistics.median(times), 3) if times else None,
            "exit_s_max": round(max(times), 3) if times else None}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "launches": launches}, indent=1))
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
