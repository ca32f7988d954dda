"""The files that hold trained networks, read without running code from them.

* A **checkpoint** (``*.ckpt``): what ``lightning-stylegan fit`` writes, and what
  ``lightning-stylegan convert`` writes from official networks. Its ``state_dict`` holds ``G.*``,
  ``D.*`` and ``G_ema.*``; its ``hyper_parameters`` are the ``StyleGAN2`` module's arguments.
* An **exported generator**: ``<name>.pt`` (a plain dict of tensors) next to ``<name>.json`` (the
  ``Generator`` keyword arguments). ``load_generator("<name>.pt")`` rebuilds it in one call.

Every file is read with ``torch.load(weights_only=True)``: tensors and plain containers only.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import registry
from .checkpoint_files import verify, write_checksummed
from .errors import NetworkFileError
from .networks import Generator, build_discriminator

EXPORT_FORMAT = "lightning-stylegan-generator/1"
# A training checkpoint's "counters": progress in images shown and steps, never Lightning's global_step.
COUNTERS = ("images_seen", "g_steps", "d_steps", "g_reg_steps", "d_reg_steps")


@dataclass
class Networks:
    """The networks of one file. ``G`` and ``D`` are None for an exported generator."""

    G_ema: Generator
    G: Generator | None
    D: nn.Module | None
    hparams: dict
    path: Path
    data: dict | None = None  # the data module's arguments the networks were trained with, if recorded


def generator_kwargs(hparams: dict) -> dict:
    """``Generator`` keyword arguments from a ``StyleGAN2`` module's hyper-parameters."""
    growth = registry.load("growth", hparams.get("growth", "none"))
    progressive = growth(hparams["resolution"], **hparams.get("growth_options", {})).progressive
    return dict(img_resolution=hparams["resolution"], img_channels=hparams["channels"],
                c_dim=hparams["label_dim"], progressive=progressive, **hparams["generator"])


def discriminator_kwargs(hparams: dict) -> dict:
    """``build_discriminator`` keyword arguments from a ``StyleGAN2`` module's hyper-parameters."""
    kwargs = generator_kwargs(hparams)
    return dict(img_resolution=kwargs["img_resolution"], img_channels=kwargs["img_channels"],
                c_dim=kwargs["c_dim"], progressive=kwargs["progressive"], **hparams["discriminator"])


def _read(path: Path) -> dict:
    if not path.is_file():
        raise NetworkFileError(f"{path}: no such file")
    with open(path, "rb") as file:
        head = file.read(4)
    if head[:1] == b"\x80" and path.suffix == ".pkl":
        raise NetworkFileError(f"{path} is a Python pickle (an official NVlabs network?). Convert it first: "
                               f"lightning-stylegan convert --src {path} --out {path.with_suffix('.ckpt')}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, ... for foreign files
        lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
        # torch's weights_only refusal opens with advice to load unsafely; the reason is further down.
        cause = next((line for line in lines if "Unsupported" in line or "WeightsUnpickler error" in line), lines[0])
        if head[:1] not in (b"\x80", b"P"):
            raise NetworkFileError(f"{path} is not a torch file (it starts with {head!r}): not a lightning-stylegan "
                                   "checkpoint or exported generator. Give a .ckpt written by `lightning-stylegan "
                                   "fit` or `convert`") from error
        if head == b"PK\x03\x04":  # torch's zip container, cut off or damaged
            raise NetworkFileError(f"{path} is a truncated or damaged torch file ({cause}); use an earlier "
                                   "checkpoint of the run (the previous kimg*.ckpt)") from error
        raise NetworkFileError(f"{path} is not a lightning-stylegan checkpoint or exported generator "
                               f"(torch.load(weights_only=True) failed: {cause}). "
                               "Official NVlabs pickles and rosinality checkpoints need "
                               "`lightning-stylegan convert` first.") from error
    verify(data, path)  # a checkpoint that carries a checksum matches it
    return data


def check_plugins_installed(data: dict, path: Path, networks_only: bool = False) -> None:
    """Every plugin a file records (``{kind: {name, distribution, version}}``) is installed, or an
    error that says which package to install. ``networks_only`` leaves out the augmentation and
    the loss, which only training uses."""
    for kind, used in (data.get("plugins") or {}).items():
        if networks_only and kind in ("augmentation", "loss"):
            continue
        if kind in registry.GROUPS and used.get("name") not in registry.index(kind):
            raise NetworkFileError(
                f"{path} needs the {kind} plugin {used.get('name')!r} from {used.get('distribution')} "
                f"{used.get('version')}, which is not installed: pip install "
                f"{used.get('distribution')}=={used.get('version')}")


def read_training_checkpoint(path: str | os.PathLike, resume: bool) -> dict:
    """The contents of a checkpoint that ``fit --ckpt_path`` can resume (``resume``) or ``validate
    --ckpt_path`` can score, checked before Lightning reads it; otherwise an error that says what
    the file is and what to do with it."""
    path = Path(path)
    data = _read(path)
    if isinstance(data, dict) and data.get("format") == EXPORT_FORMAT:
        raise NetworkFileError(f"{path} is an exported generator (G_ema only), not a training checkpoint; "
                               f"start a new run from it with --model.init_from {path}")
    if not (isinstance(data, dict) and "generator" in (data.get("hyper_parameters") or {})
            and isinstance(data.get("state_dict"), dict) and "counters" in data):
        raise NetworkFileError(f"{path} is not a lightning-stylegan training checkpoint (it has no StyleGAN2 "
                               "networks and counters); give a .ckpt written by `lightning-stylegan fit`")
    if resume and not {"optimizer_states", "loops"} <= set(data):
        raise NetworkFileError(f"{path} holds networks but no training state (optimizers, loop position): "
                               f"it was written by `lightning-stylegan convert`; start a new run from it "
                               f"with --model.init_from {path} instead of --ckpt_path")
    check_plugins_installed(data, path)
    return data


def _sub_state(state_dict: dict, prefix: str) -> dict:
    return {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}


def load_networks(path: str | os.PathLike, generator_only: bool = False) -> Networks:
    """G, D and G_ema of a checkpoint, or the generator of an exported ``.pt`` (in eval mode, on CPU).
    ``generator_only`` builds G_ema alone (G and D are then None): what the tools that only generate need."""
    path = Path(path)
    data = _read(path)
    if isinstance(data, dict) and data.get("format") == EXPORT_FORMAT:
        check_plugins_installed(data, path)
        return Networks(_exported_generator(path, data), None, None, {}, path)
    if not (isinstance(data, dict) and "state_dict" in data and "generator" in data.get("hyper_parameters", {})):
        raise NetworkFileError(f"{path} has no StyleGAN2 networks: expected a checkpoint written by "
                               "`lightning-stylegan fit` or `convert`, or a generator written by `convert "
                               "--export`. A checkpoint of another LightningModule does not hold G and D.")
    check_plugins_installed(data, path, networks_only=True)
    hparams = data["hyper_parameters"]
    state = data["state_dict"]
    networks = {}
    for name, build in [("G_ema", lambda: Generator(**generator_kwargs(hparams))),
                        ("G", lambda: Generator(**generator_kwargs(hparams))),
                        ("D", lambda: build_discriminator(**discriminator_kwargs(hparams)))]:
        sub = _sub_state(state, name + ".")
        if not sub or (generator_only and name != "G_ema"):
            networks[name] = None
            continue
        net = build()
        load_state(net, sub, f"{path} ({name})")
        networks[name] = net.eval().requires_grad_(False)
    if networks["G_ema"] is None:
        raise NetworkFileError(f"{path} holds no G_ema weights")
    return Networks(networks["G_ema"], networks["G"], networks["D"], hparams, path,
                    data.get("datamodule_hyper_parameters"))


def load_state(net: nn.Module, state: dict, where: str) -> None:
    """``net.load_state_dict(state)``, or an error naming the keys that do not fit."""
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(key for key in set(own) & set(state) if own[key].shape != state[key].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(f"{label}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
                           for label, keys in [("missing", missing), ("unexpected", unexpected),
                                               ("wrong shape", wrong)] if keys)
        raise NetworkFileError(f"{where}: the weights do not fit the network its configuration builds ({detail})")
    net.load_state_dict(state)


def load_generator(path: str | os.PathLike) -> Generator:
    """The EMA generator of a checkpoint, or an exported generator: eval mode, no gradients."""
    return load_networks(path, generator_only=True).G_ema


def export_generator(G: Generator, path: str | os.PathLike) -> Path:
    """Write ``G`` as ``<path>`` (tensors only) and ``<path stem>.json`` (its keyword arguments)."""
    path = Path(path).with_suffix(".pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    config = dict(G.init_kwargs)
    plugins = registry.provenance(G.plugins())
    write_checksummed({"format": EXPORT_FORMAT, "config": config, "plugins": plugins,
                       "state_dict": {k: v.detach().cpu() for k, v in G.state_dict().items()}}, path)
    json_path = path.with_suffix(".json")
    json_tmp = json_path.with_name(json_path.name + ".tmp")
    json_tmp.write_text(json.dumps(config, indent=2) + "\n")
    os.replace(json_tmp, json_path)
    return path


def _exported_generator(path: Path, data: dict) -> Generator:
    json_path = path.with_suffix(".json")
    config = json.loads(json_path.read_text()) if json_path.is_file() else data["config"]
    G = Generator(**config)
    load_state(G, data["state_dict"], str(path))
    return G.eval().requires_grad_(False)


def write_checkpoint(path: str | os.PathLike, hparams: dict, G: Generator, D: nn.Module | None,
                     G_ema: Generator, source: str) -> Path:
    """A checkpoint that ``load_networks`` reads and ``fit --model.init_from`` starts from.

    ``hparams`` are ``StyleGAN2`` module arguments. It carries no optimizer or loop state, so it
    initialises a new run rather than resuming one.
    """
    state = {}
    for name, net in [("G", G), ("D", D), ("G_ema", G_ema)]:
        if net is not None:
            state.update({f"{name}.{k}": v.detach().cpu() for k, v in net.state_dict().items()})
    plugins = G.plugins() | {"growth": hparams.get("growth", "none")}
    if "discriminator" in hparams:
        plugins["discriminator"] = hparams["discriminator"]["topology"]
    checkpoint = {"state_dict": state, "hyper_parameters": hparams, "counters": dict.fromkeys(COUNTERS, 0),
                  "plugins": registry.provenance(plugins), "converted_from": source}
    path = Path(path)
    write_checksummed(checkpoint, path)
    return path
