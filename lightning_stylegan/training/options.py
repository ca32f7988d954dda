"""The network options a recipe sets, as typed dataclasses: LightningCLI checks every key and
type at parse time, and the options are stored with every checkpoint.

Image resolution, channels and label count are not here: they come from the data
(``data.resolution``, ``data.channels``, ``data.label_dim``).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class GeneratorOptions:
    """Keyword arguments of ``lightning_stylegan.networks.Generator``.

    Args:
        topology: generator plugin name (``original``, ``skip``, ``residual``, ``revised``,
            ``stylegan1``, or an installed plugin).
        normalization: normalization plugin name (``adain``, ``pixel``, ``pin``, ``demod``, ``modulate``, ``none``, ...).
        z_dim: dimensionality of the latent z.
        w_dim: dimensionality of the intermediate latent w.
        mapping_layers: fully connected layers of the mapping network (8 in the papers).
        mapping_lr_multiplier: learning-rate multiplier of the mapping network (0.01 in the papers).
        w_avg_beta: decay of the tracked average of w used for truncation.
        channel_base: feature maps at resolution r are ``min(channel_base // r, channel_max)``;
            null = the topology's own default: 32768 (NVlabs' stylegan2-ada-pytorch ``cbase``),
            16384 for ``stylegan1`` (StyleGAN v1's ``fmap_base`` 8192).
        channel_max: the most feature maps of any layer.
        use_noise: per-pixel noise inputs.
        conv_clamp: clamp conv outputs to +-this value (256 in NVlabs' mixed-precision configs), None = off.
        synthesis_options: further keyword options of the generator plugin's synthesis class, checked
            against its constructor (e.g. ``num_layers`` or ``magnitude_ema_beta`` of ``stylegan3-t``).
    """

    topology: str = "skip"
    normalization: str = "demod"
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.995
    channel_base: int | None = None
    channel_max: int = 512
    use_noise: bool = True
    conv_clamp: float | None = None
    synthesis_options: dict = field(default_factory=dict)


@dataclass
class DiscriminatorOptions:
    """Keyword arguments of ``lightning_stylegan.networks.build_discriminator``.

    Args:
        topology: discriminator plugin name (``original``, ``skip``, ``residual``, ``revised``,
            ``stylegan1``, or an installed plugin).
        channel_base: feature maps at resolution r are ``min(channel_base // r, channel_max)``;
            null = the topology's own default: 32768, 16384 for ``stylegan1`` (v1's ``fmap_base`` 8192).
        channel_max: the most feature maps of any layer.
        mbstd_group_size: samples per minibatch-stddev group (must divide the batch), None = whole batch.
        mbstd_num_channels: feature maps the minibatch-stddev layer appends, 0 = off.
        mapping_layers: layers of the label-embedding network of conditional models.
        conv_clamp: clamp conv outputs to +-this value, None = off.
        topology_options: further keyword options of the discriminator plugin, checked against its
            constructor (a plugin's own widths or block counts).
    """

    topology: str = "residual"
    channel_base: int | None = None
    channel_max: int = 512
    mbstd_group_size: int | None = 4
    mbstd_num_channels: int = 1
    mapping_layers: int = 8
    conv_clamp: float | None = None
    topology_options: dict = field(default_factory=dict)
