"""Official R3GAN network pickles through the converter plugin ``r3gan``, ``lightning-stylegan convert``
and ``lightning-stylegan generate``: the options and weights read back from the module trees, the
PNGs of ``generate --seeds 0-3`` (``--class 2`` for a conditional network) against the float64
reference of ``r3gan_reference`` quantized as the official ``gen_images.py`` does, within one level,
and pickles that name code refused without running it.

The pickles are written in the official format by ``r3gan_format`` (no R3GAN code), with the current
and the pre-rebranding module names. R3GAN's networks are plainly pickled ``torch.nn.Module``s, not
NVlabs' persistent classes: core's restricted unpickler reads them only with the converter's
``pickle_globals``. ``read_records`` reads them the way ``convert`` does with those globals; the
tests through the real ``convert`` need core's ``convert`` to use them (README, "Official network
pickles"), and are expected failures until it does.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("lightning_stylegan_r3gan",
                    reason="lightning-stylegan-r3gan is not installed; run `pip install -e plugins/r3gan`")

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))  # core's NVlabs fixtures

import r3gan_reference as reference  # noqa: E402
from nvlabs_format import nvlabs_kwargs, write_snapshot as write_nvlabs  # noqa: E402
from r3gan_format import write_snapshot  # noqa: E402
from tiny_networks import tiny_module  # noqa: E402

from lightning_stylegan import registry  # noqa: E402
from lightning_stylegan.converters.base import ConversionError  # noqa: E402
from lightning_stylegan.network_files import NetworkFileError, load_networks, write_checkpoint  # noqa: E402
from lightning_stylegan.tools.restricted_pickle import (ALLOWED, RestrictedUnpickler, UnsafePickleError,  # noqa: E402
                                                       load_network_pickle)
from lightning_stylegan_r3gan.convert_official import R3GANConverter  # noqa: E402
from lightning_stylegan_r3gan.discriminator import R3GANDiscriminator  # noqa: E402
from lightning_stylegan_r3gan.generator import R3GANGenerator  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

COMMAND = shutil.which("lightning-stylegan", path=str(Path(sys.executable).parent)) or "lightning-stylegan"
DISTRIBUTION = "lightning-stylegan-r3gan"
SEEDS = [0, 1, 2, 3]
RES, Z_DIM = 16, 6
# Two tiny networks in the official presets' form (D's lists G's reversed): unconditional with the
# current module names, and conditional (4 classes, D's embedding as wide as its 4x4 stage) with the
# pre-rebranding names and bfloat16 stages (G's last two, D's first two, as train.py numbers them).
CASES = {
    "unconditional": dict(c_dim=0, legacy=False, G=dict(WidthPerStage=[8, 8, 4], CardinalityPerStage=[2, 4, 2],
                                                        BlocksPerStage=[1, 2, 1])),
    "conditional-legacy": dict(c_dim=4, legacy=True, G=dict(WidthPerStage=[8, 4, 4], CardinalityPerStage=[4, 2, 1],
                                                            BlocksPerStage=[2, 1, 1], ConditionEmbeddingDimension=5,
                                                            FP16Stages=[1, 2]),
                               D=dict(ConditionEmbeddingDimension=8, FP16Stages=[0, 1])),
}
CLASS = 2
def options(case: dict, network: str) -> dict:
    """The full options of the case's G or D (D's: G's lists reversed, then its own), as read back."""
    g = dict(ExpansionFactor=2, ConditionEmbeddingDimension=None, KernelSize=3, ResamplingFilter=[1, 2, 1],
             FP16Stages=[]) | case["G"]
    if network == "G":
        return g
    reversed_lists = {key: g[key][::-1] for key in ("WidthPerStage", "CardinalityPerStage", "BlocksPerStage")}
    return g | reversed_lists | {"FP16Stages": []} | case.get("D", {})


def perturbed(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter moved off its initial value (the last convolution of a block starts at zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.3)
    return net.eval().requires_grad_(False)


def networks(case: dict) -> tuple[R3GANGenerator, R3GANDiscriminator, R3GANGenerator]:
    """G, D and G_ema (other weights than G) of a case, as our plugin modules with the official names."""
    def generator(seed):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            G = perturbed(R3GANGenerator(z_dim=Z_DIM, c_dim=case["c_dim"], img_resolution=RES, img_channels=3,
                                         **options(case, "G")), seed)
        z = torch.randn(8, Z_DIM, generator=torch.Generator().manual_seed(seed))
        c = torch.eye(case["c_dim"])[torch.arange(8) % case["c_dim"]] if case["c_dim"] else None
        with torch.no_grad():  # images of standard deviation 0.4, mostly inside [-1, 1]: few pixels clamped
            G.AggregationLayer.Layer.weight.mul_(0.4 / G(z, c).std())
        return G

    with torch.random.fork_rng():
        torch.manual_seed(2)
        D = perturbed(R3GANDiscriminator(RES, 3, c_dim=case["c_dim"], **options(case, "D")), 2)
    return generator(0), D, generator(1)


def read_records(path: Path) -> dict:
    """The pickle's records as ``convert`` reads them with the converter's ``pickle_globals``."""
    with open(path, "rb") as file:
        unpickler = RestrictedUnpickler(file, str(path))
        unpickler.allowed = {**ALLOWED, **R3GANConverter.pickle_globals}
        return unpickler.load()


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([COMMAND, *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module", params=sorted(CASES))
def snapshot(request, tmp_path_factory):
    """(case name, case, pickle, our G, D and G_ema it holds)."""
    case = CASES[request.param]
    root = tmp_path_factory.mktemp(f"r3gan_{request.param}")
    G, D, G_ema = networks(case)
    path = write_snapshot(root / "network-snapshot-000004.pkl", G, D, G_ema, legacy=case["legacy"])
    return request.param, case, path, G, D, G_ema


def test_the_converter_plugin_is_registered_with_its_distribution():
    assert registry.index("converter")["r3gan"].distribution == DISTRIBUTION
    assert registry.load("converter", "r3gan") is R3GANConverter
    listing = run("plugins", "--kind", "converter")
    assert any(line.split()[:3] == ["converter", "r3gan", DISTRIBUTION] for line in listing.stdout.splitlines())


def class_names(record, path: str = "") -> dict[str, str]:
    """{dotted path: class name} of a record tree."""
    names = {path: record.class_name}
    for key, child in record.modules.items():
        names |= class_names(child, f"{path}.{key}" if path else key)
    return names


def test_both_module_names_give_the_same_records(tmp_path):
    """A pickle of the code before its rebranding (training.networks_baseline, BaselineGAN.*) reads as
    the same records, named by the current classes, as the official legacy.py maps them."""
    G, D, G_ema = networks(CASES["unconditional"])
    current = read_records(write_snapshot(tmp_path / "current.pkl", G, D, G_ema))
    legacy = read_records(write_snapshot(tmp_path / "legacy.pkl", G, D, G_ema, legacy=True))
    for name in ("G", "D", "G_ema"):
        classes = class_names(current[name])
        assert classes == class_names(legacy[name])
        assert classes[""] == f"training.networks.{'Discriminator' if name == 'D' else 'Generator'}"
        assert classes["Model.MainLayers.1.Layers.1"] == "R3GAN.Networks.ResidualBlock"
        state, legacy_state = current[name].state_dict(), legacy[name].state_dict()
        assert list(state) == list(legacy_state) and all(torch.equal(state[k], legacy_state[k]) for k in state)
    assert R3GANConverter().handles(current) and R3GANConverter().handles(legacy)
    assert current["training_set_kwargs"]["resolution"] == RES and current["cur_nimg"] == 4000


def test_options_and_weights_carry_over_one_to_one(snapshot):
    name, case, path, G, D, G_ema = snapshot
    hparams, ours_G, ours_D, ours_G_ema = R3GANConverter().networks(read_records(path))
    assert (hparams["resolution"], hparams["channels"], hparams["label_dim"]) == (RES, 3, case["c_dim"])
    assert hparams["generator"]["topology"] == hparams["discriminator"]["topology"] == "r3gan"
    assert hparams["generator"]["z_dim"] == Z_DIM
    assert hparams["generator"]["synthesis_options"] == options(case, "G")
    assert hparams["discriminator"]["topology_options"] == options(case, "D")
    for ours, source, prefix in ((ours_G, G, "synthesis."), (ours_G_ema, G_ema, "synthesis."), (ours_D, D, "")):
        state = ours.state_dict()
        assert list(state) == [prefix + key for key in source.state_dict()]
        assert all(torch.equal(state[prefix + key], value) for key, value in source.state_dict().items())


def reference_pngs(G: R3GANGenerator, case: dict) -> np.ndarray:
    """gen_images.py's uint8 images of the seeds from the float64 reference: z of
    ``RandomState(seed).randn(1, z_dim)``, the one-hot class, ``(img * 127.5 + 128).clamp(0, 255)``
    truncated to uint8, channels last."""
    images = []
    for seed in SEEDS:
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, Z_DIM))
        c = torch.nn.functional.one_hot(torch.tensor([CLASS]), case["c_dim"]).double() if case["c_dim"] else None
        img = reference.generator(G.state_dict(), z, c, options(case, "G")["CardinalityPerStage"],
                                  options(case, "G")["BlocksPerStage"])
        images.append((img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy())
    return np.stack(images)


def test_generate_writes_the_pngs_of_gen_images(snapshot, tmp_path):
    """The converted networks as a checkpoint, then the real ``generate --seeds 0-3`` (``--class 2``)."""
    name, case, path, G, D, G_ema = snapshot
    ckpt = write_checkpoint(tmp_path / "converted.ckpt", *R3GANConverter().networks(read_records(path)),
                            source=str(path))
    result = run("generate", "--ckpt", ckpt, "--outdir", tmp_path / "out", "--seeds", "0-3",
                 *(["--class", CLASS] if case["c_dim"] else []))
    assert result.returncode == 0, result.stderr
    ours = np.stack([np.asarray(Image.open(tmp_path / "out" / f"seed{seed:04d}.png")) for seed in SEEDS])
    expected = reference_pngs(G_ema, case)
    assert ours.shape == expected.shape == (4, RES, RES, 3)
    assert np.abs(ours.astype(int) - expected.astype(int)).max() <= 1
    assert expected.std(axis=(1, 2)).mean() > 20 and ((expected == 0) | (expected == 255)).mean() < 0.2


def test_convert_writes_the_converter_networks(snapshot, tmp_path):
    """The real ``convert`` writes the checkpoint of the converter's networks (which ``generate`` turns
    into gen_images.py's PNGs, above)."""
    name, case, path, G, D, G_ema = snapshot
    result = run("convert", "--src", path, "--out", tmp_path / "cli.ckpt")
    assert result.returncode == 0, result.stderr
    cli = load_networks(tmp_path / "cli.ckpt")
    hparams, ours_G, ours_D, ours_G_ema = R3GANConverter().networks(read_records(path))
    assert cli.hparams == hparams
    for net, ours in ((cli.G, ours_G), (cli.D, ours_D), (cli.G_ema, ours_G_ema)):
        assert all(torch.equal(value, ours.state_dict()[key]) for key, value in net.state_dict().items())


class Payload:
    """Pickles as the call ``os.system(command)``: what a loader that runs a pickle's code would run."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        import os

        return os.system, (self.command,)


def test_a_pickle_that_names_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    G, D, G_ema = networks(CASES["unconditional"])

    def inject(networks):
        networks["G_ema"].Model.MainLayers[0].__dict__["DataType"] = Payload(f"touch {marker}")

    path = write_snapshot(tmp_path / "evil.pkl", G, D, G_ema, extra=inject)
    with pytest.raises(UnsafePickleError, match="system"):
        read_records(path)
    result = run("convert", "--src", path, "--out", tmp_path / "x.ckpt")
    assert result.returncode == 2 and "refusing" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists() and not (tmp_path / "x.ckpt").exists()


def tampered(tmp_path: Path, change) -> dict:
    """Records of the unconditional case's pickle with ``change(networks)`` made to its official modules."""
    G, D, G_ema = networks(CASES["unconditional"])
    return read_records(write_snapshot(tmp_path / "tampered.pkl", G, D, G_ema, extra=change))


def _set(path: str, value, nets=("G", "G_ema")):
    """A change to the official G and G_ema: set the attribute at the dotted ``path`` below each."""
    def change(networks):
        *parents, last = path.split(".")
        for net in nets:
            module = networks[net]
            for name in parents:
                module = getattr(module, name)
            setattr(module, last, value)

    return change


@pytest.mark.parametrize("change, words", [
    (_set("Model.MainLayers.1.DataType", torch.float16), ["Model.MainLayers.1", "DataType", "float16"]),
    (_set("Model.MainLayers.1.Layers", torch.nn.ModuleList([])), ["Model.MainLayers.1", "Layers", "entries []"]),
    (_set("Model.MainLayers.2.Layers.1.LinearLayer2.Layer", torch.nn.Conv2d(8, 8, 5, groups=2, bias=False)),
     ["KernelSize", "[3, 3, 5]"]),
    (_set("Model.MainLayers.1.Layers.0.Resampler.Kernel", torch.rand(4, 4)), ["Model.MainLayers.1", "Kernel"]),
    (_set("c_dim", 3), ["c_dim=3", "0 labels"]),
    (_set("img_resolution", 24), ["not R3GAN networks the r3gan plugin builds", "img_resolution=24"]),
    (_set("Model.MainLayers.2.DataType", torch.bfloat16, nets=("G",)), ["G and G_ema", "different options"]),
], ids=["float16-stage", "no-layers", "kernel-size", "not-an-interpolation-filter", "c-dim", "resolution",
        "G-is-not-G_ema"])
def test_what_our_networks_cannot_compute_is_an_error_naming_it(tmp_path, change, words):
    with pytest.raises(ConversionError) as error:
        R3GANConverter().networks(tampered(tmp_path, change))
    for word in words:
        assert word in str(error.value), (word, str(error.value))


def test_a_pickle_without_d_gets_the_d_of_train_py_in_its_hyper_parameters(tmp_path):
    """G's lists reversed, its bfloat16 stages mirrored, the label embedding as wide as the 4x4 stage."""
    case = CASES["conditional-legacy"]
    G, _, G_ema = networks(case)
    records = read_records(write_snapshot(tmp_path / "no-d.pkl", G, None, G_ema, legacy=True))
    hparams, _, D, _ = R3GANConverter().networks(records)
    assert D is None and hparams["discriminator"]["topology_options"] == options(case, "D")


def test_weights_that_do_not_fit_are_an_error_naming_them(tmp_path):
    """G's weights must fit the options read from G_ema: a block of another width is named."""
    def change(networks):
        block = networks["G"].Model.MainLayers[1].Layers[2]
        block.LinearLayer1.Layer.weight = torch.nn.Parameter(torch.zeros(8, 8, 1, 1))

    with pytest.raises(NetworkFileError, match=r"NVlabs G: .*wrong shape: synthesis.MainLayers.1.Layers.2.Linear"):
        R3GANConverter().networks(tampered(tmp_path, change))


def test_r3gan_and_nvlabs_pickles_are_told_apart(tmp_path):
    """No other installed converter takes an R3GAN pickle, and ``r3gan`` takes no NVlabs pickle."""
    G, D, G_ema = networks(CASES["unconditional"])
    records = read_records(write_snapshot(tmp_path / "r3gan.pkl", G, D, G_ema))
    takers = [name for name in registry.names("converter") if registry.load("converter", name)().handles(records)]
    assert takers == ["r3gan"]
    module = tiny_module()
    G_kwargs, D_kwargs = nvlabs_kwargs(module)
    path = write_nvlabs(tmp_path / "sg2.pkl", module.G, G_kwargs, module.D, D_kwargs, module.G_ema)
    assert not R3GANConverter().handles(load_network_pickle(path))
