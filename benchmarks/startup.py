"""Start-up of the commands that do not train: wall seconds of each as a whole process, next to
``python -c "import torch"`` (the floor every command pays) and ``import lightning.pytorch`` (what
only ``fit`` and ``validate`` need), median of ``--repeats`` after one warm-up run.

    python benchmarks/startup.py [--repeats 5] [--json out.json]

The commands run on a tiny 16x16 checkpoint written here (random weights): ``plugins``, every
tool's ``--help`` (its module's imports), ``convert --export`` of the checkpoint, ``generate`` of
one seed and ``analyze layers``. Target: under 2 s each on 2 CPU cores (issue 24).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMAND = str(Path(sys.executable).with_name("lightning-stylegan"))


def tiny_checkpoint(path: Path) -> Path:
    from lightning_stylegan.network_files import write_checkpoint
    from lightning_stylegan.training.options import DiscriminatorOptions, GeneratorOptions
    from lightning_stylegan.training.run_networks import initial_networks, network_hparams

    hparams = network_hparams(16, 3, generator=GeneratorOptions(z_dim=16, w_dim=16, mapping_layers=2, channel_base=64,
                                                                channel_max=16),
                              discriminator=DiscriminatorOptions(channel_base=64, channel_max=16))
    G, D, G_ema = initial_networks(hparams)
    return write_checkpoint(path, hparams, G, D, G_ema, source="benchmarks/startup.py")


def seconds(command: list[str], repeats: int) -> float:
    times = []
    for run in range(repeats + 1):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if run:  # the first run warms the file cache
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        ckpt = str(tiny_checkpoint(folder / "tiny.ckpt"))
        commands = {
            "import torch": [sys.executable, "-c", "import torch"],
            "import lightning.pytorch": [sys.executable, "-c", "import lightning.pytorch"],
            "plugins": [COMMAND, "plugins"],
            **{f"{tool} --help": [COMMAND, tool, "--help"]
               for tool in ("metrics", "generate", "project", "convert", "analyze", "dataset")},
            "convert --export": [COMMAND, "convert", "--src", ckpt, "--out", str(folder / "G"), "--export"],
            "generate (1 seed)": [COMMAND, "generate", "--ckpt", ckpt, "--seeds", "0", "--outdir", str(folder / "g")],
            "analyze layers": [COMMAND, "analyze", "layers", "--ckpt", ckpt],
        }
        figures = {}
        for name, command in commands.items():
            figures[name] = seconds(command, args.repeats)
            print(f"{name:26s} {figures[name]:6.2f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
