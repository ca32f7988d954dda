"""Small random StyleGAN2 networks written as a real checkpoint, for the tools' tests
(generate, project, metrics, analyze, convert) that need a network file but not a trained one."""
from __future__ import annotations

from pathlib import Path

import torch

from lightning_stylegan.network_files import write_checkpoint
from lightning_stylegan.training.module import StyleGAN2
from lightning_stylegan.training.options import DiscriminatorOptions, GeneratorOptions


def tiny_module(resolution: int = 16, channels: int = 3, label_dim: int = 0, seed: int = 0,
                init_from: str | None = None, **generator: object) -> StyleGAN2:
    """A ``StyleGAN2`` module with small G and D (z = w = 32, 2 mapping layers, at most 32 maps)."""
    torch.manual_seed(seed)
    options = dict(z_dim=32, w_dim=32, mapping_layers=2, channel_base=256, channel_max=32) | generator
    return StyleGAN2(resolution=resolution, channels=channels, label_dim=label_dim,
                     generator=GeneratorOptions(**options),
                     discriminator=DiscriminatorOptions(channel_base=256, channel_max=32, mapping_layers=2),
                     init_from=init_from)


def tiny_checkpoint(path: Path, **kwargs: object) -> Path:
    """Write ``tiny_module(**kwargs)`` as a checkpoint that ``load_networks`` reads."""
    module = tiny_module(**kwargs)
    return write_checkpoint(path, dict(module.hparams), module.G, module.D, module.G_ema, source="tests")
