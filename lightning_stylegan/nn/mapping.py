"""The mapping network f: Z -> W (StyleGAN Section 2; StyleGAN2 Appendix B: 8 fully connected
layers, 100x lower learning rate), with the tracked average of W used by the truncation trick and
an optional class-label embedding for conditional models.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import EqualizedLinear
from .norms import normalize_2nd_moment


class MappingNetwork(nn.Module):
    """z [N, z_dim] and labels c [N, c_dim] -> ws [N, num_ws, w_dim] (or [N, w_dim] if num_ws is None).

    z and the embedded label are each normalized to unit second moment and concatenated.
    ``w_avg`` tracks the mean of W during training, ``w_avg <- lerp(mean_batch(w), w_avg, beta)``.
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int = 8,
                 embed_features: int | None = None, layer_features: int | None = None,
                 activation: str = "lrelu", lr_multiplier: float = 0.01,
                 w_avg_beta: float | None = 0.995):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"The mapping network needs at least one layer, got num_layers={num_layers}")
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.num_ws, self.num_layers, self.w_avg_beta = num_ws, num_layers, w_avg_beta
        embed_features = (w_dim if embed_features is None else embed_features) if c_dim else 0
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim:
            self.embed = self.make_embedding(c_dim, embed_features)
        for idx in range(num_layers):
            self.add_module(f"fc{idx}", self.make_layer(features[idx], features[idx + 1], activation, lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def make_embedding(self, c_dim: int, features: int) -> nn.Module:
        """The label embedding: an equalized-lr linear layer with bias."""
        return EqualizedLinear(c_dim, features)

    def make_layer(self, in_features: int, out_features: int, activation: str, lr_multiplier: float) -> nn.Module:
        """One mapping layer: ``gain * act(x @ (W * lr_mul / sqrt(in)).T + b * lr_mul)``."""
        return EqualizedLinear(in_features, out_features, activation=activation, lr_multiplier=lr_multiplier)

    def check_inputs(self, z: torch.Tensor | None, c: torch.Tensor | None) -> None:
        if self.z_dim and (z is None or z.ndim != 2 or z.shape[1] != self.z_dim):
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {None if z is None else tuple(z.shape)}")
        if self.c_dim and (c is None or c.ndim != 2 or c.shape[1] != self.c_dim):
            raise ValueError(f"This network is conditional: c must have shape [N, {self.c_dim}], "
                             f"got {None if c is None else tuple(c.shape)}")

    def embed_inputs(self, z: torch.Tensor | None, c: torch.Tensor | None) -> torch.Tensor:
        """The first layer's input: z and the embedded label, each normalized, concatenated."""
        parts = []
        if self.z_dim:
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim:
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, update_w_avg: bool = True) -> torch.Tensor:
        self.check_inputs(z, c)
        x = self.embed_inputs(z, c)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        x = x.float()  # w stays float32 under autocast, like w_avg

        if self.w_avg_beta is not None and self.training and update_w_avg and self.num_ws is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            x = truncate(x, self.w_avg, truncation_psi, truncation_cutoff)
        return x


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """Truncation trick: ``w' = w_avg + psi * (w - w_avg)`` for the first ``cutoff`` styles (all
    when None); psi=0 gives the average image, psi=1 leaves ws unchanged.
    """
    if ws.ndim == 2 or cutoff is None:
        return w_avg.lerp(ws, psi)
    ws = ws.clone()
    ws[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], psi)
    return ws
