"""Bad input to the installed command: one line ``error: <what> <which> <how to fix>``, exit status 2
for the user's input (1 for a failure while running), no traceback unless ``--debug`` or
``LIGHTNING_STYLEGAN_DEBUG=1``, nothing written; and plugin options typed on the command line."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cli_run import TINY, cli


def error_line(result) -> str:
    """The one ``error:`` line of a failed run, after checking there is no traceback or usage dump."""
    text = result.stderr + result.stdout
    assert "Traceback" not in text and "usage:" not in text and "Union subtypes" not in text, text[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


def png_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.RandomState(seed).randint(0, 256, (8, 8), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def image_folder(folder: Path, count: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"img{i}.png").write_bytes(png_bytes(i))
    return folder


def data_case(name: str, tmp: Path) -> tuple[list, list[str]]:
    """(extra fit arguments, words the error must contain) of one bad-data case."""
    if name == "corrupt-image":
        folder = image_folder(tmp / "imgs")
        (folder / "img3.png").write_bytes(png_bytes(3)[:40])
        return ["--data.path", folder], ["img3.png", "--data.skip_corrupt"]
    if name == "not-an-image":
        folder = image_folder(tmp / "imgs")
        (folder / "img5.png").write_text("this is text, not a PNG\n")
        return ["--data.path", folder], ["img5.png"]
    if name == "empty-folder":
        (tmp / "empty").mkdir()
        (tmp / "empty" / "readme.txt").write_text("no images here")
        return ["--data.path", tmp / "empty"], [str(tmp / "empty"), ".png"]
    if name == "missing-path":
        return ["--data.path", tmp / "nowhere"], [str(tmp / "nowhere")]
    if name == "zip-without-images":
        with zipfile.ZipFile(tmp / "data.zip", "w") as archive:
            archive.writestr("notes.txt", "nothing")
        return ["--data.path", tmp / "data.zip"], [str(tmp / "data.zip")]
    if name == "file-of-another-kind":
        (tmp / "images.tar").write_bytes(b"\0" * 1024)
        return ["--data.path", tmp / "images.tar"], [str(tmp / "images.tar"), ".zip"]
    if name == "fewer-images-than-a-batch":
        return ["--data.path", image_folder(tmp / "imgs", count=3)], ["--data.batch_size"]
    if name == "resolution-not-a-power-of-two":
        return ["--data.resolution", 12], ["--data.resolution", "12"]
    if name == "unsupported-channels":
        return ["--data.channels", 2], ["--data.channels"]
    raise KeyError(name)


DATA_CASES = ["corrupt-image", "not-an-image", "empty-folder", "missing-path", "zip-without-images",
              "file-of-another-kind", "fewer-images-than-a-batch", "resolution-not-a-power-of-two",
              "unsupported-channels"]


@pytest.mark.parametrize("case", DATA_CASES)
def test_bad_data_is_one_line_naming_the_culprit(tmp_path, case):
    args, words = data_case(case, tmp_path)
    root = tmp_path / "run"
    result = cli("fit", *TINY, "--model.total_kimg", 0.008, "--data.max_images", "null", *args,
                 "--trainer.default_root_dir", root)
    assert result.returncode == 2, result.stderr[-3000:]
    line = error_line(result)
    for word in words:
        assert word in line, line
    if case not in ("corrupt-image", "not-an-image"):  # those are found while training
        assert not root.exists()


def test_debug_shows_the_traceback(tmp_path):
    args = ["fit", *TINY, "--data.resolution", 12, "--trainer.default_root_dir", tmp_path / "run"]
    assert "Traceback" in cli(*args, "--debug").stderr
    assert "Traceback" in cli(*args, env=os.environ | {"LIGHTNING_STYLEGAN_DEBUG": "1"}).stderr


@pytest.mark.parametrize("args, yaml_text, words", [
    (["--model.generator.normalisation", "demod"], None,
     ["'model.generator.normalisation'", "did you mean 'model.generator.normalization'", "topology, use_noise"]),
    ([], "model:\n  generator:\n    normalisation: demod\n",
     ["'model.generator.normalisation'", "bad.yaml", "did you mean 'model.generator.normalization'"]),
    (["--trainer.max_epocs", 3], None, ["'trainer.max_epocs'", "did you mean 'trainer.max_epochs'"]),
    (["--model.growth", "progressive", "--model.growth_options.start_res", 8], None,
     ["start_res", "did you mean 'start_resolution'", "start_resolution (int)", "phase_kimg (float)"]),
    (["--model.growth", "progressive", "--model.growth_options.phase_kimg", "soon"], None,
     ["model.growth_options.phase_kimg", "expects float", "'soon'"]),
    (["--r1.gamma", -1], None, ["--r1.gamma must be >= 0"]),
], ids=["cli-key", "yaml-key", "trainer-key", "plugin-option-name", "plugin-option-type", "callback-value"])
def test_misspelled_keys_and_bad_options_name_the_valid_ones(tmp_path, args, yaml_text, words):
    if yaml_text is not None:
        (tmp_path / "bad.yaml").write_text(yaml_text)
        args = ["--config", tmp_path / "bad.yaml", *args]
    result = cli("fit", *TINY, *args, "--trainer.default_root_dir", tmp_path / "run")
    assert result.returncode == 2, result.stderr[-3000:]
    line = error_line(result)
    for word in words:
        assert word in line, line
    assert not (tmp_path / "run").exists()


def test_plugin_options_typed_on_the_command_line_are_typed(tmp_path):
    """The README's notation ``--model.growth_options.phase_kimg 0.004`` gives the plugin a float."""
    root = tmp_path / "run"
    result = cli("fit", *TINY, "--model.total_kimg", 0.012, "--model.growth", "progressive",
                 "--model.growth_options.phase_kimg", "0.004", "--model.growth_options.fade_kimg", "4e-3",
                 "--validate_at_end", "false", "--trainer.default_root_dir", root)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["hyper_parameters"]["growth_options"] == {"phase_kimg": 0.004, "fade_kimg": 0.004}
    # --validate_at_end false: no validation pass, so no Val/ scalars.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = (root / "lightning_logs" / "version_0").glob("events.out.tfevents.*")
    tags = EventAccumulator(str(events)).Reload().Tags()["scalars"]
    assert "Progress/kimg" in tags and not [tag for tag in tags if tag.startswith("Val/")]


def test_convert_of_an_unknown_file_names_the_formats(tmp_path):
    (tmp_path / "notes.pkl").write_text("hello")
    result = cli("convert", "--src", tmp_path / "notes.pkl", "--out", tmp_path / "out.ckpt")
    assert result.returncode == 2
    line = error_line(result)
    assert str(tmp_path / "notes.pkl") in line and "rosinality" in line and "NVlabs" in line
    assert not (tmp_path / "out.ckpt").exists()


def test_help_lists_the_options_of_this_project():
    result = cli("fit", "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--validate_at_end" in result.stdout and "--ticks.kimg" in result.stdout
