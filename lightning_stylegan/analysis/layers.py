"""The synthesis layers of any generator, numbered as the artifact papers number them, with hooks
that read or replace their feature maps.

Layer 0 is the first 4x4 convolution (``synthesis.b4.conv1``), then ``b8.conv0``, ``b8.conv1``,
``b16.conv0``, ... (004_738a47e1aec6d700.txt Section 4.1: layers 0, 1, 3 of StyleGAN2 have
outputs of 4x4, 8x8 and 16x16). To-RGB layers and residual skips are not counted. The
``stylegan1`` topology has one layer more, first: layer 0 is the layer epilogue applied to the 4x4
constant (``b4.const_epilogue``, style 0), layer 1 the 4x4 conv (``b4.conv1``), and so on.

A style layer is found by walking the modules of each synthesis block in resolution order: an
instance of ``ModulatedStyleLayer`` or ``NormalizedStyleLayer`` (every built-in and
``FeatureNormalization`` plugin), or of any class with ``is_style_layer = True`` (a plugin's own
layer, which then needs ``resolution`` and an out-channels-first ``weight`` or an ``out_channels``
attribute); style layers nested
inside a style layer belong to it. Tap points:

* ``output``: what the layer returns (after the activation for StyleGAN2 layers; after the style
  affine for StyleGAN v1 layers);
* ``activation``: the map right after the non-linearity -- the output of a StyleGAN2 layer, the
  input of the normalization of a layer with a ``norm`` submodule (StyleGAN v1, AdaIN, PIN, PN);
* ``normalized`` (layers with ``norm`` only): after the normalization, before the style affine.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from ..networks import require_w_space
from ..nn.style_layers import ModulatedStyleLayer, NormalizedStyleLayer

POINTS = ("output", "activation", "normalized")


@dataclass(frozen=True)
class SynthesisLayer:
    """One style layer: its paper index, module path in G, output resolution and channels."""

    index: int
    name: str
    resolution: int
    channels: int
    points: tuple[str, ...]
    module: nn.Module = field(repr=False, compare=False)

    def describe(self) -> str:
        return f"{self.index}: {self.name} ({self.channels}x{self.resolution}x{self.resolution})"


def _is_style_layer(module: nn.Module) -> bool:
    return isinstance(module, (ModulatedStyleLayer, NormalizedStyleLayer)) or bool(
        getattr(type(module), "is_style_layer", False))


def _norm(module: nn.Module) -> nn.Module | None:
    norm = getattr(module, "norm", None)
    return norm if isinstance(norm, nn.Module) else None


def synthesis_layers(G: nn.Module) -> list[SynthesisLayer]:
    """Every style layer of ``G.synthesis`` in the papers' order (see the module docstring)."""
    require_w_space(G, "its synthesis network has no style layers to analyze")
    synthesis = getattr(G, "synthesis", None)
    if synthesis is None or not hasattr(synthesis, "blocks"):
        raise TypeError(f"{type(G).__name__} has no synthesis network with blocks(); pass a "
                        "lightning_stylegan Generator (load one with network_files.load_generator)")
    names = {id(module): name for name, module in G.named_modules()}
    layers = []
    for block in synthesis.blocks():
        inside: list[str] = []  # a style layer's own submodules are part of it, not layers
        for path, module in block.named_modules():
            if not _is_style_layer(module) or any(path.startswith(outer + ".") for outer in inside):
                continue
            inside.append(path)
            points = ("output", "activation") + (("normalized",) if _norm(module) is not None else ())
            channels = getattr(module, "out_channels", None) or module.weight.shape[0]
            layers.append(SynthesisLayer(len(layers), names[id(module)], int(module.resolution),
                                         int(channels), points, module))
    if not layers:
        raise ValueError(f"{type(synthesis).__name__} has no style layers; a plugin layer class must "
                         "subclass a lightning_stylegan.nn.style_layers class or set is_style_layer = True")
    return layers


def _listing(layers: Sequence[SynthesisLayer]) -> str:
    return "; ".join(layer.describe() for layer in layers)


def find_layer(G_or_layers, key: int | str) -> SynthesisLayer:
    """A layer by index (``3``, ``"3"``) or module path (``"b16.conv0"``, ``"synthesis.b16.conv0"``)."""
    layers = G_or_layers if isinstance(G_or_layers, list) else synthesis_layers(G_or_layers)
    text = str(key).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if 0 <= index < len(layers):
            return layers[index]
        raise ValueError(f"No layer {index}: this generator has layers 0..{len(layers) - 1} "
                         f"({_listing(layers)})")
    for layer in layers:
        if text in (layer.name, layer.name.removeprefix("synthesis.")):
            return layer
    raise ValueError(f"No layer named {text!r}; the layers are: {_listing(layers)}")


def layers_at_resolution(G_or_layers, resolution: int) -> list[SynthesisLayer]:
    """The layers whose output is ``resolution`` x ``resolution``."""
    layers = G_or_layers if isinstance(G_or_layers, list) else synthesis_layers(G_or_layers)
    found = [layer for layer in layers if layer.resolution == resolution]
    if not found:
        raise ValueError(f"No layer at {resolution}x{resolution}; the resolutions are "
                         f"{sorted({layer.resolution for layer in layers})}")
    return found


def parse_layers(G_or_layers, text: str | None) -> list[SynthesisLayer]:
    """Comma-separated indices (``0,1,3``), names (``b8.conv0``) or resolutions (``16x16``: every
    layer at it); ``None``, ``""`` or ``all`` give every layer. Order kept, duplicates dropped."""
    layers = G_or_layers if isinstance(G_or_layers, list) else synthesis_layers(G_or_layers)
    if text is None or text.strip() in ("", "all"):
        return list(layers)
    chosen: list[SynthesisLayer] = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        size = item.split("x")
        if len(size) == 2 and size[0] == size[1] and size[0].isdigit():
            found = layers_at_resolution(layers, int(size[0]))
        else:
            found = [find_layer(layers, item)]
        chosen += [layer for layer in found if layer not in chosen]
    return chosen


def _check_point(layer: SynthesisLayer, point: str) -> None:
    if point not in layer.points:
        raise ValueError(f"Layer {layer.describe()} offers the tap points {layer.points}, not {point!r}"
                         + ("; 'normalized' needs a layer with a normalization (StyleGAN v1 family)"
                            if point == "normalized" else ""))


def _hook(layer: SynthesisLayer, point: str, fn: Callable[[torch.Tensor], torch.Tensor | None]):
    """Register a hook calling ``fn(map)`` at ``point``; a tensor it returns replaces the map."""
    _check_point(layer, point)
    norm = _norm(layer.module)
    if point == "output" or (point == "activation" and norm is None):
        return layer.module.register_forward_hook(lambda module, args, out: fn(out))
    if point == "normalized":
        return norm.register_forward_hook(lambda module, args, out: fn(out))

    def pre_hook(module, args):
        new = fn(args[0])
        return None if new is None else (new,) + tuple(args[1:])
    return norm.register_forward_pre_hook(pre_hook)


def _as_layer(G, layer: SynthesisLayer | int | str) -> SynthesisLayer:
    return layer if isinstance(layer, SynthesisLayer) else find_layer(G, layer)


@contextlib.contextmanager
def read_features(G: nn.Module, layers: Sequence[SynthesisLayer | int | str],
                  point: str = "output") -> Iterator[dict[int, torch.Tensor]]:
    """Inside the block, every forward of G stores a detached copy of each layer's map at ``point``
    in the yielded dict, keyed by layer index (the last forward wins). Hooks go on exit."""
    maps: dict[int, torch.Tensor] = {}
    handles = []
    try:
        for layer in (_as_layer(G, item) for item in layers):
            def store(x, index=layer.index):
                maps[index] = x.detach().clone()
            handles.append(_hook(layer, point, store))
        yield maps
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def edit_features(G: nn.Module, layer: SynthesisLayer | int | str,
                  fn: Callable[[torch.Tensor], torch.Tensor], point: str = "output") -> Iterator[SynthesisLayer]:
    """Inside the block, ``layer``'s map at ``point`` is replaced by ``fn(map)`` (same shape) in
    every forward of G; everything downstream sees the edited map. The hook goes on exit. The edited
    map keeps the map's memory layout (an edit such as ``masked_fill`` with a mask of another layout
    returns NCHW for a channels_last map), so the layers downstream run the same kernels: an edit
    that changes no value changes no image, to the last bit."""
    layer = _as_layer(G, layer)

    def replace(x):
        new = fn(x)
        if not isinstance(new, torch.Tensor) or new.shape != x.shape:
            raise ValueError(f"The edit of layer {layer.describe()} must return a tensor of shape "
                             f"{tuple(x.shape)}, got {getattr(new, 'shape', type(new).__name__)}")
        layout = torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
            else torch.contiguous_format
        return new.to(x.dtype).contiguous(memory_format=layout)

    handle = _hook(layer, point, replace)
    try:
        yield layer
    finally:
        handle.remove()


class _Stop(Exception):
    """Raised by ``forward_until``'s hook to end a forward pass early."""


def forward_until(G: nn.Module, last: SynthesisLayer, ws: torch.Tensor, noise_mode: str = "const") -> None:
    """Run ``G.synthesis(ws)`` only until ``last`` has computed its output: the hooks of the layers
    up to it fire, the rest of the network (the expensive high resolutions) does not run."""
    def stop(module, args, out):
        raise _Stop
    handle = last.module.register_forward_hook(stop)
    try:
        G.synthesis(ws, noise_mode=noise_mode)
    except _Stop:
        pass
    finally:
        handle.remove()
