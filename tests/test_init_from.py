"""``--model.init_from``: a new run starts from the weights of a checkpoint (ours, converted, or an
exported generator), with fresh counters; options that build other networks are a clear error."""
from __future__ import annotations

import pytest
import torch
from tiny_networks import tiny_checkpoint, tiny_module

from lightning_stylegan.network_files import NetworkFileError, export_generator, load_networks


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_init_from_copies_g_d_and_g_ema(tmp_path):
    path = tiny_checkpoint(tmp_path / "source.ckpt", seed=1)
    source = load_networks(path)
    module = tiny_module(seed=2)
    assert not same_weights(module.G, source.G)
    started = tiny_module(seed=2, init_from=str(path))
    assert same_weights(started.G, source.G)
    assert same_weights(started.D, source.D)
    assert same_weights(started.G_ema, source.G_ema)
    assert started.images_seen == 0
    assert started.hparams["init_from"] == str(path)


def test_init_from_an_exported_generator_starts_g_and_g_ema_from_it(tmp_path):
    source = load_networks(tiny_checkpoint(tmp_path / "source.ckpt", seed=1))
    exported = export_generator(source.G_ema, tmp_path / "g.pt")
    with pytest.warns(UserWarning, match="no discriminator"):
        started = tiny_module(seed=2, init_from=str(exported))
    assert same_weights(started.G, source.G_ema)
    assert same_weights(started.G_ema, source.G_ema)


def test_init_from_other_network_options_names_the_keys_and_the_source_options(tmp_path):
    path = tiny_checkpoint(tmp_path / "source.ckpt")
    with pytest.raises(NetworkFileError, match=r"wrong shape: .*Set the recipe's model options.*'z_dim': 32"):
        tiny_module(z_dim=16, w_dim=16, init_from=str(path))
