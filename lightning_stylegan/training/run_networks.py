"""The networks of a training run, G, D and G_ema, and the hyper-parameters that describe them,
built without Lightning.

The ``StyleGAN2`` module builds its networks here, and so do the converters, which write a
checkpoint of networks and need no training loop: ``lightning-stylegan convert`` then starts in the
time of torch's import, not Lightning's.
"""
from __future__ import annotations

from dataclasses import asdict, replace
from typing import NamedTuple

from torch import nn

from .. import registry
from ..errors import ConfigError
from ..network_files import discriminator_kwargs, generator_kwargs
from ..networks import (Generator, build_discriminator, check_discriminator_options, check_synthesis_options,
                        topology_default, topology_has_w_space)
from ..plugin_options import bind_options
from .options import DiscriminatorOptions, GeneratorOptions


class RunNetworks(NamedTuple):
    G: Generator
    D: nn.Module
    G_ema: Generator


def network_hparams(resolution: int, channels: int, label_dim: int = 0,
                    generator: GeneratorOptions | dict | None = None,
                    discriminator: DiscriminatorOptions | dict | None = None, growth: str = "none",
                    growth_options: dict | None = None) -> dict:
    """The ``StyleGAN2`` module's hyper-parameters that decide its networks, checked and resolved:
    the generator and discriminator options as plain dicts (the synthesis plugin's options bound to
    its constructor), the growth plugin's options bound to its constructor. A checkpoint with these
    is one that ``network_files.load_networks`` rebuilds."""
    generator = as_options(GeneratorOptions, generator)
    generator = replace(generator, synthesis_options=check_synthesis_options(generator.topology,
                                                                              generator.synthesis_options),
                        channel_base=_or_default(generator.channel_base, "generator", generator.topology))
    discriminator = as_options(DiscriminatorOptions, discriminator)
    discriminator = replace(discriminator, channel_base=_or_default(discriminator.channel_base, "discriminator",
                                                                    discriminator.topology),
                            topology_options=check_discriminator_options(discriminator.topology,
                                                                         discriminator.topology_options))
    growth_options = bind_options(registry.load("growth", growth), growth_options, key="model.growth_options",
                                  label=f"the growth plugin {growth!r}", given=("final_resolution",))
    return {"resolution": resolution, "channels": channels, "label_dim": label_dim,
            "generator": asdict(generator), "discriminator": asdict(discriminator),
            "growth": growth, "growth_options": growth_options}


def initial_networks(hparams: dict) -> RunNetworks:
    """New G, D and G_ema of these hyper-parameters (drawn from torch's generator in that order;
    G_ema a copy of G, in eval mode, without gradients)."""
    g_kwargs = generator_kwargs(hparams)
    G = Generator(**g_kwargs)
    D = build_discriminator(**discriminator_kwargs(hparams))
    G_ema = Generator(**g_kwargs).eval()
    G_ema.load_state_dict(G.state_dict())
    G_ema.requires_grad_(False)
    return RunNetworks(G, D, G_ema)


def _or_default(channel_base: int | None, group: str, topology: str) -> int | None:
    """A recipe's channel_base, or the topology's default when it leaves it null: the hyper-parameters
    keep the number, so a later change of a default never changes a saved run's networks. (It stays
    null for a generator without a W space, which has no channel_base.)"""
    if channel_base is not None or (group == "generator" and not topology_has_w_space(topology)):
        return channel_base
    return topology_default(group, topology, "channel_base")


def as_options(kind: type, value):
    """``value`` (None, a dict of keys or an instance) as an instance of the options dataclass ``kind``."""
    if value is None:
        return kind()
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(kind.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"Unknown {kind.__name__} keys {unknown}; valid keys: "
                              f"{sorted(kind.__dataclass_fields__)}")
        return kind(**value)
    return value
