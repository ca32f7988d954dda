"""The recipes that reproduce the papers: ``recipes/stylegan2/config-{a..f}.yaml`` (StyleGAN2,
002_0a18e98dc55024d1.txt Table 1), ``recipes/table2/`` (its Table 2) and ``recipes/pin/`` (the PIN
paper 000_2d004fc061d5976e.txt: StyleGAN v1 with IN, PN or PIN), all through the installed command.

* Parsed by ``lightning-stylegan fit --config <recipe> --print_config``, config A has the paper's
  baseline values and every other recipe differs from its parent in exactly what the paper changes
  (B = A + demodulation, C = B + lazy R1, ...): a typo, a lost base file or a changed library
  default shows up here.
* Every recipe (``recipes/**/*.yaml`` but ``recipes/base/``) trains a few steps at 16x16 with tiny
  networks: progressive recipes grow from 8x8 with a fade-in and their per-resolution batch sizes,
  the regularizers run as configured, PIN logs its rho histograms. Config A also trains at 16x16
  with its 1024x1024 schedule as written (`--data.resolution` alone makes a smaller run).

The module starts the runs of the selected tests up front, two at a time (2 cores, one thread
each), forked from the tests' fork server (``cli_run.cli``), and each test waits for its own.
"""
from __future__ import annotations

import math
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from itertools import product
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_stylegan import registry

from cli_run import REPO
from cli_run import cli as cli_run

RECIPE_DIR = REPO / "recipes"
WORKERS = 2
# One thread per run: two runs share the 2 cores instead of fighting over them.
ENV = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# recipes/r3gan/ size R3GAN's networks by per-stage lists, not channel_base: its package's tests
# (plugins/r3gan/tests/test_r3gan_recipes.py) check and train them.
RECIPES = sorted(str(p.relative_to(RECIPE_DIR)) for p in RECIPE_DIR.rglob("*.yaml")
                 if p.relative_to(RECIPE_DIR).parts[0] not in ("base", "r3gan"))

# ------------------------------------------------------------------ what the papers say
TOPOLOGIES = ("original", "skip", "residual")
CONFIG_A = "stylegan2/config-a.yaml"
CONFIG_E = "stylegan2/config-e.yaml"
TRANSFER_SOURCE = "quickstart.yaml"  # the networks of recipes/ada/transfer-*.yaml, trained first
# StyleGAN2 config A, the baseline StyleGAN (Appendix B, NVlabs' run_training.py config-a).
BASELINE = {
    "trainer.devices": 8, "trainer.strategy": "ddp", "trainer.precision": "32-true",
    "data.path": None, "data.resolution": 1024, "data.channels": 3, "data.batch_size": 4, "data.xflip": True,
    "model.generator.topology": "stylegan1", "model.generator.normalization": "adain",
    "model.generator.z_dim": 512, "model.generator.w_dim": 512, "model.generator.mapping_layers": 8,
    "model.generator.mapping_lr_multiplier": 0.01, "model.generator.channel_base": 16384,
    "model.generator.channel_max": 512, "model.generator.use_noise": True,
    "model.discriminator.topology": "stylegan1", "model.discriminator.channel_base": 16384,
    "model.discriminator.channel_max": 512, "model.discriminator.mbstd_group_size": 4,
    "model.g_lr": 0.001, "model.d_lr": 0.001, "model.betas": [0.0, 0.99], "model.eps": 1e-8,
    "model.style_mixing_prob": None,  # null: 0.9 for a generator with a W space (test_train_loop) "model.ema_kimg": 10.0, "model.ema_rampup": None, "model.total_kimg": 25000,
    "model.fake_labels": "reals_for_d",  # D_logistic_simplegp: G's fakes in D's step take the reals' labels
    "model.growth": "progressive",
    "model.growth_options": {"start_resolution": 8, "phase_kimg": 600, "fade_kimg": 600, "reset_optimizer": True,
                             "lr_scale": {128: 1.5, 256: 2.0, 512: 3.0, 1024: 3.0},
                             "batch_size": {8: 32, 16: 16, 32: 8, 64: 4}},
    "r1.gamma": 10.0, "r1.interval": 1, "path_length.weight": 0.0, "path_length.interval": 1,
}
# recipe: (its parent, what the paper changes). trainer.default_root_dir differs everywhere.
CHANGES = {
    # B: weight demodulation, in the TF code's revised v1 networks (G_synthesis_stylegan_revised, D_stylegan).
    "stylegan2/config-b.yaml": (CONFIG_A, {"model.generator.normalization": "demod",
                                           "model.generator.topology": "revised",
                                           "model.discriminator.topology": "revised"}),
    # NVlabs' lazy_regularization: R1 every 16 D steps, and G's Adam adjusted for G_reg_interval 4.
    "stylegan2/config-c.yaml": ("stylegan2/config-b.yaml", {"r1.interval": 16, "path_length.interval": 4}),
    "stylegan2/config-d.yaml": ("stylegan2/config-c.yaml", {"path_length.weight": 2.0}),  # G_reg_interval 4
    CONFIG_E: ("stylegan2/config-d.yaml", {
        "model.growth": "none", "model.growth_options": None, "model.generator.topology": "skip",
        "model.discriminator.topology": "residual", "model.g_lr": 0.002, "model.d_lr": 0.002, "r1.gamma": 100.0}),
    "stylegan2/config-f.yaml": (CONFIG_E, {"model.generator.channel_base": 32768,
                                           "model.discriminator.channel_base": 32768, "r1.gamma": 10.0}),
    # config F for your own data, with stylegan2-ada-pytorch's labels for D's fakes
    # (it writes style mixing's 0.9 out, which the paper recipes leave to the default)
    "stylegan2.yaml": ("stylegan2/config-f.yaml", {"data.xflip": False, "model.fake_labels": "dataset",
                                                   "model.style_mixing_prob": 0.9}),
    **{f"table2/g-{g}_d-{d}.yaml": (CONFIG_E, {"model.generator.topology": g, "model.discriminator.topology": d})
       for g, d in product(TOPOLOGIES, TOPOLOGIES)},
    **{f"pin/{norm}.yaml": (CONFIG_A, {"model.generator.normalization": norm})
       for norm in ("adain", "pixel", "pin")},
}
PAPER_DIRS = ("stylegan2", "table2", "pin")

# ------------------------------------------------------------------ the tiny training runs
TOTAL_IMAGES, BATCH = 20, 4
# Progressive: 8 images at 8x8, 8 fading 16x16 in, then 16x16; 4 images a step at 8x8, 2 at 16x16.
GROWTH_BATCH = {8: 4, 16: 2}
TINY_GROWTH = {"start_resolution": 8, "phase_kimg": 0.008, "fade_kimg": 0.008,
               "lr_scale": {8: 1.0, 16: 1.5}, "batch_size": GROWTH_BATCH}
TINY = ["--trainer.devices", 1, "--trainer.strategy", "auto", "--trainer.accelerator", "cpu",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.log_every_n_steps", 1,
        "--data.resolution", 16, "--data.channels", 1, "--data.batch_size", BATCH, "--data.num_workers", 0,
        "--data.max_images", 64, "--data.val_images", 4,
        "--model.generator.channel_base", 64, "--model.generator.channel_max", 16,
        "--model.generator.z_dim", 16, "--model.generator.w_dim", 16, "--model.generator.mapping_layers", 2,
        "--model.discriminator.channel_base", 64, "--model.discriminator.channel_max", 16,
        "--model.discriminator.mbstd_group_size", 2,  # divides every batch size: 4 and 2
        "--model.total_kimg", TOTAL_IMAGES / 1000,
        "--samples.every_kimg", 0.008, "--samples.rows", 2, "--samples.columns", 2,
        "--checkpoints.every_kimg", 0.016,
        "--metrics.metrics", "[]"]  # FID needs Inception's weights, which tests never download
AS_WRITTEN_IMAGES = 64  # config A's own schedule at 16x16: two steps of its 32 images at 8x8


def cli(*args) -> subprocess.CompletedProcess:
    return cli_run(*args, timeout=300, env=ENV)


def recipe_model(recipe: str) -> dict:
    model = yaml.safe_load((RECIPE_DIR / recipe).read_text()).get("model") or {}
    assert isinstance(model, dict), f"{recipe}: expected the model group written out"
    return model


def recipe_growth(recipe: str) -> str:
    return recipe_model(recipe).get("growth", "none")


class Runs:
    """The module's CLI runs, each started once, ``WORKERS`` at a time, in the order asked for."""

    def __init__(self, tmp_path_factory):
        self.pool = ThreadPoolExecutor(max_workers=WORKERS)
        self.tmp_path_factory = tmp_path_factory
        self.futures = {}

    def start_parse(self, recipe: str):
        key = ("parse", recipe)
        if key not in self.futures:
            self.futures[key] = self.pool.submit(cli, "fit", "--config", f"recipes/{recipe}", "--print_config")
        return self.futures[key]

    def start_train(self, recipe: str, as_written: bool = False):
        """A tiny run; progressive recipes get the tiny schedule unless ``as_written``."""
        key = ("train", recipe, as_written)
        if key not in self.futures:
            root = self.tmp_path_factory.mktemp(recipe.replace("/", "-").removesuffix(".yaml"))
            args = ["fit", "--config", f"recipes/{recipe}", *TINY, "--trainer.default_root_dir", root]
            if as_written:
                args += ["--model.total_kimg", AS_WRITTEN_IMAGES / 1000]
            elif recipe_growth(recipe) == "progressive":
                args += ["--model.growth_options", yaml.safe_dump(TINY_GROWTH, default_flow_style=True).strip()]
            if recipe_model(recipe).get("init_from"):  # a transfer recipe: from the tiny quickstart run
                source = self.start_train(TRANSFER_SOURCE)
                self.futures[key] = self.pool.submit(lambda: (root, cli(
                    *args, "--model.init_from", source.result()[0] / "checkpoints" / "last.ckpt")))
            else:
                self.futures[key] = self.pool.submit(lambda: (root, cli(*args)))
        return self.futures[key]

    def parse(self, recipe: str) -> subprocess.CompletedProcess:
        return self.start_parse(recipe).result()

    def config(self, recipe: str) -> dict:
        """The recipe as the command resolves it, flattened to dotted keys."""
        result = self.parse(recipe)
        assert result.returncode == 0, f"{recipe}:\n{result.stderr[-3000:]}"
        return flat(yaml.safe_load(result.stdout))

    def train(self, recipe: str, as_written: bool = False) -> tuple[Path, subprocess.CompletedProcess]:
        return self.start_train(recipe, as_written).result()


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    runs = Runs(tmp_path_factory)
    for item in request.session.items:  # the selected tests of this module, in the order they run
        params = item.callspec.params if getattr(item, "module", None) is request.module \
            and hasattr(item, "callspec") else {}
        for name in ("recipe", "parent", "trained", "trained_as_written"):
            if name in params:
                runs.start_parse(params[name])
        if "trained" in params:
            runs.start_train(params["trained"])
        if "trained_as_written" in params:
            runs.start_train(params["trained_as_written"], as_written=True)
    yield runs
    runs.pool.shutdown(wait=True, cancel_futures=True)


def flat(tree: dict, prefix: str = "") -> dict:
    """``{"model.generator.topology": ...}``; ``model.growth_options`` (a plain dict) stays whole."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name != "model.growth_options":
            out.update(flat(value, f"{name}."))
        else:
            out[name] = value
    return out


def changed(parent: dict, child: dict) -> dict:
    missing = object()
    return {key: child.get(key, missing) for key in parent.keys() | child.keys()
            if parent.get(key, missing) != child.get(key, missing) and key != "trainer.default_root_dir"}


# ------------------------------------------------------------------ parsing
@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_parses_with_batches_the_minibatch_stddev_groups_divide(runs, recipe):
    config = runs.config(recipe)
    assert "model.resolution" not in config  # linked from data.resolution
    for kind, key in [("normalization", "model.generator.normalization"), ("generator", "model.generator.topology"),
                      ("discriminator", "model.discriminator.topology"), ("growth", "model.growth")]:
        assert config[key] in registry.names(kind), key
    assert {"r1.gamma", "path_length.weight", "samples.every_kimg", "checkpoints.every_kimg"} <= set(config)
    group = config["model.discriminator.mbstd_group_size"]
    per_resolution = (config["model.growth_options"] or {}).get("batch_size") or {}
    batches = [config["data.batch_size"], *per_resolution.values()]
    assert group is None or all(batch % group == 0 for batch in batches), (group, batches)


def test_every_paper_recipe_is_checked_against_the_paper():
    paper = {recipe for recipe in RECIPES if recipe.split("/")[0] in PAPER_DIRS}
    assert paper == {CONFIG_A} | (set(CHANGES) - {"stylegan2.yaml"})
    assert len(paper) == 6 + 9 + 3


@pytest.mark.parametrize("recipe", [CONFIG_A])
def test_config_a_is_the_baseline_stylegan(runs, recipe):
    config = runs.config(recipe)
    assert {key: config.get(key) for key in BASELINE} == BASELINE


@pytest.mark.parametrize("recipe, parent, changes", [(r, p, c) for r, (p, c) in CHANGES.items()],
                         ids=list(CHANGES))
def test_recipe_differs_from_its_parent_in_what_the_paper_changes(runs, recipe, parent, changes):
    parent_config, config = runs.config(parent), runs.config(recipe)
    expected = {key: value for key, value in changes.items() if parent_config[key] != value}
    assert changed(parent_config, config) == expected


def test_each_recipe_writes_to_its_own_run_directory(runs):
    roots = {recipe: Path(runs.config(recipe)["trainer.default_root_dir"]) for recipe in RECIPES}
    for (a, root_a), (b, root_b) in product(roots.items(), roots.items()):
        assert a == b or not root_b.is_relative_to(root_a), f"{b} writes into {a}'s {root_a}"


# ------------------------------------------------------------------ training
def events(run: Path) -> EventAccumulator:
    (event_file,) = run.glob("events.out.tfevents.*")
    return EventAccumulator(str(event_file), size_guidance={"scalars": 0}).Reload()


def expected_reg_steps(enabled: bool, interval: int, steps: int) -> int:
    """Lazy passes at steps 0, k, 2k, ...; a non-lazy (k = 1) regularizer joins the main pass."""
    return math.ceil(steps / interval) if enabled and interval > 1 else 0


@pytest.mark.parametrize("trained", RECIPES)
def test_recipe_trains_a_few_steps_at_16x16(runs, trained):
    root, result = runs.train(trained)
    assert result.returncode == 0, result.stderr[-3000:]
    recipe = runs.config(trained)
    run = root / "lightning_logs" / "version_0"
    last = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)

    # The tiny overrides changed sizes only: the recipe's plugins and regularizers trained.
    hparams = last["hyper_parameters"]
    assert (hparams["generator"]["topology"], hparams["generator"]["normalization"],
            hparams["discriminator"]["topology"], hparams["growth"]) == \
        (recipe["model.generator.topology"], recipe["model.generator.normalization"],
         recipe["model.discriminator.topology"], recipe["model.growth"])
    counters = last["counters"]
    steps = counters["g_steps"]
    assert counters["images_seen"] == TOTAL_IMAGES
    assert counters["d_reg_steps"] == expected_reg_steps(recipe["r1.gamma"] > 0, recipe["r1.interval"], steps)
    pl_on = recipe["path_length.weight"] != 0
    assert counters["g_reg_steps"] == expected_reg_steps(pl_on, recipe["path_length.interval"], steps)

    accumulator = events(run)
    tags = set(accumulator.Tags()["scalars"])
    assert {"Loss/G/loss", "Loss/D/loss", "Val/D/loss"} <= tags, sorted(tags)
    assert ("Loss/r1_penalty" in tags) == (recipe["r1.gamma"] > 0)
    assert ("Loss/pl_penalty" in tags) == pl_on
    # Scalars every step (log_every_n_steps 1) at step = images seen.
    resolution = [(e.step, e.value) for e in accumulator.Scalars("Progress/resolution")]
    alpha = [e.value for e in accumulator.Scalars("Progress/alpha")]
    steps_seen = [step for step, _ in resolution]
    assert steps_seen[-1] == TOTAL_IMAGES and len(steps_seen) == steps, steps_seen
    increments = [b - a for a, b in zip([0, *steps_seen], steps_seen)]
    if recipe["model.growth"] == "progressive":
        # 8x8, then 16x16 faded in: alpha strictly between 0 and 1 on the way.
        values = [value for _, value in resolution]
        assert values[0] == 8 and values[-1] == 16 and values == sorted(values), resolution
        assert any(0 < a < 1 for a in alpha), alpha
        assert alpha[-1] == 1
        # Each step's batch size is the one of the resolution it started at.
        assert increments == [GROWTH_BATCH[8]] + [GROWTH_BATCH[int(r)] for _, r in resolution[:-1]], increments
    else:
        assert {value for _, value in resolution} == {16} and set(alpha) == {1.0}, (resolution, alpha)
        assert set(increments) == {BATCH}, increments

    rho = {tag for tag in accumulator.Tags()["histograms"] if tag.startswith("PIN/rho_")}
    assert bool(rho) == (recipe["model.generator.normalization"] == "pin"), rho

    # Sample grids at the final size, 2 x 2 images of 16x16, also while training at 8x8.
    grids = sorted((run / "samples").glob("fakes_*.png"))
    assert "fakes_init.png" in {p.name for p in grids} and len(grids) >= 3, grids
    for png in grids:
        with Image.open(png) as image:
            assert image.size == (2 * 16, 2 * 16), png.name


@pytest.mark.parametrize("trained_as_written", [CONFIG_A])
def test_progressive_recipe_trains_below_1024_with_its_own_schedule(runs, trained_as_written):
    """``--data.resolution 16`` with the 1024x1024 schedule as written: its entries above 16 never
    apply, and the 8x8 phase trains with the recipe's 32 images per step."""
    root, result = runs.train(trained_as_written, as_written=True)
    assert result.returncode == 0, result.stderr[-3000:]
    accumulator = events(root / "lightning_logs" / "version_0")
    assert [(e.step, e.value) for e in accumulator.Scalars("Progress/resolution")] == [(32, 8), (64, 8)]
    hparams = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)["hyper_parameters"]
    assert hparams["growth_options"] == runs.config(trained_as_written)["model.growth_options"]
