"""The generator plugins ``stylegan3-t`` and ``stylegan3-r``: StyleGAN3's alias-free synthesis
network (Karras et al. 2021, Sections 3-4, Figure 4 and Appendix F; NVlabs' ``--cfg stylegan3-t`` /
``stylegan3-r``).

ws [N, num_layers + 2, w_dim] -> images [N, C, R, R]: the Fourier-feature input (style 0) then
``num_layers`` modulated layers and the to-RGB layer, one style each, on the band schedule of
``schedule.layer_schedule``; the output is multiplied by ``output_scale``. The configuration T has
3x3 convolutions and separable filters (translation equivariance); R has 1x1 convolutions and
radially symmetric down-sampling filters outside the critically sampled layers (rotation
equivariance too), and by NVlabs' convention twice the channels (set ``channel_base`` 65536,
``channel_max`` 1024 in the recipe).

The synthesis network fits core's generator interface: ``G.mapping`` is core's StyleGAN2 mapping
network (StyleGAN3 keeps it; its configs use 2 layers and ``w_avg_beta`` 0.998), ``num_ws``,
``blocks()`` (here the layers, for the analysis tools), ``forward(ws, noise_mode, fused_modconv,
resolution, alpha, update_emas)``. There is no noise (``use_noise`` must be False), no
normalization choice (the layers always demodulate: ``normalization`` must be ``demod``) and no
progressive growing. ``update_emas`` updates the layers' magnitude EMAs (core passes it in the D
main pass, as NVlabs does).
"""
from __future__ import annotations

import torch
from torch import nn

from lightning_stylegan.normalizations.demod import Demodulation

from .layers import SynthesisInput, SynthesisLayer, ToRGBLayer
from .schedule import layer_schedule


class StyleGAN3Synthesis(nn.Module):
    """``stylegan3-t``: alias-free synthesis, 3x3 convolutions, separable Kaiser-sinc filters."""

    api_version = 1
    description = "StyleGAN3-T alias-free synthesis (Fourier input, filtered leaky ReLU, 3x3 convs)"
    plugin_name = "stylegan3-t"
    progressive = False
    default_conv_kernel, default_radial_filters = 3, False  # NVlabs' T; R: 1, True

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, normalization,
                 channel_base: int = 32768, channel_max: int = 512, use_noise: bool = False,
                 conv_clamp: float | None = None, progressive: bool = False, num_layers: int = 14,
                 num_critical: int = 2, first_cutoff: float = 2.0, first_stopband: float = 2 ** 2.1,
                 last_stopband_rel: float = 2 ** 0.3, margin_size: int = 10, output_scale: float = 0.25,
                 conv_kernel: int | None = None, filter_size: int = 6, lrelu_upsampling: int = 2,
                 use_radial_filters: bool | None = None, magnitude_ema_beta: float = 0.999):
        """``conv_kernel`` and ``use_radial_filters`` default to the configuration's (T: 3, False;
        R: 1, True); the other options are NVlabs' defaults."""
        super().__init__()
        conv_kernel = self.default_conv_kernel if conv_kernel is None else conv_kernel
        use_radial_filters = self.default_radial_filters if use_radial_filters is None else use_radial_filters
        name = self.plugin_name
        if not isinstance(normalization, Demodulation):
            raise ValueError(f"The {name} generator always modulates and demodulates its convolutions: set "
                             f"model.generator.normalization to demod (got {type(normalization).__name__}).")
        if use_noise:
            raise ValueError(f"The {name} generator has no noise inputs: set model.generator.use_noise to false.")
        if progressive:
            raise ValueError(f"The {name} generator does not grow progressively: use model.growth none.")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.output_scale = output_scale
        self.block_resolutions = [img_resolution]
        schedule = layer_schedule(img_resolution, img_channels, channel_base, channel_max, num_layers,
                                  num_critical, first_cutoff, first_stopband, last_stopband_rel, margin_size)
        first = schedule[0]
        self.input = SynthesisInput(w_dim, first.channels, first.size, first.sampling_rate, first.cutoff)
        self.layer_names = []
        options = dict(w_dim=w_dim, conv_kernel=conv_kernel, filter_size=filter_size,
                       lrelu_upsampling=lrelu_upsampling, use_radial_filters=use_radial_filters,
                       conv_clamp=conv_clamp, magnitude_ema_beta=magnitude_ema_beta)
        for spec in schedule:
            layer_class = ToRGBLayer if spec.index == num_layers else SynthesisLayer
            self.add_module(spec.name, layer_class(schedule[max(spec.index - 1, 0)], spec, **options))
            self.layer_names.append(spec.name)
        self.num_ws = num_layers + 2

    def layers(self) -> list[SynthesisLayer]:
        """The ``num_layers + 1`` layers after the input, the to-RGB layer last."""
        return [getattr(self, name) for name in self.layer_names]

    def blocks(self) -> list[SynthesisLayer]:
        """The style layers (all but to-RGB), in order: what core's analysis tools walk."""
        return self.layers()[:-1]

    @torch.no_grad()
    def set_transform(self, matrix: torch.Tensor) -> None:
        """Core's optional output-transform hook (``generate --translate/--rotate``): ``matrix`` is the
        [3, 3] map of the image plane to apply to the output; the input samples its Fourier features
        through its inverse, the buffer ``input.transform`` (inverted in float64, then stored in
        float32, as NVlabs' gen_images.py does)."""
        inverse = torch.linalg.inv(torch.as_tensor(matrix, dtype=torch.float64))
        self.input.transform.copy_(inverse.to(self.input.transform.dtype))

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", fused_modconv: bool | None = None,
                resolution: int | None = None, alpha: float = 1.0, update_emas: bool = False) -> torch.Tensor:
        """``noise_mode`` is accepted for the core interface and has no effect (no noise).
        ``fused_modconv=None`` fuses on CUDA only, as core's StyleGAN2 layers do."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        if (resolution not in (None, self.img_resolution)) or alpha != 1:
            raise ValueError(f"{self.plugin_name} makes only {self.img_resolution}x{self.img_resolution} "
                             f"images (no growth stages), got resolution={resolution}, alpha={alpha}")
        if fused_modconv is None:
            fused_modconv = ws.device.type == "cuda"
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0])
        for layer, w in zip(self.layers(), ws[1:]):
            x = layer(x, w, update_emas=update_emas, fused_modconv=fused_modconv)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)

    def extra_repr(self) -> str:
        return f"img_resolution={self.img_resolution}, num_ws={self.num_ws}"


class StyleGAN3RSynthesis(StyleGAN3Synthesis):
    """``stylegan3-r``: alias-free and rotation equivariant, 1x1 convolutions, radial filters."""

    description = "StyleGAN3-R alias-free, rotation-equivariant synthesis (1x1 convs, radial filters)"
    plugin_name = "stylegan3-r"
    default_conv_kernel, default_radial_filters = 1, True
