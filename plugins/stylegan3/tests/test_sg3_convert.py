"""NVlabs StyleGAN3 pickles through ``lightning-stylegan convert`` (the ``stylegan3`` converter
plugin) and ``lightning-stylegan generate`` (with ``--translate`` / ``--rotate``), against the
float64 reference of ``sg3_reference`` (Karras et al. 2021, Sections 3.1-3.2, Appendix F) and
NVlabs' gen_images.py procedure: the PNGs of the real commands, seed for seed, within one level.

The pickles are written in NVlabs' published format by the core's ``tests/nvlabs_format.py``
(no NVlabs code), from module trees with NVlabs' names and random tensors (``sg3_reference``).
"""
from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))  # the core's nvlabs_format

import sg3_reference as ref  # noqa: E402
from nvlabs_format import write_snapshot  # noqa: E402

from lightning_stylegan import registry  # noqa: E402
from lightning_stylegan.converters.base import ConversionError  # noqa: E402
from lightning_stylegan.network_files import load_networks  # noqa: E402
from lightning_stylegan.networks import build_discriminator  # noqa: E402
from lightning_stylegan.tools import convert as convert_tool  # noqa: E402
from lightning_stylegan_stylegan3.convert_nvlabs import Stylegan3Converter, generator_options  # noqa: E402

SEEDS = [0, 1, 2, 3]
DISTRIBUTION = "lightning-stylegan-stylegan3"
# Tiny versions of train.py's --cfg stylegan3-t and stylegan3-r: T at 32 px has a layer going from
# 16 to 32 samples per unit (up 4, down 2); R is conditional, with 1x1 convolutions, radial
# down-sampling filters outside the critically sampled layers, doubled maps and a clamp that bites.
CONFIGS = {"T": ref.Config(32),
           "R": ref.Config(16, c_dim=3, num_layers=4, num_critical=1, conv_kernel=1, use_radial_filters=True,
                           channel_base=128, channel_max=16, conv_clamp=3.0)}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def discriminator(cfg: ref.Config) -> tuple[torch.nn.Module, dict]:
    """A networks_stylegan2 D as stylegan3's train.py records it (conv_clamp and num_fp16_res left
    to the class's defaults, 256 and 4), with random weights in our modules (same names)."""
    torch.manual_seed(5)
    D = build_discriminator("residual", cfg.img_resolution, cfg.img_channels, c_dim=cfg.c_dim, channel_base=64,
                            channel_max=16, mbstd_group_size=2, mapping_layers=8, conv_clamp=256)
    with torch.no_grad():
        for name, value in D.named_parameters():
            if name.endswith("bias"):
                value.normal_(0, 0.3)
    kwargs = dict(block_kwargs=dict(freeze_layers=0), mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=2),
                  channel_base=64, channel_max=16, c_dim=cfg.c_dim, img_resolution=cfg.img_resolution,
                  img_channels=cfg.img_channels)
    return D, kwargs


def snapshot(tmp_path: Path, cfg: ref.Config, with_d: bool = True, G_kwargs: dict | None = None,
             G: torch.nn.Module | None = None) -> tuple[Path, torch.nn.Module, torch.nn.Module]:
    """``network-snapshot`` of random G and G_ema (different weights) and, ``with_d``, a D."""
    G = ref.random_generator(cfg, seed=0) if G is None else G
    G_ema = ref.random_generator(cfg, seed=1)
    D, D_kwargs = discriminator(cfg) if with_d else (None, None)
    path = write_snapshot(tmp_path / "network-snapshot-000000.pkl", G, cfg.kwargs() if G_kwargs is None else G_kwargs,
                          D, D_kwargs, G_ema, class_names=ref.class_names)
    return path, G_ema, D


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["lightning-stylegan", *map(str, args)], capture_output=True, text=True, timeout=300)


def pngs(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(folder / f"seed{seed:04d}.png")) for seed in SEEDS])


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def converted(request, tmp_path_factory):
    """(config, pickle, G_ema and D modules of the pickle, our checkpoint by the real `convert`)."""
    cfg = CONFIGS[request.param]
    root = tmp_path_factory.mktemp(f"sg3_{request.param}")
    path, G_ema, D = snapshot(root, cfg)
    result = run("convert", "--src", path, "--out", root / "converted.ckpt")
    assert result.returncode == 0, result.stderr
    return request.param, cfg, path, G_ema, D, root / "converted.ckpt"


def test_the_converter_plugin_is_registered_with_its_distribution():
    found = registry.index("converter")
    assert found["stylegan3"].distribution == DISTRIBUTION
    assert registry.load("converter", "stylegan3") is Stylegan3Converter
    listing = run("plugins", "--kind", "converter")
    rows = [line.split() for line in listing.stdout.splitlines()]
    assert any(row[:3] == ["converter", "stylegan3", DISTRIBUTION] for row in rows), listing.stdout
    assert any(row[:3] == ["converter", "stylegan2", "lightning-stylegan"] for row in rows), listing.stdout


def test_options_and_weights_carry_over_one_to_one(converted):
    name, cfg, path, G_ema, D, ckpt = converted
    networks = load_networks(ckpt)
    generator = networks.hparams["generator"]
    assert generator["topology"] == {"T": "stylegan3-t", "R": "stylegan3-r"}[name]
    assert (generator["use_noise"], generator["normalization"], generator["mapping_layers"]) == (False, "demod", 2)
    assert generator["conv_clamp"] == cfg.conv_clamp and generator["w_avg_beta"] == 0.998
    assert generator["synthesis_options"] == dict(
        num_layers=cfg.num_layers, num_critical=cfg.num_critical, first_cutoff=2, first_stopband=2 ** 2.1,
        last_stopband_rel=2 ** 0.3, margin_size=10, output_scale=0.25, conv_kernel=cfg.conv_kernel, filter_size=6,
        lrelu_upsampling=2, use_radial_filters=cfg.use_radial_filters, magnitude_ema_beta=0.5 ** (32 / 20e3))
    assert networks.hparams["discriminator"]["conv_clamp"] == 256  # networks_stylegan2.Discriminator's default
    source = {"G_ema": G_ema.state_dict(), "G": ref.random_generator(cfg, seed=0).state_dict(), "D": D.state_dict()}
    for part in ("G_ema", "G", "D"):
        ours = getattr(networks, part).state_dict()
        assert set(ours) == set(source[part]), part
        for key, value in source[part].items():
            assert torch.equal(ours[key], value), (part, key)


@pytest.mark.parametrize("transform", [None, ("0.125,-0.25", 30.0)], ids=["plain", "translate-rotate"])
def test_generate_writes_the_pngs_of_gen_images(converted, tmp_path, transform):
    """`generate --trunc 1 --noise-mode const` (with --translate / --rotate) against the float64
    reference of gen_images.py's images: every pixel within one level (R: --trunc 0.7 --class 1)."""
    name, cfg, path, G_ema, D, ckpt = converted
    options = ["--trunc", 1] if name == "T" else ["--trunc", 0.7, "--class", 1]
    moved = [] if transform is None else ["--translate", transform[0], "--rotate", transform[1]]
    result = run("generate", "--ckpt", ckpt, "--outdir", tmp_path, "--seeds", "0-3", "--noise-mode", "const",
                 *options, *moved)
    assert result.returncode == 0, result.stderr
    ours = pngs(tmp_path)
    translate, rotate = (0.0, 0.0), 0.0
    if transform is not None:
        translate, rotate = tuple(map(float, transform[0].split(","))), transform[1]
    expected = ref.generate(G_ema.state_dict(), cfg, SEEDS, psi=float(options[1]),
                            class_idx=None if name == "T" else 1, translate=translate, rotate=rotate)
    assert ours.shape == expected.shape == (4, cfg.img_resolution, cfg.img_resolution, 3)
    difference = np.abs(ours.astype(int) - expected.astype(int))
    assert difference.max() <= 1, difference.max()
    assert expected.std(axis=(1, 2)).mean() > 4  # images with content, not flat colors
    if transform is not None:  # and the transform moved them
        plain = ref.generate(G_ema.state_dict(), cfg, SEEDS, psi=float(options[1]),
                             class_idx=None if name == "T" else 1)
        assert np.abs(plain.astype(int) - expected.astype(int)).mean() > 3


def test_the_float_images_match_the_reference(converted):
    """Before quantization: G_ema of the checkpoint vs the float64 reference, psi 1 and 0.5."""
    name, cfg, path, G_ema, D, ckpt = converted
    G = load_networks(ckpt, generator_only=True).G_ema
    z = np.random.RandomState(7).randn(3, cfg.z_dim)
    c = torch.eye(cfg.c_dim)[[0, 1, 2]] if cfg.c_dim else None
    state = {key: value.double().numpy() for key, value in G_ema.state_dict().items()}
    for psi in (1.0, 0.5):
        with torch.no_grad():
            ours = G(torch.from_numpy(z), c, truncation_psi=psi, noise_mode="const").double().numpy()
        w = ref.mapping(state, cfg, z, None if c is None else c.double().numpy(), psi)
        expected = ref.synthesis(state, cfg, w)
        assert np.abs(ours - expected).max() < 2e-5 * max(1.0, np.abs(expected).max()), psi


def test_generator_options_of_nvlabs_full_size_configs():
    """train.py's --cfg stylegan3-t / stylegan3-r at 1024 (cbase 32768, cmax 512; R doubles them),
    batch 32: the NVlabs defaults a pickle leaves out become explicit options."""
    common = dict(z_dim=512, w_dim=512, c_dim=0, img_resolution=1024, img_channels=3,
                  mapping_kwargs=dict(num_layers=2), magnitude_ema_beta=0.5 ** (32 / 20e3))
    top, t = generator_options(common | dict(channel_base=32768, channel_max=512))
    _, r = generator_options(common | dict(channel_base=65536, channel_max=1024, conv_kernel=1,
                                           use_radial_filters=True))
    assert (t.topology, t.channel_base, t.channel_max, t.conv_clamp) == ("stylegan3-t", 32768, 512, 256)
    assert (r.topology, r.channel_base, r.channel_max, r.conv_clamp) == ("stylegan3-r", 65536, 1024, 256)
    assert t.synthesis_options | dict(conv_kernel=1, use_radial_filters=True) == r.synthesis_options
    assert t.synthesis_options["num_layers"] == 14 and t.synthesis_options["conv_kernel"] == 3
    assert (t.mapping_layers, t.w_avg_beta, t.mapping_lr_multiplier) == (2, 0.998, 0.01)
    # --fp32: no fp16 layers (precision only) and no clamp.
    _, fp32 = generator_options(common | dict(channel_base=32768, channel_max=512, num_fp16_res=0, conv_clamp=None))
    assert fp32.conv_clamp is None
    # A combination train.py does not write is built as written, never approximated.
    _, mixed = generator_options(common | dict(conv_kernel=1))
    assert mixed.topology == "stylegan3-t" and mixed.synthesis_options["conv_kernel"] == 1


@pytest.mark.parametrize("kwargs, words", [
    (dict(magic=1), ["G (StyleGAN3)", "['magic']", "not supported"]),
    (dict(mapping_kwargs=dict(num_layers=2, activation="linear")), ["G mapping_kwargs", "['activation']"]),
    (dict(conv_kernel=2.5), ["conv_kernel=2.5", "not an integer"]),
    (dict(output_scale="big"), ["output_scale='big'", "not a number"]),
], ids=["unknown-kwarg", "mapping-kwarg", "fractional-kernel", "text-scale"])
def test_kwargs_we_cannot_represent_are_errors_naming_them(kwargs, words):
    with pytest.raises(ConversionError) as error:
        generator_options(CONFIGS["T"].kwargs() | kwargs)
    for word in words:
        assert word in str(error.value), (word, str(error.value))


def test_an_unsupported_kwarg_through_the_cli_is_one_error_line(tmp_path):
    cfg = CONFIGS["T"]
    path, _, _ = snapshot(tmp_path, cfg, with_d=False, G_kwargs=cfg.kwargs() | dict(fancy_filters=True))
    result = run("convert", "--src", path, "--out", tmp_path / "x.ckpt")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "['fancy_filters']" in result.stderr and not (tmp_path / "x.ckpt").exists()


def hide_distribution(monkeypatch, distribution: str) -> None:
    """Entry points as if ``distribution`` were not installed (the registry reads nothing else)."""
    real = metadata.entry_points

    def entry_points(**selection):
        found = real(**selection)
        if not selection:  # all groups (not what the registry asks for)
            return found
        return type(found)(ep for ep in found
                           if getattr(getattr(ep, "dist", None), "metadata", {}).get("Name") != distribution)

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    registry.clear_cache()


def test_without_the_plugin_the_error_names_the_package_to_install(tmp_path, monkeypatch, capsys):
    path, _, _ = snapshot(tmp_path, CONFIGS["T"], with_d=False)
    hide_distribution(monkeypatch, DISTRIBUTION)
    try:
        assert "stylegan3" not in registry.names("converter") and "stylegan2" in registry.names("converter")
        code = convert_tool.main(["--src", str(path), "--out", str(tmp_path / "x.ckpt")])
    finally:
        monkeypatch.undo()
        registry.clear_cache()
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and not (tmp_path / "x.ckpt").exists()
    for word in ["StyleGAN3 network pickle", DISTRIBUTION, "pip install ./plugins/stylegan3", "not installed"]:
        assert word in err, (word, err)


def test_weights_that_do_not_fit_the_kwargs_are_an_error_naming_them(tmp_path):
    """A pickle whose tensors do not fit its own kwargs (a missing tensor; a layer of other maps)."""
    cfg = CONFIGS["T"]
    G = ref.random_generator(cfg, seed=0)
    del G.synthesis.L3_52_7.affine.bias
    path, _, _ = snapshot(tmp_path, cfg, with_d=False, G=G)
    result = run("convert", "--src", path, "--out", tmp_path / "x.ckpt")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "NVlabs G" in result.stderr and "missing: synthesis.L3_52_7.affine.bias" in result.stderr
    other = ref.random_generator(ref.Config(32, channel_max=16), seed=0)  # the kwargs still say channel_max 8
    path, _, _ = snapshot(tmp_path, cfg, with_d=False, G=other)
    with pytest.raises(convert_tool.NetworkFileError, match="do not fit .*missing: synthesis.L"):
        convert_tool.convert(path, tmp_path / "y.ckpt")


def test_a_stylegan2_pickle_is_not_taken_by_the_stylegan3_converter(tmp_path):
    from tiny_networks import tiny_module
    from nvlabs_format import nvlabs_kwargs

    module = tiny_module()
    G_kwargs, D_kwargs = nvlabs_kwargs(module)
    path = write_snapshot(tmp_path / "sg2.pkl", module.G, G_kwargs, module.D, D_kwargs, module.G_ema)
    records = convert_tool.load_network_pickle(path)
    assert not Stylegan3Converter().handles(records)
    assert load_networks(convert_tool.convert(path, tmp_path / "sg2.ckpt")).hparams["generator"]["topology"] == "skip"


def test_translate_on_a_generator_without_the_hook_names_the_option_and_the_generator(tmp_path):
    from tiny_networks import tiny_checkpoint

    ckpt = tiny_checkpoint(tmp_path / "sg2.ckpt")
    result = run("generate", "--ckpt", ckpt, "--outdir", tmp_path / "out", "--seeds", "0", "--rotate", 10)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    for word in ["--translate/--rotate", "'skip' generator", "set_transform", "Leave --translate and --rotate out"]:
        assert word in result.stderr, (word, result.stderr)
    assert not (tmp_path / "out" / "seed0000.png").exists()
