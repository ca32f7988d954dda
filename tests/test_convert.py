"""``lightning-stylegan convert`` on pickles in NVlabs' published format (written by
``nvlabs_format``, no NVlabs code), checked against the float64 reference of ``reference_stylegan2``;
the restricted unpickler against malicious pickles; ``--export``."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import zipfile

import pytest
import torch
from nvlabs_format import nvlabs_kwargs, write_snapshot
from reference_stylegan2 import discriminator as ref_discriminator
from reference_stylegan2 import generator as ref_generator
from tiny_networks import tiny_module

from lightning_stylegan.network_files import load_generator, load_networks
from lightning_stylegan.network_files import export_generator
from lightning_stylegan.converters.stylegan2 import discriminator_options as _discriminator_options
from lightning_stylegan.converters.stylegan2 import generator_options as _generator_options
from lightning_stylegan.converters.stylegan2 import nvlabs_networks
from lightning_stylegan.tools.convert import ConversionError, convert, main
from lightning_stylegan.tools.restricted_pickle import PersistentRecord, UnsafePickleError, load_network_pickle


pytestmark = pytest.mark.usefixtures("one_thread")


def randomized(module):
    """Biases, noise strengths and w_avg away from their initial values, so every convention shows."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, value in [*module.named_parameters(), *module.named_buffers()]:
            if name.endswith(("bias", "noise_strength", "w_avg")):
                value.copy_(torch.randn(value.shape, generator=generator) * 0.3)
        module.G_ema.load_state_dict(module.G.state_dict())
        for value in module.G_ema.parameters():
            value.mul_(0.9)
    return module


def snapshot(tmp_path, **kwargs):
    module = randomized(tiny_module(**kwargs))
    G_kwargs, D_kwargs = nvlabs_kwargs(module)
    path = write_snapshot(tmp_path / "network-snapshot-000000.pkl", module.G, G_kwargs, module.D, D_kwargs, module.G_ema)
    return module, path


@pytest.mark.parametrize("kwargs", [dict(resolution=16, channels=3, label_dim=0),
                                    dict(resolution=32, channels=1, label_dim=4, conv_clamp=256.0)],
                         ids=["16px-rgb", "32px-gray-conditional-clamp"])
def test_converted_networks_match_the_reference_computation(tmp_path, kwargs):
    """002_0a18e98dc55024d1.txt Eqs. 1-3 and Appendix B, computed naively in float64 from the
    pickle's own tensors: G_ema images (const noise; psi 1 and 0.7) and D logits within 1e-4."""
    module, path = snapshot(tmp_path, **kwargs)
    networks = load_networks(convert(path, tmp_path / "converted.ckpt"))
    state = {k: v for k, v in load_network_pickle(path)["G_ema"].state_dict().items()}
    d_state = load_network_pickle(path)["D"].state_dict()
    res, label_dim = kwargs["resolution"], kwargs["label_dim"]
    clamp = kwargs.get("conv_clamp")
    z = torch.randn(4, 32, generator=torch.Generator().manual_seed(2))
    c = torch.eye(label_dim)[torch.arange(4) % label_dim] if label_dim else None
    for psi in (1.0, 0.7):
        ours = networks.G_ema(z, c, truncation_psi=psi, noise_mode="const").double()
        reference = ref_generator(state, z, c, res, num_layers=2, psi=psi, clamp=clamp)
        assert (ours - reference).abs().max() < 1e-4, psi
    images = torch.randn(4, kwargs["channels"], res, res, generator=torch.Generator().manual_seed(3))
    ours = networks.D(images, c).double()
    reference = ref_discriminator(d_state, images, c, res, group_size=4, mapping_layers=2, clamp=clamp)
    assert (ours - reference).abs().max() < 1e-4


@pytest.mark.parametrize("g_topology, d_topology", [("original", "skip"), ("residual", "original")])
def test_every_architecture_round_trips(tmp_path, g_topology, d_topology):
    """NVlabs 'orig'/'skip'/'resnet' map to our topologies and the weights carry over exactly."""
    module = randomized(tiny_module(topology=g_topology))
    module.D = __import__("lightning_stylegan.networks", fromlist=["x"]).build_discriminator(
        d_topology, 16, 3, channel_base=256, channel_max=32, mapping_layers=2)
    module.hparams["discriminator"]["topology"] = d_topology
    G_kwargs, D_kwargs = nvlabs_kwargs(module)
    path = write_snapshot(tmp_path / "s.pkl", module.G, G_kwargs, module.D, D_kwargs, module.G_ema)
    networks = load_networks(convert(path, tmp_path / "c.ckpt"))
    assert networks.hparams["generator"]["topology"] == g_topology
    assert networks.hparams["discriminator"]["topology"] == d_topology
    for ours, source in [(networks.G_ema, module.G_ema), (networks.G, module.G), (networks.D, module.D)]:
        for (key, a), (_, b) in zip(sorted(ours.state_dict().items()), sorted(source.state_dict().items())):
            assert torch.equal(a, b), key


# NVlabs train.py's configurations: mapping layers, feature-map scale, minibatch-stddev group.
CONFIGS = {"auto": (2, 0.5, 4), "stylegan2": (8, 1, 4), "paper256": (8, 0.5, 8), "paper512": (8, 1, 8),
           "paper1024": (8, 1, 4), "cifar": (2, 1, 32)}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_every_nvlabs_configuration_maps_to_our_options(config):
    mapping_layers, fmaps, mbstd = CONFIGS[config]
    resolution, c_dim = (32, 10) if config == "cifar" else (256, 0)
    common = dict(c_dim=c_dim, img_resolution=resolution, img_channels=3)
    G_kwargs = dict(z_dim=512, w_dim=512, mapping_kwargs=dict(num_layers=mapping_layers),
                    synthesis_kwargs=dict(channel_base=int(fmaps * 32768), channel_max=512, num_fp16_res=4,
                                          conv_clamp=256), **common)
    D_kwargs = dict(block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=mbstd),
                    channel_base=int(fmaps * 32768), channel_max=512, num_fp16_res=4, conv_clamp=256,
                    architecture="orig" if config == "cifar" else "resnet", **common)
    top, generator = _generator_options(G_kwargs)
    discriminator = _discriminator_options(D_kwargs)
    assert (generator.topology, generator.normalization, generator.mapping_layers) == ("skip", "demod", mapping_layers)
    assert generator.channel_base == discriminator.channel_base == int(fmaps * 32768)
    assert generator.conv_clamp == discriminator.conv_clamp == 256
    assert discriminator.mbstd_group_size == mbstd and discriminator.mapping_layers == 8
    assert discriminator.topology == ("original" if config == "cifar" else "residual")
    assert top["c_dim"] == c_dim


def test_options_we_cannot_represent_are_errors_naming_them():
    base = dict(z_dim=8, w_dim=8, c_dim=0, img_resolution=16, img_channels=3)
    with pytest.raises(ConversionError, match="resample_filter"):
        _generator_options(base | dict(synthesis_kwargs=dict(resample_filter=[1, 2, 1])))
    with pytest.raises(ConversionError, match=r"\['magic'\]"):
        _generator_options(base | dict(mapping_kwargs=dict(magic=1)))
    with pytest.raises(ConversionError, match="cmap_dim"):
        _discriminator_options(dict(c_dim=3, img_resolution=16, img_channels=3, cmap_dim=7))


class Boom:
    """Unpickling this would call os.system and create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G": Boom(marker)}))
    with pytest.raises(UnsafePickleError, match=r"posix\.system|os\.system"):
        load_network_pickle(path)
    assert not marker.exists()
    builtin = tmp_path / "exec.pkl"
    builtin.write_bytes(pickle.dumps({"G_ema": eval}))  # a reference to builtins.eval
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        load_network_pickle(builtin)
    result = subprocess.run([sys.executable, "-m", "lightning_stylegan.cli", "convert", "--src", str(path),
                             "--out", str(tmp_path / "x.ckpt")], capture_output=True, text=True)
    assert result.returncode == 2 and "refusing" in result.stderr and not marker.exists()


def test_the_embedded_module_source_is_never_executed(tmp_path):
    """NVlabs' own loader exec()s module_src; ours keeps it as text."""
    marker = tmp_path / "executed"
    module = tiny_module()
    G_kwargs, D_kwargs = nvlabs_kwargs(module)
    source = f"open({str(marker)!r}, 'w').write('ran')\nclass Generator: pass\n"
    path = write_snapshot(tmp_path / "s.pkl", module.G, G_kwargs, module.D, D_kwargs, module.G_ema, module_src=source)
    convert(path, tmp_path / "c.ckpt")
    assert not marker.exists()


def test_cli_converts_and_exports_without_pickled_objects(tmp_path):
    module, path = snapshot(tmp_path)
    out = tmp_path / "converted.ckpt"
    result = subprocess.run(["lightning-stylegan", "convert", "--src", str(path), "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    checkpoint = torch.load(out, weights_only=True)
    assert checkpoint["converted_from"] == str(path) and checkpoint["counters"]["images_seen"] == 0
    result = subprocess.run(["lightning-stylegan", "convert", "--src", str(out), "--out", str(tmp_path / "G"),
                             "--export"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "G.json").is_file()
    exported = load_generator(tmp_path / "G.pt")
    z = torch.randn(3, 32)
    assert torch.equal(exported(z, noise_mode="const"), module.G_ema(z, noise_mode="const"))


def test_not_a_network_file_is_a_clear_error(tmp_path):
    text = tmp_path / "notes.pkl"
    text.write_bytes(pickle.dumps({"hello": [1, 2]}))
    with pytest.raises(UnsafePickleError, match="not NVlabs' dict with G, D and G_ema"):
        convert(text, tmp_path / "x.ckpt")


ACCEPTS = ["convert accepts: NVlabs stylegan2-ada-pytorch network pickles (.pkl",
           "rosinality stylegan2-pytorch checkpoints (.pt", "--export a lightning-stylegan checkpoint (.ckpt)"]


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _saved(path, obj, **kwargs):
    torch.save(obj, path, **kwargs)
    return path


def _zip(path):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("images/0.png", b"not a network")
    return path


NOT_NETWORKS = {  # case -> (make the file in tmp_path, words of the message besides the file name)
    "missing file": (lambda p: p / "missing.pkl", ["does not exist", *ACCEPTS]),
    "directory": (lambda p: p, ["is a directory", *ACCEPTS]),
    "empty file": (lambda p: _write(p / "empty.pt", b""), ["is empty (0 bytes)", *ACCEPTS]),
    "text file": (lambda p: _write(p / "notes.pkl", b"hello world\n"),
                  ["is not a network file", "neither a Python pickle nor a torch.save file", "hello", *ACCEPTS]),
    "random bytes": (lambda p: _write(p / "noise.pt", bytes(range(7, 256)) * 4),
                     ["is not a network file", *ACCEPTS]),
    "random bytes after a pickle opcode": (lambda p: _write(p / "noise.pkl", b"\x80" + bytes(range(95, 256)) * 4),
                                           ["is not a network file", "cannot be read as one", *ACCEPTS]),
    "truncated pickle": (lambda p: _write(p / "cut.pkl", pickle.dumps({"G": list(range(100))})[:40]),
                         ["is not a network file", "cannot be read as one", *ACCEPTS]),
    "pickle of a list": (lambda p: _write(p / "list.pkl", pickle.dumps([1, 2, 3])),
                         ["holds list, not NVlabs' dict with G, D and G_ema", *ACCEPTS]),
    "torch file of a dict": (lambda p: _saved(p / "dict.pt", {"a": 1}),
                             ["torch.save file holding a dict with keys 'a'", "neither a rosinality", *ACCEPTS]),
    "torch file of a tensor": (lambda p: _saved(p / "tensor.pt", torch.zeros(3)),
                               ["a single tensor of shape [3]", *ACCEPTS]),
    "legacy torch file": (lambda p: _saved(p / "old.pt", {"a": 1}, _use_new_zipfile_serialization=False),
                          ["torch.save file holding a dict with keys 'a'", *ACCEPTS]),
    "another LightningModule": (lambda p: _saved(p / "other.ckpt", {"state_dict": {}, "hyper_parameters": {}}),
                                ["another LightningModule", *ACCEPTS]),
    "zip that is no torch file": (lambda p: _zip(p / "images.pt"), ["torch.load(weights_only=True) cannot read it",
                                                                     *ACCEPTS]),
    "malicious pickle": (lambda p: _write(p / "evil.pkl", pickle.dumps({"G": Boom(p / "pwned")})),
                         ["refusing to load it", *ACCEPTS]),
}


def run_main(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(map(str, argv)))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", list(NOT_NETWORKS))
def test_convert_of_a_file_that_is_no_network_prints_one_line_and_exits_2(tmp_path, capsys, case):
    make, words = NOT_NETWORKS[case]
    src = make(tmp_path)
    code, out, err = run_main(capsys, "--src", src, "--out", tmp_path / "out.ckpt")
    assert code == 2 and out == "" and not (tmp_path / "out.ckpt").exists()
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {src} "), err
    for word in words:
        assert word in err, (word, err)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("kind", ["checkpoint", "exported generator"])
def test_our_own_files_are_converted_only_with_export(tmp_path, capsys, tiny_ckpt, kind):
    src = tiny_ckpt if kind == "checkpoint" else export_generator(load_generator(tiny_ckpt), tmp_path / "G")
    code, out, err = run_main(capsys, "--src", src, "--out", tmp_path / "copy.ckpt")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: {src} is already a lightning-stylegan {kind}") and "--export" in err
    assert not (tmp_path / "copy.ckpt").exists()
    code, out, err = run_main(capsys, "--src", src, "--out", tmp_path / "again", "--export")
    assert code == 0 and err == "" and (tmp_path / "again.pt").is_file() and (tmp_path / "again.json").is_file()
    z = torch.randn(2, 32)
    assert torch.equal(load_generator(tmp_path / "again.pt")(z, noise_mode="const"),
                       load_generator(src)(z, noise_mode="const"))


def test_a_legacy_format_rosinality_checkpoint_is_read_with_torch_load(tmp_path, capsys):
    """torch.save files from before torch 1.6 (older rosinality checkpoints) are no zip files."""
    from test_convert_rosinality import rosinality_checkpoint

    data = rosinality_checkpoint(size=16, style_dim=8, n_mlp=1, parts=("g_ema",), latent_avg=True)
    torch.save(data, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(tmp_path / "old.pt")
    code, out, err = run_main(capsys, "--src", tmp_path / "old.pt", "--out", tmp_path / "old.ckpt")
    assert code == 0, err
    assert load_networks(tmp_path / "old.ckpt").hparams["resolution"] == 16


def test_an_unwritable_out_is_one_error_line(tmp_path, capsys):
    module, path = snapshot(tmp_path)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    code, out, err = run_main(capsys, "--src", path, "--out", tmp_path / "taken")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert str(tmp_path / "taken") in err and "--out" in err


def test_a_stylegan3_generator_is_refused_by_name():
    record = PersistentRecord("training.networks_stylegan3.Generator", (), {}, {}, {}, {}, {})
    with pytest.raises(ConversionError, match="StyleGAN3 generator .*networks_stylegan3.*only StyleGAN2"):
        nvlabs_networks({"G_ema": record})
