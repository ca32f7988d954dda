"""Transfer learning: Freeze-D, and the rules of a run that starts from other weights.

Mo, Cho, Shin 2020, *Freeze the Discriminator*: fine-tuning a pretrained GAN on little data works
better when D's first layers (those next to the image) keep their pretrained weights. As NVlabs'
``--freezed N``, the layers are counted from the input in each block's order fromRGB, conv0,
conv1, skip, from the highest resolution down; the 4x4 epilogue is never frozen.

A run with ``model.init_from`` follows NVlabs' ``--resume`` rules: no EMA ramp-up (G_ema starts
from trained weights) and the ADA controller's default rate of 100 kimg instead of 500.
"""
from __future__ import annotations

from torch import nn

from ..errors import ConfigError

BLOCK_LAYERS = ("fromrgb", "conv0", "conv1", "skip")


def discriminator_layers(D: nn.Module) -> list[tuple[str, nn.Module]]:
    """D's layers from the input, as ``(name, module)``. A discriminator plugin whose blocks name
    their layers otherwise can say its own order with a ``layers_from_input()`` method."""
    if hasattr(D, "layers_from_input"):
        return list(D.layers_from_input())
    layers = []
    for res in D.block_resolutions:
        block = getattr(D, f"b{res}")
        layers += [(f"b{res}.{name}", getattr(block, name)) for name in BLOCK_LAYERS if hasattr(block, name)]
    return layers


def freeze_discriminator(D: nn.Module, count: int) -> list[str]:
    """Stop gradients to D's first ``count`` layers (their parameters no longer require grad and
    stay out of D's optimizer); returns their names."""
    layers = discriminator_layers(D)
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= len(layers):
        raise ConfigError(f"--model.freeze_d must be an integer from 0 to {len(layers)} (the layers of this "
                          f"discriminator below its 4x4 epilogue: {', '.join(name for name, _ in layers)}), "
                          f"got {count!r}")
    for _, layer in layers[:count]:
        layer.requires_grad_(False)
    return [name for name, _ in layers[:count]]
