"""Checkpoint files on real disks: the checksum every checkpoint carries, ``--ckpt_path last``
falling back to the newest snapshot that verifies, a write that fails (here: over the process's
file-size limit, EFBIG, as a full disk fails with ENOSPC) leaving every earlier file intact, and
``--checkpoints.keep``. Every case runs the installed command on the files of a real run."""
from __future__ import annotations

import io
import re
import resource
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import torch

from cli_run import TINY, cli
from test_resume import digests, no_traceback

from lightning_stylegan.checkpoint_files import content_checksum

KIMG = 0.048  # 12 steps of 4 images: snapshots at 0.016, 0.032 and 0.048 kimg, and last.ckpt


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("first")
    result = cli("fit", *TINY, "--model.total_kimg", KIMG, "--trainer.default_root_dir", root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def copy_run(first_run: Path, tmp_path: Path) -> Path:
    root = tmp_path / "run"
    shutil.copytree(first_run, root)
    return root


def snapshot(root: Path, kimg: float) -> Path:
    return root / "checkpoints" / f"kimg{kimg:010.3f}.ckpt"


def error_line(result) -> str:
    no_traceback(result)
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    return line


def flip_a_tensor_byte(path: Path) -> None:
    """Invert one byte in the middle of the first tensor's data record of a torch zip file."""
    with zipfile.ZipFile(path) as archive:
        record = next(info for info in archive.infolist() if "/data/" in info.filename and info.file_size > 8)
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack_from("<HH", data, record.header_offset + 26)  # the local header
    offset = record.header_offset + 30 + name_length + extra_length + record.file_size // 2
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_the_checksum_survives_save_and_load_and_changes_with_one_element(first_run):
    checkpoint = torch.load(first_run / "checkpoints" / "last.ckpt", weights_only=True)
    stored = checkpoint["checksum"]
    assert stored["scheme"] == 1 and content_checksum(checkpoint) == stored["sha256"]
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    assert content_checksum(torch.load(buffer, weights_only=True)) == stored["sha256"]
    name = next(key for key, value in checkpoint["state_dict"].items() if value.numel() > 1)
    checkpoint["state_dict"][name].view(-1)[1] += 1
    assert content_checksum(checkpoint) != stored["sha256"]
    checkpoint["state_dict"][name].view(-1)[1] -= 1
    assert content_checksum(checkpoint) == stored["sha256"]
    checkpoint["counters"]["g_steps"] += 1
    assert content_checksum(checkpoint) != stored["sha256"]


@pytest.mark.parametrize("damage", ["flipped byte", "truncated"])
def test_last_falls_back_to_the_newest_snapshot_that_verifies(first_run, tmp_path, damage):
    root = copy_run(first_run, tmp_path)
    last = root / "checkpoints" / "last.ckpt"
    if damage == "flipped byte":
        flip_a_tensor_byte(last)
        torch.load(last, weights_only=True)  # torch itself reads it without a word
        reason = f"{last} is damaged: its content does not match the sha256 checksum"
    else:
        last.write_bytes(last.read_bytes()[:50_000])
        reason = f"{last} is a truncated or damaged torch file"
    before = digests(root)
    result = cli("fit", *TINY, "--trainer.default_root_dir", root, "--model.total_kimg", 0.056, "--ckpt_path", last)
    assert result.returncode == 2, result.stderr[-3000:]
    assert str(last) in error_line(result) and reason in error_line(result)
    assert digests(root) == before

    result = cli("fit", *TINY, "--trainer.default_root_dir", root, "--model.total_kimg", 0.056, "--ckpt_path", "last")
    assert result.returncode == 0, result.stderr[-3000:]
    (skipped,) = [line for line in result.stderr.splitlines() if line.startswith("Skipped")]
    assert skipped.startswith(f"Skipped {last}: {reason}"), skipped
    assert f"Resuming {snapshot(root, KIMG)} at {KIMG:g} kimg" in result.stderr
    assert torch.load(last, weights_only=True)["counters"]["images_seen"] == 56


def test_when_no_checkpoint_verifies_last_stops_naming_each(first_run, tmp_path):
    root = copy_run(first_run, tmp_path)
    files = sorted((root / "checkpoints").glob("*.ckpt"))
    for path in files:
        path.write_bytes(path.read_bytes()[:1000])
    before = digests(root)
    result = cli("fit", *TINY, "--trainer.default_root_dir", root, "--model.total_kimg", 0.056, "--ckpt_path", "last")
    assert result.returncode == 2, result.stderr[-3000:]
    line = error_line(result)
    assert f"No checkpoint in {root / 'checkpoints'} can be used" in line
    assert all(f"{path}: {path} is a truncated or damaged torch file" in line for path in files), line
    assert len([line for line in result.stderr.splitlines() if line.startswith("Skipped")]) == len(files)
    assert digests(root) == before


def test_a_checkpoint_over_the_file_size_limit_stops_leaving_the_earlier_ones_intact(first_run, tmp_path):
    """A resume whose first snapshot cannot be written: under RLIMIT_FSIZE the write fails with EFBIG
    (CPython ignores SIGXFSZ), the way a full disk fails with ENOSPC."""
    root = copy_run(first_run, tmp_path)
    folder = root / "checkpoints"
    before = digests(folder)
    size = (folder / "last.ckpt").stat().st_size
    limit = size // 2  # above every log, grid and stats file of the run

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = cli("fit", *TINY, "--trainer.default_root_dir", root, "--model.total_kimg", 0.064, "--ckpt_path", "last",
                 fresh=True, preexec_fn=limit_file_size)
    assert result.returncode == 1, result.stderr[-3000:]
    line = error_line(result)
    target = snapshot(root, 0.064)
    match = re.match(rf"error: CheckpointWriteError: Could not write the checkpoint {re.escape(str(target))}: File too "
                     rf"large\. It needs [\d.]+ MiB \(([\d,]+) bytes\) and {re.escape(str(folder))} has [\d,.]+ MiB "
                     r"\(([\d,]+) bytes\) free; the file is over this process's file-size limit \(ulimit -f\)", line)
    assert match and "then resume with --ckpt_path last" in line, line
    needed, free = (int(group.replace(",", "")) for group in match.groups())
    assert abs(needed - size) < size // 20 and free == pytest.approx(shutil.disk_usage(folder).free, rel=0.01)
    assert digests(folder) == before  # no .tmp, no new snapshot, last.ckpt and the snapshots unchanged


def test_keep_leaves_the_newest_snapshots_and_stats_that_cannot_be_written_warn(tmp_path):
    """A stats.jsonl or a sample grid that cannot be written (here a folder in its place) is a
    warning; the run goes on."""
    root = tmp_path / "run"
    (root / "lightning_logs" / "fixed" / "stats.jsonl").mkdir(parents=True)
    grid = root / "lightning_logs" / "fixed" / "samples" / "fakes_000000016.png"
    grid.mkdir(parents=True)
    logger = ("{class_path: lightning.pytorch.loggers.TensorBoardLogger, "
              f"init_args: {{save_dir: {root}, version: fixed}}}}")
    result = cli("fit", *TINY, "--trainer.default_root_dir", root, "--model.total_kimg", 0.064,
                 "--checkpoints.keep", 2, "--trainer.logger", logger)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(path.name for path in (root / "checkpoints").iterdir()) == [
        "kimg000000.048.ckpt", "kimg000000.064.ckpt", "last.ckpt"]
    assert f"Could not append the tick figures to {root / 'lightning_logs' / 'fixed' / 'stats.jsonl'}" in result.stderr
    assert "tick 0" in result.stdout
    assert f"Could not write the sample grid {grid}" in result.stderr
    assert (grid.parent / "fakes_000000024.png").exists() and not list(grid.parent.glob("*.tmp"))

    result = cli("fit", *TINY, "--trainer.default_root_dir", tmp_path / "other", "--checkpoints.keep", 0)
    assert result.returncode == 2 and "--checkpoints.keep must be at least 1" in error_line(result)
