"""The example packages of ``docs/plugins.md``, copied out of the document, installed as real
packages with pip (offline), listed by ``lightning-stylegan plugins --kind KIND`` and trained with
by name through the real ``lightning-stylegan fit`` command (the converter example converts a
pickle through ``lightning-stylegan convert``): what the document promises works.

Each example file is the fenced block right after a marker ``<!-- example: PACKAGE file: PATH -->``.
"""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import tomllib

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_stylegan import registry

from cli_run import COMMAND, REPO, cli
from cli_run import TINY as TINY_8PX

DOC = REPO / "docs" / "plugins.md"
EXAMPLE = re.compile(r"^<!-- example: (?P<package>[\w.-]+) file: (?P<path>[\w./-]+) -->\n"
                     r"```[\w-]*\n(?P<text>.*?)^```$", re.S | re.M)
KIND_OF_GROUP = {group: kind for kind, group in registry.GROUPS.items()}
BATCH, RES = 4, 16
# The tiny quickstart options at 16x16 (so that a growth schedule has 8x8 to grow from).
TINY = [*TINY_8PX, "--data.resolution", RES, "--trainer.log_every_n_steps", 1]
TOTAL_KIMG = 0.028  # 7 steps of 4 images
# The growth example's one option: 16 images (4 steps) at 8x8, then 16x16 fading in over 8 images.
GROWTH_OPTIONS = '{"kimg_per_resolution": 0.016}'
AUGMENT_OPTIONS = '{"p": 0.5}'  # a fixed p: the ada controller leaves it as it is
LOSS_OPTIONS = '{"drift": 0.01}'  # the loss example's one option
METRIC, METRIC_BATCH = "fid50_full", 25  # the batches cut the latent and noise streams: keep them equal
# A metric name the metric example parses (its plugin is "dc"): density and coverage of 50 images,
# sharing the generated features of METRIC (same extractor and count).
PLUGIN_METRIC = "dc50"
PLUGIN_RESULTS = (f"{PLUGIN_METRIC}_density", f"{PLUGIN_METRIC}_coverage")


def doc_examples() -> dict[str, dict[str, str]]:
    """``{package folder: {relative path: text}}`` of every marked block of the document."""
    packages: dict[str, dict[str, str]] = {}
    for match in EXAMPLE.finditer(DOC.read_text()):
        files = packages.setdefault(match["package"], {})
        assert match["path"] not in files, f"{match['package']}/{match['path']} is given twice in {DOC}"
        files[match["path"]] = match["text"]
    return packages


def documented_plugins() -> dict[str, dict[str, str]]:
    """``{kind: {name, distribution, version, package}}`` from the examples' pyproject.toml files."""
    found: dict[str, dict[str, str]] = {}
    for package, files in doc_examples().items():
        project = tomllib.loads(files["pyproject.toml"])["project"]
        for group, entries in project.get("entry-points", {}).items():
            for name in entries:
                kind = KIND_OF_GROUP[group]
                assert kind not in found, f"two examples of kind {kind}: keep one per kind"
                found[kind] = dict(name=name, distribution=project["name"], version=project["version"],
                                   package=package)
    return found


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict:
    """The examples written out and pip-installed (one offline pip call) into a folder; the
    environment whose PYTHONPATH puts it first."""
    root = tmp_path_factory.mktemp("plugin_docs")
    folders = []
    for package, files in doc_examples().items():
        for path, text in files.items():
            (root / "src" / package / path).parent.mkdir(parents=True, exist_ok=True)
            (root / "src" / package / path).write_text(text)
        folders.append(str(root / "src" / package))
    site = root / "site"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                             "--no-index", "--disable-pip-version-check", "--quiet", "--target", str(site),
                             *folders], capture_output=True, text=True, timeout=300,
                            env=os.environ | {"PIP_NO_INPUT": "1"})
    assert result.returncode == 0, f"pip could not install the examples of {DOC}:\n{result.stderr[-3000:]}"
    return os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


def test_the_document_has_a_working_example_for_every_plugin_kind():
    text = DOC.read_text()
    for kind, group in registry.GROUPS.items():
        assert f"`{group}`" in text and f"`{kind}`" in text, f"{DOC} does not document the kind {kind}"
    packages = doc_examples()
    assert packages and all("pyproject.toml" in files for files in packages.values()), sorted(packages)
    assert set(documented_plugins()) == set(registry.GROUPS)


@pytest.fixture(scope="module")
def listings(plugin_env) -> dict[str, subprocess.CompletedProcess]:
    """``lightning-stylegan plugins --kind KIND`` of every kind, run side by side."""
    procs = {kind: subprocess.Popen([COMMAND, "plugins", "--kind", kind], cwd=REPO, env=plugin_env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for kind in registry.GROUPS}
    results = {}
    for kind, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        results[kind] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return results


@pytest.mark.parametrize("kind", list(registry.GROUPS))
def test_plugins_command_lists_the_installed_example(listings, kind):
    plugin = documented_plugins()[kind]
    result = listings[kind]
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines()[1:] if line.split()[:2] == [kind, plugin["name"]]]
    assert len(rows) == 1, result.stdout
    assert rows[0].split()[2:4] == [plugin["distribution"], plugin["version"]], rows[0]
    assert "BROKEN" not in rows[0] and len(rows[0].split()) > 4, rows[0]  # loads, has a description


@pytest.fixture(scope="module")
def fit_run(plugin_env, tmp_path_factory):
    """One short fit with the examples, selected by name: generator topology, normalization,
    discriminator, growth schedule (with its option), augmentation (with a fixed p), loss (with its
    option), the metrics' feature extractor and the metric."""
    plugins = documented_plugins()
    root = tmp_path_factory.mktemp("plugin_fit")
    result = cli("fit", *TINY, "--model.total_kimg", TOTAL_KIMG, "--trainer.default_root_dir", root,
                 "--model.generator.topology", plugins["generator"]["name"],
                 "--model.generator.normalization", plugins["normalization"]["name"],
                 "--model.discriminator.topology", plugins["discriminator"]["name"],
                 "--model.growth", plugins["growth"]["name"], "--model.growth_options", GROWTH_OPTIONS,
                 "--model.augment", plugins["augmentation"]["name"], "--model.augment_options", AUGMENT_OPTIONS,
                 "--model.loss", plugins["loss"]["name"], "--model.loss_options", LOSS_OPTIONS,
                 "--metrics.metrics", f"[{METRIC},{PLUGIN_METRIC}]",
                 "--metrics.features", plugins["feature_extractor"]["name"],
                 "--metrics.every_kimg", 0.008, "--metrics.batch_size", METRIC_BATCH,
                 "--metrics.cache_dir", root / "cache", env=plugin_env)
    return root, result


def test_fit_trains_with_every_example_and_records_their_distributions(fit_run):
    root, result = fit_run
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["counters"]["images_seen"] == math.ceil(TOTAL_KIMG * 1000 / BATCH) * BATCH
    plugins = documented_plugins()
    assert checkpoint["plugins"] == {
        kind: {key: plugins[kind][key] for key in ("name", "distribution", "version")}
        for kind in ("generator", "normalization", "discriminator", "growth", "augmentation", "loss")}
    hparams = checkpoint["hyper_parameters"]
    assert hparams["generator"]["topology"] == plugins["generator"]["name"]
    assert hparams["generator"]["normalization"] == plugins["normalization"]["name"]
    assert hparams["discriminator"]["topology"] == plugins["discriminator"]["name"]
    assert hparams["growth"] == plugins["growth"]["name"] and hparams["growth_options"] == {"kimg_per_resolution": 0.016}
    assert hparams["augment"] == plugins["augmentation"]["name"] and hparams["augment_options"] == {"p": 0.5}
    assert hparams["loss"] == plugins["loss"]["name"] and hparams["loss_options"] == {"drift": 0.01}
    # The progressive growth example built to-RGB / fromRGB layers below the output resolution.
    state = checkpoint["state_dict"]
    assert "G.synthesis.b8.torgb.weight" in state and "D.b8.fromrgb.weight" in state
    assert state["augment.p"] == 0.5  # the augmentation's buffer, fixed by its options


def test_the_growth_example_grew_and_the_feature_extractor_scored(fit_run):
    root, result = fit_run
    assert result.returncode == 0, result.stderr[-3000:]
    (events,) = (root / "lightning_logs" / "version_0").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0}).Reload()
    resolutions = {event.step: event.value for event in accumulator.Scalars("Progress/resolution")}
    alphas = [event.value for event in accumulator.Scalars("Progress/alpha")]
    assert resolutions[4] == 8 and resolutions[28] == 16, resolutions
    assert any(0 <= alpha < 1 for alpha in alphas), alphas  # a fade-in happened
    scores = accumulator.Scalars(f"Metrics/{METRIC}")
    assert [event.step for event in scores] == [8, 16, 24, 28]  # every 8 images, and at the end
    assert all(math.isfinite(event.value) and event.value >= 0 for event in scores)
    for name in PLUGIN_RESULTS:  # the metric example, computed next to FID at every evaluation
        values = accumulator.Scalars(f"Metrics/{name}")
        assert [event.step for event in values] == [8, 16, 24, 28], name
        bound = 1 if name.endswith("coverage") else 50 / 5  # density is at most M / k
        assert all(0 <= event.value <= bound for event in values), (name, values)


def test_metrics_command_reloads_the_checkpoint_with_the_plugins(fit_run, plugin_env):
    root, first = fit_run
    assert first.returncode == 0, first.stderr[-3000:]
    result = cli("metrics", "--ckpt", root / "checkpoints" / "last.ckpt", "--metrics", f"{METRIC},{PLUGIN_METRIC}",
                 "--features", documented_plugins()["feature_extractor"]["name"],
                 "--batch", METRIC_BATCH, "--cache-dir", root / "cache", "--out", root / "metrics.json",
                 "--no-progress",
                 env=plugin_env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    value = float(re.search(rf"^{METRIC}\s+(\S+)$", result.stdout, re.M)[1])
    (events,) = (root / "lightning_logs" / "version_0").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0}).Reload()
    at_end = accumulator.Scalars(f"Metrics/{METRIC}")[-1]
    assert value == pytest.approx(at_end.value, rel=1e-4, abs=1e-6)
    # the metric example scores the reloaded checkpoint as training did at the end (one ball
    # membership of 5 x 50 may flip with the last bits of the features: 1/250 density, 1/50 coverage)
    for name, tolerance in zip(PLUGIN_RESULTS, (1 / 250, 1 / 50)):
        value = float(re.search(rf"^{name}\s+(\S+)$", result.stdout, re.M)[1])
        assert value == pytest.approx(accumulator.Scalars(f"Metrics/{name}")[-1].value, abs=tolerance + 1e-6), name


def test_convert_reads_a_pickle_with_the_converter_example(plugin_env, tmp_path):
    """The converter example through the real `convert`: a StyleGAN2 pickle of NVlabs' stylegan3
    repository (flat synthesis kwargs, conv_clamp and w_avg_beta left to its defaults 256 and
    0.998; written by ``nvlabs_format``, no NVlabs code), which the built-in converter does not read."""
    from nvlabs_format import nvlabs_kwargs, write_snapshot
    from tiny_networks import tiny_module

    from lightning_stylegan.network_files import load_networks

    module = tiny_module(conv_clamp=256.0)
    module.D = __import__("lightning_stylegan.networks", fromlist=["x"]).build_discriminator(
        "residual", 16, 3, channel_base=256, channel_max=32, mapping_layers=2, conv_clamp=256.0)
    G_kwargs, D_kwargs = nvlabs_kwargs(module)
    synthesis = G_kwargs.pop("synthesis_kwargs")
    del synthesis["conv_clamp"], D_kwargs["conv_clamp"]  # the stylegan3 repository's default: 256
    G_kwargs |= synthesis | {"fused_modconv_default": "inference_only"}
    path = write_snapshot(tmp_path / "stylegan2-snapshot.pkl", module.G, G_kwargs, module.D, D_kwargs, module.G_ema)
    result = cli("convert", "--src", path, "--out", tmp_path / "converted.ckpt", env=plugin_env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    networks = load_networks(tmp_path / "converted.ckpt")
    generator, discriminator = networks.hparams["generator"], networks.hparams["discriminator"]
    assert (generator["conv_clamp"], discriminator["conv_clamp"], generator["w_avg_beta"]) == (256, 256, 0.998)
    for ours, source in [(networks.G_ema, module.G_ema), (networks.G, module.G), (networks.D, module.D)]:
        theirs = source.state_dict()
        assert ours.state_dict().keys() == theirs.keys()
        assert all(torch.equal(value, theirs[key]) for key, value in ours.state_dict().items())
    z = torch.randn(2, 32)
    assert torch.equal(networks.G_ema(z, noise_mode="const"), module.G_ema.eval()(z, noise_mode="const"))
    without = cli("convert", "--src", path, "--out", tmp_path / "again.ckpt", timeout=120)  # without the example
    assert without.returncode == 2 and "no installed converter plugin reads this network pickle" in without.stderr
