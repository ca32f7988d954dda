"""The kimg progress bar and NVlabs' tick lines in a real Trainer on 8x8 networks: tick boundaries,
stats.jsonl, maintenance accounting, and the bar's total, position and look (also when resumed)."""
from __future__ import annotations

import json
import re
import time
import warnings

import pytest
from lightning.pytorch.callbacks import Callback

from lightning_stylegan.dependency_noise import HIDDEN_WARNINGS, hide_dependency_noise
from lightning_stylegan.kimg import maintenance
from lightning_stylegan.training.progress import KimgProgressBar, Ticks, tick_line
from test_train_loop import BATCH, steps, tiny_data, tiny_model, trainer


class Pause(Callback):
    """A stand-in for a sample grid: 0.2 s of maintenance at the step that reaches ``at`` images."""

    def __init__(self, at: int):
        self.at = at

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if module.images_seen == self.at:
            with maintenance(trainer):
                time.sleep(0.2)


def read_stats(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "stats.jsonl").read_text().splitlines()]


def test_ticks_at_kimg_boundaries_with_maintenance(tmp_path, capsys, one_thread):
    model = tiny_model(total_kimg=steps(9))  # 36 images; a tick every 8
    trainer(tmp_path, Pause(at=12), Ticks(kimg=0.008)).fit(model, tiny_data())
    stats = read_stats(tmp_path)
    # Tick 0 after the first step, then every 8 images, then the step that reaches total_kimg.
    assert [s["images_seen"] for s in stats] == [4, 8, 16, 24, 32, 36]
    assert [s["tick"] for s in stats] == list(range(6))
    assert [s["kimg"] for s in stats] == [n / 1000 for n in (4, 8, 16, 24, 32, 36)]
    assert all(s["sec_per_kimg"] > 0 and s["sec_per_tick"] > 0 and s["cpumem_gb"] > 0 for s in stats)
    assert all(s["gpumem_gb"] == s["reserved_gb"] == 0 and "augment_p" not in s for s in stats)
    assert all(isinstance(s["loss_G"], float) and isinstance(s["loss_D"], float) for s in stats)
    assert [s["maintenance_s"] >= 0.2 for s in stats] == [False, False, True, False, False, False]
    # sec/tick leaves the maintenance out; both add up to the wall time between ticks.
    wall = stats[2]["timestamp"] - stats[1]["timestamp"]
    assert wall == pytest.approx(stats[2]["sec_per_tick"] + stats[2]["maintenance_s"], abs=1e-6)
    assert stats[2]["sec_per_kimg"] == pytest.approx(stats[2]["sec_per_tick"] / 8 * 1000)
    assert stats[-1]["time_s"] == pytest.approx(stats[-1]["timestamp"] - stats[0]["timestamp"]
                                                + stats[0]["time_s"])
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("tick ")]
    assert printed == [tick_line(s) for s in stats]


def test_tick_line_has_nvlabs_layout():
    stats = dict(tick=3, kimg=12.0, time_s=62.4, sec_per_tick=20.1, sec_per_kimg=5.02, maintenance_s=0.3,
                 cpumem_gb=1.23, gpumem_gb=0.0, reserved_gb=0.0)
    assert tick_line(stats) == ("tick 3     kimg 12.0     time 1m 02s       sec/tick 20.1    sec/kimg 5.02    "
                                "maintenance 0.3    cpumem 1.23   gpumem 0.00   reserved 0.00")
    assert tick_line(stats | {"augment_p": 0.1234, "time_s": 90061}).endswith("reserved 0.00   augment 0.123")
    assert "time 1d 01h 01m " in tick_line(stats | {"time_s": 90061})
    assert "time 1h 00m 05s " in tick_line(stats | {"time_s": 3605})


def test_bar_counts_kimg_from_the_resumed_position(tmp_path, capsys, one_thread):
    model = tiny_model(total_kimg=steps(6), augment="ada", augment_options={"p": 0.25})  # a fixed p
    model.counters["images_seen"] = 3 * BATCH  # as a run resumed at 12 images
    bar = KimgProgressBar(mininterval=0)  # draw every step, to see each frame
    fit = trainer(tmp_path, bar, Ticks(kimg=1.0), enable_progress_bar=True)
    fit.fit(model, tiny_data())
    train = bar.train_progress_bar
    assert train.total == model.hparams["total_kimg"] == 0.024
    assert train.initial == 0.012 and train.n == pytest.approx(0.024)
    frames = [f.strip() for f in capsys.readouterr().err.split("\r") if f.strip().startswith("train")]
    assert len(frames) >= 4  # the first frame, one per step, the final one
    assert re.fullmatch(r"train  0\.0/0\.0 kimg \|█+\| \[\d\d:\d\d<\d\d:\d\d, +\d+\.\d\ds/kimg, "
                        r"G=-?\d\.\d{3}, D=-?\d\.\d{3}\]", frames[-1]), frames[-1]
    # Ticks continue the run's kimg but number this process's ticks from 0.
    stats = read_stats(tmp_path)
    assert [(s["tick"], s["images_seen"], s["augment_p"]) for s in stats] == [(0, 16, 0.25), (1, 24, 0.25)]
    # The validate command's bar counts batches on stderr, drawn as the training bar.
    fit.validate(model, tiny_data(), verbose=False)
    captured = capsys.readouterr()
    frames = [f.strip() for f in captured.err.split("\r") if f.strip()]
    assert frames[0].startswith("validate  0/2 batches |") and frames[-1].startswith("validate  2/2 batches |█")
    assert "Validation" not in captured.out + captured.err


def test_bar_redraws_seldom_when_not_a_terminal(tmp_path, capsys, one_thread):
    bar = KimgProgressBar()
    trainer(tmp_path, bar, enable_progress_bar=True).fit(tiny_model(total_kimg=steps(4)), tiny_data())
    assert bar.train_progress_bar.mininterval == 30.0  # pytest's captured stderr is not a TTY
    frames = [f for f in capsys.readouterr().err.split("\r") if f.strip().startswith("train")]
    # When it opened, before the validation pass at the end of fit (kept on its line), when it closed.
    assert len(frames) == 3


@pytest.mark.parametrize("message, category, module", HIDDEN_WARNINGS)
def test_only_the_listed_warnings_of_our_dependencies_are_hidden(message, category, module):
    """Each warning of ``dependency_noise`` is hidden where it comes from; the same text from our own
    code, and another warning from the same module of Lightning, are still shown."""
    text = re.sub(r"\\d\+", "17", message).replace("\\", "")  # the regex as the text it matches
    origin = module.replace("\\", "") + ".x"
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        hide_dependency_noise()
        for source, what in [(origin, text), ("lightning_stylegan.training.module", text), (origin, "about your config")]:
            warnings.warn_explicit(what, category, filename="f.py", lineno=1, module=source)
    assert [str(w.message) for w in shown] == [text, "about your config"]
