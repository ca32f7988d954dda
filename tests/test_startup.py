"""The commands that do not train start without Lightning: ``lightning.pytorch`` alone takes longer
to import than torch, and ``plugins``, ``convert``, ``generate``, ``metrics``, ``project``,
``analyze`` and ``dataset`` need nothing of it. One fresh interpreter runs each command on real
files and reports, after each, whether any ``lightning`` module was imported (the start-up times
themselves are measured by ``benchmarks/startup.py``)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from nvlabs_format import nvlabs_kwargs, write_snapshot
from PIL import Image
from test_project import write_backbone
from tiny_networks import tiny_checkpoint, tiny_module

DRIVER = """
import json, sys
from lightning_stylegan.cli import main
report = []
for argv in json.loads(sys.argv[1]):
    status = main(argv)
    report.append([argv[0], status, sorted(m for m in sys.modules if m.split(".")[0] in ("lightning", "pytorch_lightning"))])
print(json.dumps(report))
"""


def test_the_commands_that_do_not_train_never_import_lightning(tmp_path, one_thread):
    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt")
    gray32 = tiny_checkpoint(tmp_path / "gray32.ckpt", resolution=32, channels=1)  # LPIPS' AlexNet needs 31 px
    module = tiny_module()
    G_kwargs, D_kwargs = nvlabs_kwargs(module)
    pickle = write_snapshot(tmp_path / "network-snapshot.pkl", module.G, G_kwargs, module.D, D_kwargs, module.G_ema)
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 24, 3), 40 * i, dtype=np.uint8)).save(images / f"{i}.png")
    write_backbone(tmp_path / "alex.pth")
    out = tmp_path / "out"
    commands = [
        ["plugins"],
        ["convert", "--src", pickle, "--out", tmp_path / "converted.ckpt"],
        ["convert", "--src", tmp_path / "converted.ckpt", "--out", tmp_path / "G", "--export"],
        ["generate", "--ckpt", ckpt, "--seeds", "0-1", "--outdir", out / "generate"],
        ["metrics", "--ckpt", tmp_path / "G.pt", "--metrics", "fid50k", "--num-gen", 8, "--data", images,
         "--features", "fashion-mnist", "--batch", 4, "--cache-dir", tmp_path / "cache", "--no-progress"],
        ["project", "--ckpt", gray32, "--target", images / "1.png", "--outdir", out / "project", "--steps", 2,
         "--w-avg-samples", 20, "--lpips-net", "alex", "--lpips-backbone", tmp_path / "alex.pth"],
        ["analyze", "features", "--ckpt", ckpt, "--seed", 1, "--outdir", out / "analyze"],
        ["dataset", "--source", images, "--dest", tmp_path / "data.zip", "--resolution", 16, "--no-progress"],
    ]
    result = subprocess.run([sys.executable, "-c", DRIVER, json.dumps([[str(a) for a in c] for c in commands])],
                            capture_output=True, text=True, timeout=300, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert [(name, status) for name, status, _ in report] == [(c[0], 0) for c in commands], result.stderr[-3000:]
    for name, _status, lightning in report:
        assert lightning == [], f"`lightning-stylegan {name}` imported {lightning[:5]}"
    assert (tmp_path / "G.pt").is_file() and (tmp_path / "data.zip").is_file()
