"""``fit --ckpt_path``: one rule for an explicit path and ``last`` (training.resume), a finished run
that trains and writes nothing, torn ``*.ckpt.tmp`` files, and checkpoints that cannot be resumed.
Every case runs the installed command and checks that the earlier run's files are untouched."""
from __future__ import annotations

import hashlib
import math
import json
import shutil
from pathlib import Path

import pytest
import torch

from cli_run import TINY, cli

from lightning_stylegan import checkpoint_files

FIRST_KIMG = 0.024  # 6 steps of 4 images


def digests(root: Path) -> dict[str, str]:
    """Every file under root by relative path -> sha256 (to prove nothing was written)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def no_traceback(result) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr[-3000:]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One run of 6 steps, with the progress bar on and tick lines every 8 images (read-only)."""
    root = tmp_path_factory.mktemp("first")
    args = [a if a != "false" else "true" for a in TINY]  # --trainer.enable_progress_bar true
    result = cli("fit", *args, "--model.total_kimg", FIRST_KIMG, "--ticks.kimg", 0.008,
                 "--trainer.default_root_dir", root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result


def copy_run(first_run, tmp_path) -> Path:
    root = tmp_path / "run"
    shutil.copytree(first_run[0], root)
    return root


def test_a_run_shows_kimg_progress_ticks_and_writes_stats(first_run):
    root, result = first_run
    assert "kimg" in result.stderr and f"/{FIRST_KIMG:.1f} kimg" in result.stderr, result.stderr[-2000:]
    assert "/?" not in result.stderr  # not Lightning's batches of an endless stream
    assert "litlogger" not in result.stderr + result.stdout
    ticks = [line for line in result.stdout.splitlines() if line.startswith("tick ")]
    stats = [json.loads(line) for line in (root / "lightning_logs" / "version_0" / "stats.jsonl").read_text().splitlines()]
    assert [s["images_seen"] for s in stats] == [4, 8, 16, 24]  # tick 0 after the first step, then every 8
    assert len(ticks) == len(stats) and all("sec/kimg" in line and "maintenance" in line for line in ticks)


@pytest.mark.parametrize("form", ["explicit", "last"])
def test_options_that_may_change_take_this_runs_value(first_run, tmp_path, form):
    root = copy_run(first_run, tmp_path)
    ckpt = root / "checkpoints" / "last.ckpt"
    result = cli("fit", *TINY, "--trainer.default_root_dir", root, "--ckpt_path", ckpt if form == "explicit" else "last",
                 "--model.total_kimg", 0.032, "--model.g_lr", 0.001, "--r1.gamma", 0.5)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Resuming {ckpt} at {FIRST_KIMG:g} kimg with changed options:" in result.stderr
    for change in ["model.total_kimg 0.024 -> 0.032", "model.g_lr 0.0025 -> 0.001", "r1.gamma 0.1 -> 0.5"]:
        assert change in result.stderr, result.stderr[-3000:]
    saved = torch.load(ckpt, weights_only=True)
    assert saved["counters"]["images_seen"] == 32
    assert saved["hyper_parameters"]["total_kimg"] == 0.032
    # G's Adam runs at this run's lr x c, c = 4 / 5 for path length every 4 steps (Appendix B).
    assert saved["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.001 * 4 / 5)
    assert saved["run_config"]["r1.gamma"] == 0.5


def test_a_schedule_given_on_resume_is_listed_and_followed(first_run, tmp_path):
    """A hyper-parameter that becomes a schedule (R3GAN's cosine) is a changed option like any other;
    the resumed steps take its value at the checkpoint's image counter."""
    root = copy_run(first_run, tmp_path)
    schedule = "{start: 0.002, end: 0.001, kimg: 0.048}"
    result = cli("fit", *TINY, "--trainer.default_root_dir", root, "--ckpt_path", "last",
                 "--model.total_kimg", 0.032, "--model.d_lr", schedule)
    assert result.returncode == 0, result.stderr[-3000:]
    changes = result.stderr.split("with changed options:")[1]
    for change in ["model.d_lr 0.0025 -> None", "model.d_lr.start None -> 0.002", "model.d_lr.kind None -> 'cosine'"]:
        assert change in changes, result.stderr[-3000:]
    saved = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["hyper_parameters"]["d_lr"] == {"start": 0.002, "end": 0.001, "kimg": 0.048, "kind": "cosine"}
    # D's Adam at the last step (28 images in): the cosine's value x 16 / 17 for R1 every 16 steps.
    value = 0.002 + (0.001 - 0.002) * (1 - math.cos(math.pi * 28 / 48)) / 2
    assert saved["optimizer_states"][1]["param_groups"][0]["lr"] == pytest.approx(value * 16 / 17)


def test_an_explicit_path_and_last_resume_identically(first_run, tmp_path):
    weights = []
    for form in ("explicit", "last"):
        root = copy_run(first_run, tmp_path / form)
        ckpt = root / "checkpoints" / "last.ckpt"
        result = cli("fit", *TINY, "--trainer.default_root_dir", root, "--model.total_kimg", 0.032,
                     "--ckpt_path", ckpt if form == "explicit" else "last")
        assert result.returncode == 0, result.stderr[-3000:]
        weights.append(torch.load(ckpt, weights_only=True)["state_dict"])
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.mark.parametrize("form", ["explicit", "last"])
def test_network_options_must_equal_the_checkpoints(first_run, tmp_path, form):
    root = copy_run(first_run, tmp_path)
    before = digests(root)
    result = cli("fit", *TINY, "--trainer.default_root_dir", root, "--model.total_kimg", 0.032,
                 "--ckpt_path", root / "checkpoints" / "last.ckpt" if form == "explicit" else "last",
                 "--model.generator.channel_max", 32, "--model.discriminator.topology", "skip")
    assert result.returncode == 2, result.stderr[-3000:]
    no_traceback(result)
    assert "model.generator.channel_max 16 (checkpoint) != 32 (now)" in result.stderr
    assert "model.discriminator.topology 'residual' (checkpoint) != 'skip' (now)" in result.stderr
    assert digests(root) == before


def test_a_finished_run_trains_and_writes_nothing(first_run, tmp_path):
    root = copy_run(first_run, tmp_path)
    before = digests(root)
    result = cli("fit", *TINY, "--trainer.default_root_dir", root, "--model.total_kimg", FIRST_KIMG, "--ckpt_path", "last")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "is complete" in result.stderr and "raise --model.total_kimg" in result.stderr
    assert digests(root) == before


def test_a_torn_checkpoint_left_by_a_kill_is_removed(first_run, tmp_path):
    root = copy_run(first_run, tmp_path)
    torn = root / "checkpoints" / "last.ckpt.tmp"
    torn.write_bytes(b"PK\x03\x04 cut off")
    result = cli("fit", *TINY, "--trainer.default_root_dir", root, "--model.total_kimg", 0.028, "--ckpt_path", "last")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not torn.exists() and f"Removed {torn}" in result.stderr


def _bad_files(folder: Path, ckpt: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, words its error must contain)."""
    torch.save({"weights": torch.zeros(3)}, folder / "random.pt")
    data = ckpt.read_bytes()
    (folder / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    (folder / "notes.ckpt").write_text("not a checkpoint\n")
    from lightning_stylegan.network_files import export_generator, load_networks, write_checkpoint

    networks = load_networks(ckpt)
    export_generator(networks.G_ema, folder / "exported.pt")
    write_checkpoint(folder / "converted.ckpt", networks.hparams, networks.G, networks.D, networks.G_ema, "test")
    return {"random-torch-file": (folder / "random.pt", "not a lightning-stylegan training checkpoint"),
            "truncated": (folder / "truncated.ckpt", "truncated or damaged"),
            "text": (folder / "notes.ckpt", "not a lightning-stylegan checkpoint"),
            "exported-generator": (folder / "exported.pt", "--model.init_from"),
            "converted": (folder / "converted.ckpt", "no training state"),
            "missing": (folder / "missing.ckpt", "no such file")}


def test_files_that_are_not_training_checkpoints_are_named(first_run, tmp_path):
    root = copy_run(first_run, tmp_path)
    before = digests(root)
    for name, (path, words) in _bad_files(tmp_path, root / "checkpoints" / "last.ckpt").items():
        result = cli("fit", *TINY, "--trainer.default_root_dir", root, "--model.total_kimg", 0.04, "--ckpt_path", path)
        assert result.returncode == 2, (name, result.stderr[-3000:])
        no_traceback(result)
        (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert str(path) in line and words in line, (name, line)
    assert digests(root) == before


def test_a_checkpoint_whose_plugin_is_not_installed_names_the_package(first_run, tmp_path):
    checkpoint = torch.load(first_run[0] / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["generator"]["normalization"] = "fancynorm"
    checkpoint["plugins"]["normalization"] = {"name": "fancynorm", "distribution": "lsg-fancynorm", "version": "1.2"}
    path = tmp_path / "fancy.ckpt"
    checkpoint_files.write_checksummed(checkpoint, path)  # its checksum anew, as that plugin's install writes it
    for args in (["fit", *TINY, "--trainer.default_root_dir", tmp_path / "run", "--ckpt_path", path],
                 ["generate", "--ckpt", path, "--outdir", tmp_path / "out", "--seeds", "0"],
                 ["analyze", "layers", "--ckpt", path],
                 ["metrics", "--ckpt", path, "--metrics", "fid50k_full"]):
        result = cli(*args)
        assert result.returncode == 2, (args[0], result.stderr[-3000:])
        no_traceback(result)
        assert "pip install lsg-fancynorm==1.2" in result.stderr, (args[0], result.stderr[-2000:])
    assert not (tmp_path / "run").exists() and not (tmp_path / "out").exists()
