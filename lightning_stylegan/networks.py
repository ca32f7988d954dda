"""G and D assembled from plugins named in the registry.

``Generator(topology='skip', normalization='demod')`` with a ``residual`` discriminator is
StyleGAN2 config E/F, parameter for parameter the layout of NVlabs' stylegan2-ada-pytorch
(``mapping.fc*``, ``synthesis.b*.conv0/conv1/torgb``, ``b*.fromrgb/conv0/conv1/skip``, ``b4.*``).

A generator plugin whose class sets ``w_space = False`` (R3GAN's kind) maps z and labels straight
to images: no mapping network, W, styles, truncation or noise. ``has_w_space`` tells the tools,
and ``require_w_space`` refuses what needs W with a ``NoWSpaceError`` naming the generator.
"""
from __future__ import annotations

import inspect

import torch
from torch import nn

from . import registry
from .errors import ConfigError, UsageError
from .plugin_options import bind_options
from .nn.mapping import MappingNetwork

IMG_CHANNELS = (1, 3, 4)
# What Generator passes every synthesis class itself; ``synthesis_options`` adds the plugin's own.
SYNTHESIS_ARGUMENTS = ("w_dim", "img_resolution", "img_channels", "normalization", "channel_base",
                       "channel_max", "use_noise", "conv_clamp", "progressive")
# What Generator passes a generator plugin without a W space (``w_space = False``).
W_FREE_ARGUMENTS = ("z_dim", "c_dim", "img_resolution", "img_channels")


class NoWSpaceError(UsageError, ValueError):
    """A request for what only a generator with a W space has (mapping, styles, truncation, noise)."""


def has_w_space(G: nn.Module) -> bool:
    """Whether ``G`` (a ``Generator``, or a module with its interface) has a mapping network, W and
    styles: its ``w_space``, True for a module that does not say."""
    return getattr(G, "w_space", True)


def require_w_space(G: nn.Module, use: str) -> None:
    """A ``NoWSpaceError`` naming ``G``'s generator plugin and ``use`` (what needs W, and what to do
    instead) when ``G`` has no W space."""
    if not has_w_space(G):
        name = getattr(G, "topology", type(getattr(G, "synthesis", G)).__name__)
        raise NoWSpaceError(f"the generator {name!r} has no W space (no mapping network, styles or "
                            f"truncation): {use}")


def topology_has_w_space(topology: str) -> bool:
    """Whether the generator plugin ``topology`` works in W (its class's ``w_space``, True by default)."""
    return getattr(registry.load("generator", topology), "w_space", True)


def _check_image_format(img_resolution: int, img_channels: int) -> None:
    if img_channels not in IMG_CHANNELS:
        raise ValueError(f"img_channels must be one of {IMG_CHANNELS} (gray, RGB, RGBA), got {img_channels}")
    if img_resolution < 8:
        raise ValueError(f"img_resolution must be at least 8, got {img_resolution}")


def check_synthesis_options(topology: str, options: dict | None) -> dict:
    """``model.generator.synthesis_options`` checked against the generator plugin's constructor,
    a string typed on the command line read as the YAML value it spells (``plugin_options``)."""
    given = SYNTHESIS_ARGUMENTS if topology_has_w_space(topology) else W_FREE_ARGUMENTS
    return bind_options(registry.load("generator", topology), options, key="model.generator.synthesis_options",
                        label=f"the generator plugin {topology!r}", given=given)


# What build_discriminator's callers pass every discriminator plugin; ``topology_options`` adds its own.
DISCRIMINATOR_ARGUMENTS = ("img_resolution", "img_channels", "c_dim", "progressive", "channel_base", "channel_max",
                           "mbstd_group_size", "mbstd_num_channels", "mapping_layers", "conv_clamp")


def check_discriminator_options(topology: str, options: dict | None) -> dict:
    """``model.discriminator.topology_options`` checked against the discriminator plugin's constructor."""
    return bind_options(registry.load("discriminator", topology), options,
                        key="model.discriminator.topology_options", label=f"the discriminator plugin {topology!r}",
                        given=DISCRIMINATOR_ARGUMENTS)


def topology_default(group: str, topology: str, option: str):
    """The default of ``option`` in the constructor of the ``generator`` or ``discriminator``
    plugin ``topology``: what a recipe that leaves the option null gets (``channel_base``)."""
    parameter = inspect.signature(registry.load(group, topology)).parameters.get(option)
    if parameter is None or parameter.default is parameter.empty:
        raise ConfigError(f"The {group} plugin {topology!r} has no default {option}; set "
                          f"model.{group}.{option} in the recipe.")
    return parameter.default


class Generator(nn.Module):
    """z [N, z_dim] (+ labels c [N, c_dim]) -> images [N, img_channels, R, R] in about [-1, 1].

    ``G.mapping(z, c)`` -> ws [N, num_ws, w_dim]; ``G.synthesis(ws, noise_mode=...)`` -> images.
    ``topology`` names a generator plugin, ``normalization`` a normalization plugin;
    ``progressive`` adds a to-RGB layer at every resolution for progressive growing;
    ``synthesis_options`` are the synthesis plugin's own keyword options. The mapping
    network is the topology's ``mapping_class`` (a ``MappingNetwork`` subclass; the default when
    the plugin names none).

    A plugin without a W space (``w_space = False``) is built as ``plugin(z_dim=, c_dim=,
    img_resolution=, img_channels=, **synthesis_options)`` and kept as ``G.synthesis``; then
    ``G.w_space`` is False, ``G.mapping`` None, ``G.num_ws`` and ``G.w_dim`` 0, ``G(z, c)`` is
    ``G.synthesis(z, c)``, and the W-only arguments (``w_dim``, ``normalization``, ``mapping_*``,
    ``w_avg_beta``, ``channel_*``, ``use_noise``, ``conv_clamp``) are kept in ``init_kwargs`` unused.
    """

    def __init__(self, img_resolution: int = 256, img_channels: int = 3, z_dim: int = 512,
                 w_dim: int = 512, c_dim: int = 0, topology: str = "skip", normalization: str = "demod",
                 mapping_layers: int = 8, mapping_lr_multiplier: float = 0.01, w_avg_beta: float = 0.995,
                 channel_base: int | None = None, channel_max: int = 512, use_noise: bool = True,
                 conv_clamp: float | None = None, progressive: bool = False,
                 synthesis_options: dict | None = None):
        super().__init__()
        synthesis_class = registry.load("generator", topology)
        self.w_space = topology_has_w_space(topology)
        if channel_base is None and self.w_space:
            channel_base = topology_default("generator", topology, "channel_base")
        _check_image_format(img_resolution, img_channels)
        synthesis_options = dict(synthesis_options or {})
        self.init_kwargs = dict(img_resolution=img_resolution, img_channels=img_channels, z_dim=z_dim,
                                w_dim=w_dim, c_dim=c_dim, topology=topology, normalization=normalization,
                                mapping_layers=mapping_layers, mapping_lr_multiplier=mapping_lr_multiplier,
                                w_avg_beta=w_avg_beta, channel_base=channel_base, channel_max=channel_max,
                                use_noise=use_noise, conv_clamp=conv_clamp, progressive=progressive,
                                synthesis_options=synthesis_options)
        self.z_dim, self.c_dim = z_dim, c_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.topology, self.normalization = topology, normalization
        extra = check_synthesis_options(topology, synthesis_options)
        self.init_kwargs["synthesis_options"] = dict(extra)
        if not self.w_space:
            if progressive:
                raise ConfigError(f"The generator plugin {topology!r} has no W space: it makes images at the full "
                                  "resolution only (forward(z, c), no resolution or alpha), so it cannot grow "
                                  "progressively; train it with model.growth none")
            self.w_dim = self.num_ws = 0
            self.mapping = None
            self.synthesis = synthesis_class(z_dim=z_dim, c_dim=c_dim, img_resolution=img_resolution,
                                             img_channels=img_channels, **extra)
            return
        self.w_dim = w_dim
        norm = registry.load("normalization", normalization)()
        self.synthesis = synthesis_class(w_dim, img_resolution, img_channels, norm,
                                         channel_base=channel_base, channel_max=channel_max,
                                         use_noise=use_noise, conv_clamp=conv_clamp,
                                         progressive=progressive, **extra)
        self.num_ws = self.synthesis.num_ws
        mapping_class = getattr(synthesis_class, "mapping_class", MappingNetwork)
        self.mapping = mapping_class(z_dim, c_dim, w_dim, self.num_ws, num_layers=mapping_layers,
                                     lr_multiplier=mapping_lr_multiplier, w_avg_beta=w_avg_beta)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, noise_mode: str = "random",
                fused_modconv: bool | None = None, resolution: int | None = None,
                alpha: float = 1.0) -> torch.Tensor:
        """Without a W space, ``G.synthesis(z, c)``: truncation is an error, and so is a resolution
        below the output's or ``alpha`` < 1; ``noise_mode`` and ``fused_modconv`` do not apply."""
        if not self.w_space:
            if truncation_psi != 1 or truncation_cutoff is not None:
                require_w_space(self, f"truncation (truncation_psi={truncation_psi}, truncation_cutoff="
                                      f"{truncation_cutoff}) pulls w towards the average w; leave both out")
            if resolution not in (None, self.img_resolution) or alpha != 1:
                raise ValueError(f"The generator {self.topology!r} makes {self.img_resolution}x{self.img_resolution} "
                                 f"images only, got resolution={resolution}, alpha={alpha}")
            return self.synthesis(z, c)
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, fused_modconv=fused_modconv,
                              resolution=resolution, alpha=alpha)

    def mix_styles(self, ws: torch.Tensor, c: torch.Tensor | None, mixing_prob: float,
                   num_layers: int | None = None) -> torch.Tensor:
        """Style-mixing regularization (StyleGAN Section 3.1): with probability ``mixing_prob``,
        the styles from a random crossover index in [1, num_layers) on come from a second latent.
        ``num_layers`` is the styles in use (all ``num_ws`` by default; fewer while growing).
        """
        require_w_space(self, "style mixing swaps styles between two ws; train it without style mixing")
        num_layers = self.num_ws if num_layers is None else num_layers
        if mixing_prob <= 0 or num_layers < 2:
            return ws
        cutoff = int(torch.randint(1, num_layers, [], device="cpu"))
        if float(torch.rand([], device="cpu")) >= mixing_prob:
            return ws
        z2 = torch.randn(ws.shape[0], self.z_dim, device=ws.device)
        ws2 = self.mapping(z2, c, update_w_avg=False)
        return torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)

    def plugins(self) -> dict[str, str]:
        """The plugins ``G`` is built from, by kind: the normalization only where it is used (W space)."""
        return {"generator": self.topology} | ({"normalization": self.normalization} if self.w_space else {})


def build_discriminator(topology: str = "residual", img_resolution: int = 256, img_channels: int = 3,
                        **kwargs) -> nn.Module:
    """The discriminator plugin ``topology`` with its keyword options (``c_dim``, ``channel_base``,
    ``channel_max``, ``mbstd_group_size``, ...; see ``lightning_stylegan.discriminators.base``) and
    the plugin's own ``topology_options``."""
    _check_image_format(img_resolution, img_channels)
    if kwargs.get("channel_base", 0) is None:
        kwargs["channel_base"] = topology_default("discriminator", topology, "channel_base")
    kwargs.update(kwargs.pop("topology_options", None) or {})
    return registry.load("discriminator", topology)(img_resolution, img_channels, **kwargs)
