"""Generators without a W space (R3GAN's kind: z and labels straight to images; no mapping network,
styles, truncation or noise). A plugin the tests install declares ``w_space = False``; everything
that can work without W works with it (build, checkpoints, export, sample grids, ``generate`` of
seeds and Z interpolations, the metrics, PPL in Z), and everything that needs W refuses with one
line naming what the generator lacks."""
from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from PIL import Image

from cli_run import cli
from metric_plugins import TinyDistance, install_tiny_extractor
from plugin_site import write_distribution

from lightning_stylegan import cli as command
from lightning_stylegan.analysis.layers import synthesis_layers
from lightning_stylegan.data.dataset import ImageDataset
from lightning_stylegan.errors import ConfigError
from lightning_stylegan.images import image_grid, to_uint8
from lightning_stylegan.metrics import evaluate
from lightning_stylegan.metrics.callback import Metrics
from lightning_stylegan.metrics.catalog import parse_metrics
from lightning_stylegan.metrics.evaluate import MetricOptions, compute_metrics
from lightning_stylegan.metrics.ppl import pair_distances, perceptual_path_length
from lightning_stylegan.metrics.ppl import slerp as unit_slerp
from lightning_stylegan.network_files import export_generator, load_generator, load_networks, write_checkpoint
from lightning_stylegan.networks import Generator, NoWSpaceError, has_w_space
from lightning_stylegan.tools.convert import convert
from lightning_stylegan.tools.generate import generate_images, seed_to_z, slerp
from lightning_stylegan.tools.project import project
from lightning_stylegan.training.run_networks import initial_networks, network_hparams
from lightning_stylegan.training.snapshots import SampleGrid, log_rho_histograms

pytestmark = pytest.mark.usefixtures("one_thread")

# The example of docs/plugins.md ("Generators without a W space"), word for word.
PLUGIN_SOURCE = '''
import torch
import torch.nn.functional as F
from torch import nn


class Direct(nn.Module):
    """z (+ a label embedding) -> a 4x4 basis -> (2x up, 3x3 conv) per octave -> image; no W."""

    api_version = 1
    w_space = False

    def __init__(self, z_dim: int, c_dim: int, img_resolution: int, img_channels: int, width: int = 4):
        super().__init__()
        self.embed = nn.Linear(c_dim, z_dim) if c_dim else None
        self.basis = nn.Linear(z_dim, width * 16)
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1)
                                   for _ in range(img_resolution.bit_length() - 3))
        self.torgb = nn.Conv2d(width, img_channels, 1)

    def forward(self, z, c=None):
        x = z if self.embed is None else z + self.embed(c)
        x = self.basis(x).reshape(len(z), -1, 4, 4)
        for conv in self.convs:
            x = F.leaky_relu(conv(F.interpolate(x, scale_factor=2.0)), 0.2)
        return torch.tanh(self.torgb(x))
'''
REFUSAL = "error: the generator 'direct' has no W space (no mapping network, styles or truncation): "
RES, Z_DIM = 8, 8


@pytest.fixture
def direct(site):
    """The ``direct`` generator plugin (and the ``tiny`` feature extractor) installed under ``site``."""
    write_distribution(site, "lsg-test-direct", {"lightning_stylegan.generators": {"direct": "lsg_test_direct:Direct"}},
                       modules={"lsg_test_direct": PLUGIN_SOURCE})
    install_tiny_extractor(site)
    return site


def direct_hparams(label_dim: int = 0, **synthesis_options) -> dict:
    return network_hparams(RES, 3, label_dim, generator=dict(topology="direct", z_dim=Z_DIM,
                                                            synthesis_options=synthesis_options),
                           discriminator=dict(channel_base=64, channel_max=16, mapping_layers=1))


def direct_checkpoint(path: Path, label_dim: int = 0) -> Path:
    torch.manual_seed(0)
    hparams = direct_hparams(label_dim)
    return write_checkpoint(path, hparams, *initial_networks(hparams), source="tests")


def seed_images(G, seeds, c=None) -> torch.Tensor:
    """NVlabs' generate.py written out for a W-free G: z of RandomState(seed), G(z, c), quantized."""
    with torch.no_grad():
        return to_uint8(G(torch.cat([seed_to_z(seed, G.z_dim) for seed in seeds]).float(), c))


def png(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def refused(capsys, *argv) -> str:
    """Run ``lightning-stylegan *argv`` (the console script's function); it must exit 2 with one
    line naming what the generator lacks."""
    assert command.main([str(arg) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(REFUSAL) and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_the_plugin_is_built_without_a_w_space(direct):
    assert PLUGIN_SOURCE.strip() in (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()
    hparams = direct_hparams(width="3")  # typed on the command line: read as YAML
    assert hparams["generator"]["synthesis_options"] == {"width": 3}
    assert hparams["generator"]["channel_base"] is None  # a W-only option: not resolved, not used
    G = initial_networks(hparams).G_ema
    assert not has_w_space(G) and G.w_space is False and G.mapping is None and G.num_ws == 0 and G.w_dim == 0
    assert type(G.synthesis).__name__ == "Direct" and G.synthesis.basis.out_features == 3 * 16
    assert all(name.startswith("synthesis.") for name in G.state_dict())
    assert G.plugins() == {"generator": "direct"}  # no normalization is used, none is recorded
    z = torch.randn(4, Z_DIM)
    assert G(z).shape == (4, 3, RES, RES) and torch.equal(G(z, None, noise_mode="const"), G.synthesis(z, None))
    again = Generator(**G.init_kwargs)
    again.load_state_dict(G.state_dict())
    assert again.init_kwargs == G.init_kwargs and torch.equal(again(z), G(z))
    conditional = Generator(img_resolution=16, z_dim=Z_DIM, c_dim=3, topology="direct")
    c = torch.eye(3)[[0, 2]]
    assert conditional(z[:2], c).shape == (2, 3, 16, 16)
    assert not torch.equal(conditional(z[:2], c), conditional(z[:2], c.flip(0)))
    with pytest.raises(ConfigError, match="has no option 'w_dim'; its options are: width \\(int\\)$"):
        direct_hparams(w_dim=4)


def test_what_needs_w_is_refused_in_python(direct):
    G = Generator(img_resolution=RES, z_dim=Z_DIM, topology="direct").eval()
    z = torch.randn(2, Z_DIM)
    calls = [lambda: G(z, truncation_psi=0.7), lambda: G(z, truncation_cutoff=2),
             lambda: G.mix_styles(torch.zeros(2, 1, 1), None, 0.9), lambda: synthesis_layers(G),
             lambda: project(G, torch.zeros(3, RES, RES, dtype=torch.uint8), TinyDistance(), num_steps=1),
             lambda: perceptual_path_length(G, TinyDistance(), num_samples=2, space="w", progress=False),
             lambda: generate_images(G, [0], truncation_psi=0.5)]
    for call in calls:
        with pytest.raises(NoWSpaceError) as error:
            call()
        message = str(error.value)
        assert message.startswith(REFUSAL.removeprefix("error: ")) and "\n" not in message
        assert isinstance(error.value, ValueError)
    with pytest.raises(ValueError, match="makes 8x8 images only, got resolution=4"):
        G(z, resolution=4)
    with pytest.raises(ConfigError, match="has no W space.*cannot grow progressively; train it with model.growth none"):
        Generator(img_resolution=RES, z_dim=Z_DIM, topology="direct", progressive=True)


def test_checkpoint_export_and_load_round_trip(direct, tmp_path):
    ckpt = direct_checkpoint(tmp_path / "direct.ckpt")
    networks = load_networks(ckpt)
    assert networks.G.w_space is False and networks.D is not None and networks.G_ema.w_space is False
    recorded = torch.load(ckpt, weights_only=True)["plugins"]
    assert recorded["generator"] == {"name": "direct", "distribution": "lsg-test-direct", "version": "1.0"}
    assert "normalization" not in recorded
    z = torch.randn(3, Z_DIM)
    expected = networks.G_ema(z)
    for path in (export_generator(networks.G_ema, tmp_path / "g.pt"), convert(ckpt, tmp_path / "c", export=True)):
        G = load_generator(path)
        assert G.w_space is False and torch.equal(G(z), expected)
        assert json.loads(path.with_suffix(".json").read_text())["topology"] == "direct"


def test_sample_grid_and_log_step(direct, tmp_path):
    G = load_generator(direct_checkpoint(tmp_path / "direct.ckpt"))
    grid = SampleGrid(rows=2, columns=3, seed=5)
    grid.directory = tmp_path / "samples"
    module = SimpleNamespace(G_ema=G, device=torch.device("cpu"), stage=SimpleNamespace(resolution=RES, alpha=1.0),
                             images_seen=0)
    grid._write_grid(SimpleNamespace(loggers=[]), module, "fakes_init.png")
    z = torch.randn(6, Z_DIM, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = image_grid(to_uint8(G(z)), 3)
    assert np.array_equal(png(tmp_path / "samples" / "fakes_init.png"), expected.permute(1, 2, 0).numpy())
    with pytest.raises(NoWSpaceError, match="samples.truncation_psi 0.5 truncates in W; leave it 1$"):
        SampleGrid(truncation_psi=0.5).on_train_start(None, module)
    log_rho_histograms([TensorBoardLogger(tmp_path)], G, 0)  # no blocks(), no PIN layers: nothing to log


def test_generate_seeds_and_slerp_through_the_command(direct, tmp_path):
    ckpt = direct_checkpoint(tmp_path / "direct.ckpt")
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(direct), os.environ.get("PYTHONPATH")]))}
    result = cli("generate", "--ckpt", ckpt, "--outdir", tmp_path / "seeds", "--seeds", "0-2", "--noise-mode",
                 "random", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    G = load_generator(ckpt)
    images = seed_images(G, [0, 1, 2])
    for seed, image in zip([0, 1, 2], images):
        assert np.array_equal(png(tmp_path / "seeds" / f"seed{seed:04d}.png"), image.permute(1, 2, 0).numpy())
    result = cli("generate", "--ckpt", ckpt, "--outdir", tmp_path / "slerp", "--interpolate", "--slerp",
                 "--seeds", "0,1", "--frames", 4, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    frames = sorted((tmp_path / "slerp").glob("frame*.png"))
    assert len(frames) == 5 and (tmp_path / "slerp" / "interpolation.gif").is_file()
    assert np.array_equal(png(frames[0]), images[0].permute(1, 2, 0).numpy())
    assert np.array_equal(png(frames[-1]), images[1].permute(1, 2, 0).numpy())
    middle = slerp(seed_to_z(0, Z_DIM), seed_to_z(1, Z_DIM), 0.5)
    with torch.no_grad():
        assert np.array_equal(png(frames[2]), to_uint8(G(middle.float()))[0].permute(1, 2, 0).numpy())
    conditional = load_generator(direct_checkpoint(tmp_path / "conditional.ckpt", label_dim=3))
    assert torch.equal(generate_images(conditional, [4], class_idx=2), seed_images(conditional, [4], torch.eye(3)[[2]]))


def test_generate_project_and_analyze_refuse_what_needs_w(direct, tmp_path, capsys):
    ckpt = direct_checkpoint(tmp_path / "direct.ckpt")
    out = tmp_path / "out"
    generate = ["generate", "--ckpt", ckpt, "--outdir", out]
    assert "--trunc and --trunc-cutoff" in refused(capsys, *generate, "--trunc", 0.7)
    assert "--trunc and --trunc-cutoff" in refused(capsys, *generate, "--trunc-cutoff", 2)
    assert "--trunc and --trunc-cutoff" in refused(capsys, *generate, "--interpolate", "--seeds", "0,1", "--trunc", 0.5)
    assert "--style-mix swaps styles" in refused(capsys, *generate, "--style-mix")
    assert "--projected-w renders a w" in refused(capsys, *generate, "--projected-w", tmp_path / "projected_w.npz")
    assert "--space w lerps" in refused(capsys, *generate, "--interpolate", "--seeds", "0,1", "--space", "w")
    assert "`project` searches W" in refused(capsys, "project", "--ckpt", ckpt, "--target", tmp_path / "face.png",
                                             "--outdir", out)
    for args in (["layers"], ["features"], ["amplification"], ["rates"], ["ablate"], ["detect"],
                 ["units", "--layer", 0]):
        outdir = [] if args == ["layers"] else ["--outdir", out]
        message = refused(capsys, "analyze", *args, "--ckpt", ckpt, *outdir)
        assert f"`analyze {args[0]}` reads its style layers" in message
        assert ("leave --ckpt out for the synthetic part" in message) == (args[0] == "amplification")
    assert not out.exists()  # refused before anything was written


def test_metrics_score_it_but_ppl_in_w(direct, tmp_path, capsys, monkeypatch):
    ckpt = direct_checkpoint(tmp_path / "direct.ckpt")
    G = load_generator(ckpt)
    dataset = ImageDataset("fashion-mnist", RES, 3, max_images=30)
    options = MetricOptions(features="tiny", batch_size=10, cache_dir=str(tmp_path / "cache"), progress=False)
    results, _ = compute_metrics(parse_metrics("fid20_full,kid20_full,pr0.02k3_full,is20"), G, dataset, options)
    assert len(results) == 6 and all(np.isfinite(value) for value in results.values())
    assert results["fid20_full"] > 0

    results, _ = compute_metrics(parse_metrics("ppl_zfull,ppl_zend", num_gen=6), G, None, options,
                                 distance=TinyDistance())
    assert set(results) == {"ppl_zfull", "ppl_zend"} and all(value > 0 for value in results.values())
    # PPL in Z of a W-free G: slerp between the z's, then G(z, c) (StyleGAN Eq. 2).
    z0, z1 = torch.randn(2, 3, Z_DIM, generator=torch.Generator().manual_seed(1))
    t, eps = torch.rand(3, generator=torch.Generator().manual_seed(2)), 1e-2
    with torch.no_grad():
        ends = [G(unit_slerp(z0, z1, (t + dt).reshape(-1, 1))) for dt in (0.0, eps)]
        assert torch.allclose(pair_distances(G, TinyDistance(), z0, z1, t, None, eps, "z", crop=False),
                              TinyDistance()(*ends) / eps ** 2)

    computed = []
    monkeypatch.setattr(evaluate, "generator_stats", lambda *a, **k: computed.append(a))
    with pytest.raises(NoWSpaceError, match="PPL in W .* measure PPL in Z instead"):
        compute_metrics(parse_metrics("fid20_full,ppl_wend"), G, dataset, options)
    assert computed == []  # refused before any metric was computed
    with pytest.raises(NoWSpaceError, match="PPL in W"):
        Metrics(metrics=["ppl2_wend"]).on_fit_start(None, SimpleNamespace(G_ema=G))
    assert "PPL in W" in refused(capsys, "metrics", "--ckpt", ckpt, "--metrics", "fid50k_full,ppl_wfull",
                                 "--data", "fashion-mnist", "--features", "tiny", "--no-progress")


def w_free_model(**kwargs):
    from lightning_stylegan.training.module import StyleGAN2

    torch.manual_seed(0)
    return StyleGAN2(resolution=RES, channels=1, g_lr=0.002, d_lr=0.002,
                     generator=dict(topology="direct", z_dim=Z_DIM),
                     discriminator=dict(channel_base=64, channel_max=16, mbstd_group_size=2, mapping_layers=1),
                     **kwargs)


def test_it_trains_without_style_mixing_or_path_length(direct, tmp_path):
    """R3GAN's objective on it: rpgan with R1 and R2 in D's main pass; path length (left unset) and
    style mixing are off, G's Adam has no lazy-regularization adjustment."""
    from test_train_loop import steps, tiny_data, trainer
    from lightning_stylegan.training.regularizers import R1, R2, PathLength

    model = w_free_model(total_kimg=steps(3), loss="rpgan")
    assert model.hparams["style_mixing_prob"] == 0.0
    fit = trainer(tmp_path, R1(gamma=1.0, interval=1), R2(gamma=1.0, interval=1), PathLength())
    before = [p.detach().clone() for p in model.G.parameters()]
    fit.fit(model, tiny_data())
    assert model.counters == {"images_seen": 12, "g_steps": 3, "d_steps": 3, "g_reg_steps": 0, "d_reg_steps": 0}
    assert fit.optimizers[0].param_groups[0]["lr"] == 0.002 and fit.optimizers[0].param_groups[0]["betas"] == (0, 0.99)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.G.parameters()))
    assert torch.isfinite(torch.cat([p.flatten() for p in model.G_ema.parameters()])).all()


def test_asking_it_for_style_mixing_or_path_length_is_one_error(direct, tmp_path):
    from test_train_loop import steps, tiny_data, trainer
    from lightning_stylegan.training.regularizers import PathLength

    with pytest.raises(ConfigError, match="^--model.style_mixing_prob 0.9: the generator 'direct' has no W space"):
        w_free_model(style_mixing_prob=0.9)
    with pytest.raises(ConfigError, match="^--path_length.weight 2.0: the generator 'direct' has no W space"):
        trainer(tmp_path, PathLength(weight=2.0)).fit(w_free_model(total_kimg=steps(1)), tiny_data())
