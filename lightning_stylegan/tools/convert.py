"""``lightning-stylegan convert``: official StyleGAN2 networks -> our checkpoint or exported generator.

    lightning-stylegan convert --src network-snapshot-025000.pkl --out ffhq.ckpt       # NVlabs pickle
    lightning-stylegan convert --src 550000.pt --out ffhq.ckpt                         # rosinality
    lightning-stylegan convert --src ffhq.ckpt --out ffhq-G --export                   # G_ema as .pt + .json

Sources:

* NVlabs stylegan2-ada-pytorch pickles (``*.pkl``; every configuration of its ``train.py``:
  ``auto``, ``stylegan2``, ``paper256/512/1024``, ``cifar``; any resolution; conditional or not),
  read by ``restricted_pickle`` without running the code they embed. Our parameter names are
  NVlabs', so the weights carry over one to one; the init kwargs become our options, and a kwarg
  we cannot represent is an error, never a silent approximation. fp16 layers become fp32
  (``num_fp16_res`` only sets precision); ``conv_clamp`` is kept.
* rosinality stylegan2-pytorch checkpoints (``*.pt``, zip or pre-torch-1.6 legacy ``torch.save``
  format), see ``convert_rosinality``.
* Our own checkpoints and exported generators, only with ``--export`` (without it there is nothing
  to convert, and ``convert`` says so).

Any other file (text, random bytes, another ``torch.save`` file, an empty or missing one) makes
``main`` print one line ``error: <file> is not ...; convert accepts: ...`` and return 2.

The result is one of our checkpoints (for ``generate``, ``project``, ``metrics``, ``analyze`` and
``fit --model.init_from``), or with ``--export`` the EMA generator as tensors + JSON.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ..network_files import (EXPORT_FORMAT, NetworkFileError, export_generator, load_networks, load_state,
                             write_checkpoint)
from ..networks import Generator
from ..training.options import DiscriminatorOptions, GeneratorOptions
from .restricted_pickle import PersistentRecord, UnsafePickleError, load_network_pickle

ARCHITECTURES = {"orig": "original", "skip": "skip", "resnet": "residual"}
FILTER = [1, 3, 3, 1]
# NVlabs options that only set speed or precision, not the function a network computes.
PRECISION_ONLY = {"num_fp16_res", "use_fp16", "fp16_channels_last", "channels_last"}


class ConversionError(NetworkFileError):
    """The source holds something our networks cannot represent exactly."""


def _take(kwargs: dict, defaults: dict, where: str) -> dict:
    """``defaults`` updated by ``kwargs``; keys outside them (and precision-only keys) are refused/dropped."""
    unknown = sorted(set(kwargs) - set(defaults) - PRECISION_ONLY)
    if unknown:
        raise ConversionError(f"{where}: NVlabs options {unknown} are not supported by the converter")
    return defaults | {key: value for key, value in kwargs.items() if key in defaults}


def _require(values: dict, expected: dict, where: str) -> None:
    for key, value in expected.items():
        if values[key] != value and not (key == "resample_filter" and list(values[key]) == value):
            raise ConversionError(f"{where}: {key}={values[key]!r} is not supported (only {value!r})")


def _generator_options(kwargs: dict) -> tuple[dict, GeneratorOptions]:
    top = _take(kwargs, dict(z_dim=None, c_dim=0, w_dim=None, img_resolution=None, img_channels=None,
                             mapping_kwargs={}, synthesis_kwargs={}), "G")
    mapping = _take(top["mapping_kwargs"], dict(num_layers=8, embed_features=None, layer_features=None,
                                                activation="lrelu", lr_multiplier=0.01, w_avg_beta=0.995),
                    "G mapping_kwargs")
    _require(mapping, dict(embed_features=None, layer_features=None, activation="lrelu"), "G mapping_kwargs")
    synthesis = _take(top["synthesis_kwargs"], dict(channel_base=32768, channel_max=512, architecture="skip",
                                                    resample_filter=FILTER, conv_clamp=None, use_noise=True,
                                                    activation="lrelu", kernel_size=3), "G synthesis_kwargs")
    _require(synthesis, dict(resample_filter=FILTER, activation="lrelu", kernel_size=3), "G synthesis_kwargs")
    if synthesis["architecture"] not in ARCHITECTURES:
        raise ConversionError(f"G architecture {synthesis['architecture']!r} is not one of {list(ARCHITECTURES)}")
    options = GeneratorOptions(topology=ARCHITECTURES[synthesis["architecture"]], normalization="demod",
                               z_dim=top["z_dim"], w_dim=top["w_dim"], mapping_layers=mapping["num_layers"],
                               mapping_lr_multiplier=mapping["lr_multiplier"], w_avg_beta=mapping["w_avg_beta"],
                               channel_base=synthesis["channel_base"], channel_max=synthesis["channel_max"],
                               use_noise=synthesis["use_noise"], conv_clamp=synthesis["conv_clamp"])
    return top, options


def _discriminator_options(kwargs: dict) -> DiscriminatorOptions:
    top = _take(kwargs, dict(c_dim=0, img_resolution=None, img_channels=None, architecture="resnet",
                             channel_base=32768, channel_max=512, conv_clamp=None, cmap_dim=None,
                             block_kwargs={}, mapping_kwargs={}, epilogue_kwargs={}), "D")
    _require(top, dict(cmap_dim=None), "D")
    block = _take(top["block_kwargs"], dict(activation="lrelu", resample_filter=FILTER, freeze_layers=0),
                  "D block_kwargs")
    _require(block, dict(activation="lrelu", resample_filter=FILTER), "D block_kwargs")
    mapping = _take(top["mapping_kwargs"], dict(num_layers=8, embed_features=None, layer_features=None,
                                                activation="lrelu", lr_multiplier=0.01), "D mapping_kwargs")
    _require(mapping, dict(embed_features=None, layer_features=None, activation="lrelu", lr_multiplier=0.01),
             "D mapping_kwargs")
    epilogue = _take(top["epilogue_kwargs"], dict(mbstd_group_size=4, mbstd_num_channels=1, activation="lrelu"),
                     "D epilogue_kwargs")
    _require(epilogue, dict(activation="lrelu"), "D epilogue_kwargs")
    if top["architecture"] not in ARCHITECTURES:
        raise ConversionError(f"D architecture {top['architecture']!r} is not one of {list(ARCHITECTURES)}")
    return DiscriminatorOptions(topology=ARCHITECTURES[top["architecture"]], channel_base=top["channel_base"],
                                channel_max=top["channel_max"], mbstd_group_size=epilogue["mbstd_group_size"],
                                mbstd_num_channels=epilogue["mbstd_num_channels"],
                                mapping_layers=mapping["num_layers"], conv_clamp=top["conv_clamp"])


def nvlabs_networks(records: dict) -> tuple[dict, Generator, torch.nn.Module | None, Generator]:
    """``(hparams, G, D or None, G_ema)`` from the records of ``load_network_pickle``."""
    from ..training.module import StyleGAN2

    main = records.get("G_ema") or records.get("G")
    if not isinstance(main, PersistentRecord):
        raise ConversionError("The pickle has neither G_ema nor G")
    if "stylegan3" in main.class_name:  # training.networks_stylegan3.Generator: alias-free, not StyleGAN2
        raise ConversionError(f"The pickle holds a StyleGAN3 generator ({main.class_name}); only StyleGAN2 "
                              "networks can be converted")
    top, generator = _generator_options(main.init_kwargs)
    D = records.get("D") if isinstance(records.get("D"), PersistentRecord) else None
    discriminator = _discriminator_options(D.init_kwargs) if D is not None else DiscriminatorOptions()
    module = StyleGAN2(resolution=top["img_resolution"], channels=top["img_channels"], label_dim=top["c_dim"],
                       generator=generator, discriminator=discriminator)
    load_state(module.G_ema, main.state_dict(), "NVlabs G_ema")
    G = records.get("G") if isinstance(records.get("G"), PersistentRecord) else main
    load_state(module.G, G.state_dict(), "NVlabs G")
    if D is not None:
        load_state(module.D, D.state_dict(), "NVlabs D")
    return dict(module.hparams), module.G, module.D if D is not None else None, module.G_ema


def read_networks(src: Path, export: bool = True) -> tuple[dict, Generator, torch.nn.Module | None, Generator]:
    """Networks of any supported source file (see the module docstring); anything else is a
    ``NetworkFileError`` (``UnsafePickleError`` for a pickle that refers to code) saying what the
    file is and what ``convert`` accepts. Our own files are refused unless ``export``."""
    from .convert_rosinality import looks_like_rosinality, read_rosinality, rosinality_networks

    src = Path(src)
    if not src.exists():
        raise NetworkFileError(f"{src} does not exist; give the network file to convert as --src. {ACCEPTS}")
    if not src.is_file():
        raise NetworkFileError(f"{src} is {'a directory' if src.is_dir() else 'not a regular file'}, not a "
                               f"network file; give the file itself as --src. {ACCEPTS}")
    with open(src, "rb") as file:
        head = file.read(32)
    if not head:
        raise NetworkFileError(f"{src} is empty (0 bytes), not a network file (an interrupted download?). {ACCEPTS}")
    if head[:2] != b"PK" and _LEGACY_TORCH not in head:  # not a torch.save file: an NVlabs pickle?
        if head[:1] != b"\x80":
            raise NetworkFileError(f"{src} is not a network file: neither a Python pickle nor a torch.save file "
                                   f"(it starts with {head[:12]!r}). {ACCEPTS}")
        return nvlabs_networks(_nvlabs_records(src))
    try:
        data = read_rosinality(src)
    except NetworkFileError as error:
        reason = " ".join(str(error.__cause__ or error).split("\n")[0].split())
        raise NetworkFileError(f"{src} is not a network file: it looks like a torch.save file, but "
                               f"torch.load(weights_only=True) cannot read it ({reason}). {ACCEPTS}") from error
    if looks_like_rosinality(data):
        return rosinality_networks(data)
    ours = _our_kind(data)
    if ours is None:
        raise NetworkFileError(f"{src} is a torch.save file holding {_describe(data)}, which is neither a rosinality "
                               f"stylegan2-pytorch checkpoint nor a lightning-stylegan network. {ACCEPTS}")
    if not export:
        uses = ("generate, metrics, project, analyze or fit --model.init_from" if ours == "checkpoint"
                else "generate, metrics, project or analyze")
        raise NetworkFileError(f"{src} is already a lightning-stylegan {ours}, so there is nothing to convert: use "
                               f"it as it is with {uses}, or pass --export to write its EMA generator as "
                               ".pt + .json.")
    networks = load_networks(src)
    return networks.hparams, networks.G, networks.D, networks.G_ema


# What `convert` reads, for the messages about the files it does not.
ACCEPTS = ("convert accepts: NVlabs stylegan2-ada-pytorch network pickles (.pkl, e.g. network-snapshot-*.pkl), "
           "rosinality stylegan2-pytorch checkpoints (.pt, from its train.py or convert_weight.py), and with "
           "--export a lightning-stylegan checkpoint (.ckpt) or exported generator (.pt).")
# torch.save's legacy (pre-zip, torch < 1.6) files begin with this magic number, pickled as a long:
# older rosinality checkpoints are such files.
_LEGACY_TORCH = b"\x8a\x0a" + 0x1950A86A20F9469CFC6C.to_bytes(10, "little")


def _nvlabs_records(src: Path) -> dict:
    """``load_network_pickle(src)``; a file that is no pickle at all is a ``NetworkFileError``."""
    try:
        return load_network_pickle(src)
    except UnsafePickleError as error:
        raise UnsafePickleError(f"{error}. {ACCEPTS}") from error
    except Exception as error:  # UnpicklingError, EOFError, ValueError, ... for bytes that are no pickle
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        raise NetworkFileError(f"{src} is not a network file: it starts like a Python pickle but cannot be "
                               f"read as one ({reason}). {ACCEPTS}") from error


def _our_kind(data: object) -> str | None:
    """'checkpoint' or 'exported generator' for data ``load_networks`` reads, else None."""
    if not isinstance(data, dict):
        return None
    if data.get("format") == EXPORT_FORMAT:
        return "exported generator"
    hparams = data.get("hyper_parameters")
    if "state_dict" in data and isinstance(hparams, dict) and "generator" in hparams:
        return "checkpoint"
    return None


def _describe(data: object) -> str:
    if isinstance(data, dict):
        keys = sorted(map(str, data))
        shown = ", ".join(repr(k) for k in keys[:8]) + (", ..." if len(keys) > 8 else "")
        other = " (the checkpoint of another LightningModule)" if "state_dict" in data else ""
        return f"a dict with keys {shown or 'none'}{other}"
    if isinstance(data, torch.Tensor):
        return f"a single tensor of shape {list(data.shape)}"
    return f"a {type(data).__name__}"


def convert(src: str | Path, out: str | Path, export: bool = False) -> Path:
    """Write the networks of ``src`` as our checkpoint ``out`` (or, with ``export``, G_ema as ``out``.pt/.json)."""
    src = Path(src)
    hparams, G, D, G_ema = read_networks(src, export)
    if export:
        return export_generator(G_ema, out)
    return write_checkpoint(out, hparams, G if G is not None else G_ema, D, G_ema, source=str(src))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lightning-stylegan convert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", required=True, help="NVlabs .pkl, rosinality .pt, or one of our checkpoints")
    parser.add_argument("--out", required=True, help="checkpoint to write (.ckpt), or with --export the .pt")
    parser.add_argument("--export", action="store_true",
                        help="write only the EMA generator: tensors (.pt) + its configuration (.json), no pickle")
    args = parser.parse_args(argv)
    try:
        path = convert(args.src, args.out, args.export)
    except (NetworkFileError, UnsafePickleError, ValueError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)  # one line, never a traceback
        return 2
    except OSError as error:  # e.g. --out is a directory, or a file we may not read or write
        print(f"error: {' '.join(str(error).split())}; check that --src {args.src} is readable and --out "
              f"{args.out} is a file path you can write.", file=sys.stderr)
        return 2
    print(f"wrote {path}" + (f" and {path.with_suffix('.json')}" if args.export else ""))
    return 0
