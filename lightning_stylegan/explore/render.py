"""What the explorer draws: a request from the page (a JSON object) -> images and figures, for each
checkpoint named on the command line.

Request fields (``checkpoints`` is required, the rest optional):

* ``checkpoints``: names of loaded networks, drawn side by side at the same latent;
* ``seed`` (NVlabs' ``RandomState(seed).randn``), or ``z`` (a list of ``z_dim`` numbers), or
  ``projected`` (the name of a ``projected_w.npz`` given with ``--projected-w``);
* ``walk``: ``{"seeds": [a, b], "t": 0..1, "space": "z" | "w"}``, one frame of a latent walk (slerp
  in Z, lerp in W), replacing the seed;
* ``class``, ``psi``, ``cutoff``, ``noise`` (``const``, ``random``, ``none``), ``translate``
  ``[x, y]`` and ``rotate`` (degrees; generators with a ``set_transform`` hook, e.g. StyleGAN3);
* ``mix``: ``{"seed": s, "layers": [first, last]}``, the styles of those layers from seed s;
* ``layer``: a synthesis layer index, for the layer view (feature maps, the per-pixel magnitude
  with the artifact region of 000_2d004fc061d5976e.txt outlined, its magnitude ratio, the map's
  channel statistics, the statistics its normalization sees, and with a ``--rates`` file of
  ``analyze rates`` its low-rate neurons); ``ablate``: zero that layer's low-rate neurons
  (004_738a47e1aec6d700.txt's Sequential Ablation).

Every field is checked; a bad one is an ``ExploreInputError`` whose message the page shows. Nothing
here reads a path from the request: files are the ones the command line named.
"""
from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from ..analysis.ablation import low_rate_heatmap, sequential_ablation
from ..analysis.activation_rates import ActivationRates
from ..analysis.feature_maps import layer_magnitudes, strongest_channels
from ..analysis.layers import SynthesisLayer, read_features, synthesis_layers
from ..errors import UsageError
from ..images import to_uint8
from ..networks import has_w_space
from ..tools.generate import MAX_SEED, class_labels, seed_to_z, set_output_transform, slerp

NOISE = ("const", "random", "none")
FEATURE_MAPS = 16  # strongest channels shown in the layer view


class ExploreInputError(UsageError):
    """A request the explorer cannot draw; the message says which field and why."""


@dataclass
class Network:
    """A loaded generator (eval, no grad) and what the page may ask of it."""

    name: str
    G: torch.nn.Module
    rates: ActivationRates | None = None
    layers: list[SynthesisLayer] = field(default_factory=list)

    @property
    def w_space(self) -> bool:
        return has_w_space(self.G)

    def describe(self) -> dict:
        """The network as the page's controls need it, with why a control does not apply."""
        G, unavailable = self.G, {}
        if not self.w_space:
            reason = f"the {getattr(G, 'topology', type(G).__name__)!r} generator has no W space"
            for control in ("psi", "cutoff", "mix", "noise", "layer", "projected", "walk_w"):
                unavailable[control] = reason
        if not callable(getattr(G.synthesis, "set_transform", None)):
            unavailable["transform"] = "its synthesis network has no set_transform hook (StyleGAN3 has one)"
        if self.rates is None:
            unavailable["ablate"] = "no --rates file (lightning-stylegan analyze rates) was given for it"
        return {"name": self.name, "resolution": G.img_resolution, "channels": G.img_channels, "z_dim": G.z_dim,
                "c_dim": G.c_dim, "num_ws": getattr(G, "num_ws", 0),
                "layers": [layer.describe() for layer in self.layers], "unavailable": unavailable}


def network(name: str, G: torch.nn.Module, rates: ActivationRates | None = None) -> Network:
    layers = synthesis_layers(G) if has_w_space(G) else []
    if rates is not None:
        rates.check(layers)
    return Network(name, G.eval().requires_grad_(False), rates, layers)


# ----------------------------------------------------------------- checks
def _number(request: dict, key: str, default, low=None, high=None, integer=False):
    value = request.get(key, default)
    if value is None:
        return None
    kind = int if integer else float
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and value != int(value)) \
            or not math.isfinite(value):
        raise ExploreInputError(f"{key} must be {'an integer' if integer else 'a number'}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ExploreInputError(f"{key} must be between {low} and {high}, got {value!r}")
    return kind(value)


def _pair(value, key: str) -> tuple[float, float]:
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and
            all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
        raise ExploreInputError(f"{key} must be two numbers, got {value!r}")
    return float(value[0]), float(value[1])


def _seed(value, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ExploreInputError(f"{key} must be an integer from 0 to {MAX_SEED}, got {value!r}")
    return value


def _unavailable(net: Network, control: str) -> None:
    reason = net.describe()["unavailable"].get(control)
    if reason:
        raise ExploreInputError(f"{control} does not apply to {net.name}: {reason}")


# ----------------------------------------------------------------- drawing
def latent(net: Network, request: dict, projected: dict[str, torch.Tensor]) -> tuple[torch.Tensor, str]:
    """z [1, z_dim] (kind "z") or ws [1, num_ws, w_dim] (kind "w") of the request."""
    G = net.G
    if "walk" in request:
        walk = request["walk"]
        if not isinstance(walk, dict) or not isinstance(walk.get("seeds"), list) or len(walk["seeds"]) != 2:
            raise ExploreInputError(f"walk must be {{seeds: [a, b], t, space}}, got {walk!r}")
        a, b = (seed_to_z(_seed(s, "walk.seeds"), G.z_dim) for s in walk["seeds"])
        t = _number(walk, "t", 0.0, 0.0, 1.0)
        space = walk.get("space", "z")
        if space == "z":
            return slerp(a, b, t), "z"
        if space != "w":
            raise ExploreInputError(f"walk.space must be 'z' or 'w', got {space!r}")
        _unavailable(net, "walk_w")
        wa, wb = (_map(net, z, request) for z in (a, b))
        return torch.lerp(wa, wb, t), "w"
    if request.get("projected") is not None:
        _unavailable(net, "projected")
        name = request["projected"]
        if name not in projected:
            raise ExploreInputError(f"projected {name!r} is not one of the --projected-w files: {sorted(projected)}")
        ws = projected[name]
        if ws.shape[1:] != (G.num_ws, G.w_dim):
            raise ExploreInputError(f"projected {name!r} has ws of shape {tuple(ws.shape[1:])}; {net.name} takes "
                                    f"({G.num_ws}, {G.w_dim})")
        return ws.to(torch.float32), "w"
    if request.get("z") is not None:
        z = request["z"]
        if not (isinstance(z, list) and len(z) == G.z_dim and all(isinstance(v, (int, float)) and
                                                                   not isinstance(v, bool) for v in z)):
            raise ExploreInputError(f"z must be a list of {G.z_dim} numbers for {net.name}")
        return torch.tensor([z], dtype=torch.float64), "z"
    return seed_to_z(_seed(request.get("seed", 0), "seed"), G.z_dim), "z"


def _labels(net: Network, request: dict) -> torch.Tensor | None:
    try:
        return class_labels(net.G, _number(request, "class", None, integer=True), 1, torch.device("cpu"))
    except ValueError as error:
        raise ExploreInputError(str(error).replace("--class", "class")) from error


def _map(net: Network, z: torch.Tensor, request: dict) -> torch.Tensor:
    G = net.G
    psi = _number(request, "psi", 1.0, -2.0, 2.0)
    cutoff = _number(request, "cutoff", None, 1, G.num_ws, integer=True)
    return G.mapping(z.to(torch.float32), _labels(net, request), truncation_psi=psi, truncation_cutoff=cutoff)


def _mixed(net: Network, ws: torch.Tensor, request: dict) -> torch.Tensor:
    mix = request.get("mix")
    if mix is None:
        return ws
    _unavailable(net, "mix")
    if not isinstance(mix, dict):
        raise ExploreInputError(f"mix must be {{seed, layers: [first, last]}}, got {mix!r}")
    first, last = (int(v) for v in _pair(mix.get("layers"), "mix.layers"))
    if not 0 <= first <= last < net.G.num_ws:
        raise ExploreInputError(f"mix.layers must satisfy 0 <= first <= last < {net.G.num_ws}, got {[first, last]}")
    other = _map(net, seed_to_z(_seed(mix.get("seed"), "mix.seed"), net.G.z_dim), request)
    ws = ws.clone()
    ws[:, first:last + 1] = other[:, first:last + 1]
    return ws


def _prepare(net: Network, request: dict, projected: dict[str, torch.Tensor]) -> tuple[torch.Tensor, str]:
    """Check the request against the network, set its output transform; the latent to draw: ws
    [1, num_ws, w_dim] (mixed) with kind "w", or for a generator without W, z with kind "z"."""
    G = net.G
    if request.get("noise", "const") not in NOISE:
        raise ExploreInputError(f"noise must be one of {NOISE}, got {request.get('noise')!r}")
    translate = _pair(request.get("translate") or [0, 0], "translate")
    rotate = _number(request, "rotate", 0.0, -360, 360)
    if callable(getattr(G.synthesis, "set_transform", None)):
        set_output_transform(G, translate, rotate)  # every request: the last one's transform is not kept
    elif translate != (0.0, 0.0) or rotate:
        _unavailable(net, "transform")
    code, kind = latent(net, request, projected)
    if not net.w_space:
        for control in ("cutoff", "mix", "layer"):
            if request.get(control) is not None:
                _unavailable(net, control)
        if request.get("psi", 1) != 1:
            _unavailable(net, "psi")
        return code, "z"
    ws = code if kind == "w" else _map(net, code, request)
    return _mixed(net, ws, request), "w"


def _image(net: Network, code: torch.Tensor, kind: str, request: dict) -> torch.Tensor:
    """uint8 [C, H, W] of a prepared latent."""
    if kind == "z":
        return to_uint8(net.G(code.to(torch.float32), _labels(net, request)))[0]
    torch.manual_seed(0)  # noise "random": the same draw for the same request
    return to_uint8(net.G.synthesis(code, noise_mode=request.get("noise", "const")))[0]


@torch.no_grad()
def draw(net: Network, request: dict, projected: dict[str, torch.Tensor]) -> dict:
    """One network's answer to a request: the image (PNG, base64) and, with ``layer``, the layer view."""
    code, kind = _prepare(net, request, projected)
    answer = {"name": net.name}
    layer_key = request.get("layer")
    if layer_key is None:
        if request.get("ablate"):
            raise ExploreInputError("ablate needs a layer: pick one in the layer view")
        answer["image"] = png(_image(net, code, kind, request))
        return answer
    layer, noise = _layer(net, layer_key), request.get("noise", "const")
    with read_features(net.G, [layer], "activation") as maps:  # what a norm normalizes, and the neurons
        torch.manual_seed(0)
        image, (result,) = layer_magnitudes(net.G, code, [layer], noise_mode=noise)  # one forward reads both
    answer["layer"] = layer_view(result) | {"normalization": normalization_statistics(layer, maps[layer.index][0])}
    if net.rates is not None:
        answer["layer"]["low_rate"] = low_rate_view(net.rates, layer, maps[layer.index])
    if request.get("ablate"):
        _unavailable(net, "ablate")
        ablated = sequential_ablation(net.G, code, net.rates, [layer], noise_mode=noise)
        image = ablated.images
        answer["ablated"] = {"activated": int(ablated.activated[layer.index].sum()),
                             "zeroed": int(ablated.zeroed[layer.index].sum())}
    answer["image"] = png(to_uint8(image)[0])
    return answer


@torch.no_grad()
def walk_frames(net: Network, request: dict, projected: dict[str, torch.Tensor], frames: int):
    """uint8 [C, H, W] frames of the request's ``walk`` from t = 0 to 1, the page's other settings kept."""
    if not isinstance(request.get("walk"), dict):
        raise ExploreInputError("a walk video needs walk: {seeds: [a, b], space}")
    for t in torch.linspace(0, 1, frames).tolist():
        frame = request | {"walk": request["walk"] | {"t": t}}
        yield _image(net, *_prepare(net, frame, projected), frame)


def _layer(net: Network, key) -> SynthesisLayer:
    index = _number({"layer": key}, "layer", None, 0, len(net.layers) - 1, integer=True)
    return net.layers[index]


def layer_view(result) -> dict:
    """Feature maps of the strongest channels, the magnitude heat map with the artifact region
    outlined, the magnitude ratio, and the map's channel statistics."""
    fmap, magnitude, region = result.fmap, result.magnitude, result.region
    channels = strongest_channels(result, min(FEATURE_MAPS, fmap.shape[0]))
    tiles = [_normalized(fmap[c]) for c in channels]
    columns = math.ceil(math.sqrt(len(tiles)))
    size = fmap.shape[-1]
    grid = np.zeros((math.ceil(len(tiles) / columns) * (size + 1), columns * (size + 1)), dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        grid[r * (size + 1):r * (size + 1) + size, c * (size + 1):c * (size + 1) + size] = tile
    means, stds = fmap.flatten(1).mean(dim=1), fmap.flatten(1).std(dim=1)
    summary = result.summary()
    return {"index": result.layer.index, "name": result.layer.name, "point": result.point,
            "feature_maps": png_array(grid), "channels": channels,
            "magnitude": png_array(heat_with_outline(magnitude, region)),
            "magnitude_ratio": summary["magnitude_ratio"], "region_fraction": summary["region_fraction"],
            "statistics": {"channel_mean_abs": float(means.abs().mean()), "channel_std_min": float(stds.min()),
                           "channel_std_median": float(stds.median()), "channel_std_max": float(stds.max())}}


def normalization_statistics(layer: SynthesisLayer, activation: torch.Tensor) -> dict:
    """What the layer's normalization sees: for a layer with a ``norm`` (AdaIN, PIN, pixel norm, StyleGAN
    v1), the per-channel mean and standard deviation over the pixels of its input (what instance
    normalization subtracts and divides by) and the per-pixel norm over the channels (pixel norm's);
    for a StyleGAN2 layer, which normalizes through its weights (demodulation), a note saying so."""
    if "normalized" not in layer.points:
        return {"kind": "weights", "note": "this layer normalizes through its weights (demodulation): "
                                           "its features are not normalized"}
    x = activation.float().flatten(1)
    means, stds = x.mean(dim=1), x.std(dim=1)
    pixel_norms = x.square().mean(dim=0).sqrt()
    return {"kind": "features", "channel_mean_min": float(means.min()), "channel_mean_max": float(means.max()),
            "channel_std_min": float(stds.min()), "channel_std_median": float(stds.median()),
            "channel_std_max": float(stds.max()), "pixel_rms_min": float(pixel_norms.min()),
            "pixel_rms_max": float(pixel_norms.max())}


def low_rate_view(rates: ActivationRates, layer: SynthesisLayer, activation: torch.Tensor) -> dict:
    """The layer's low-rate neurons (004_738a47e1aec6d700.txt Eq. 1, R <= the rates' threshold):
    how many there are, and the heat map of the fraction of channels at each pixel that are activated
    low-rate neurons in this image (its Figures 1 and 4)."""
    low = rates.low_rate(layer.index)
    heat = low_rate_heatmap(activation, low)[0]
    return {"neurons": int(low.sum()), "of": low.numel(), "activated_here": int(((activation[0] > 0) & low).sum()),
            "heatmap": png_array(heat_with_outline(heat, torch.zeros_like(heat, dtype=torch.bool)))}


def _normalized(x: torch.Tensor) -> np.ndarray:
    low, high = float(x.min()), float(x.max())
    return ((x - low) / (high - low + 1e-12) * 255).round().byte().numpy()


def heat_with_outline(magnitude: torch.Tensor, region: torch.Tensor) -> np.ndarray:
    """[H, W, 3] uint8: the magnitude as a black-red-yellow-white heat map, the boundary pixels of
    ``region`` (in it, with a 4-neighbour outside it) in cyan."""
    m = _normalized(magnitude).astype(np.float32) / 255
    rgb = np.stack([np.clip(3 * m, 0, 1), np.clip(3 * m - 1, 0, 1), np.clip(3 * m - 2, 0, 1)], axis=-1)
    inside = region.numpy()
    padded = np.pad(inside, 1)
    edge = inside & ~(padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    rgb[edge] = (0.0, 1.0, 1.0)
    return (rgb * 255).round().astype(np.uint8)


def png(image: torch.Tensor) -> str:
    """A uint8 [C, H, W] image as a base64 PNG."""
    array = image.cpu().numpy().transpose(1, 2, 0)
    return png_array(array[:, :, 0] if array.shape[2] == 1 else array)


def png_array(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
