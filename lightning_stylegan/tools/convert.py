"""``lightning-stylegan convert``: official networks -> our checkpoint or exported generator.

    lightning-stylegan convert --src network-snapshot-025000.pkl --out ffhq.ckpt       # NVlabs pickle
    lightning-stylegan convert --src 550000.pt --out ffhq.ckpt                         # rosinality
    lightning-stylegan convert --src ffhq.ckpt --out ffhq-G --export                   # G_ema as .pt + .json

Sources:

* NVlabs network pickles (``*.pkl``), read by ``restricted_pickle`` without running the code they
  embed, then built into our networks by the one installed converter plugin (entry-point group
  ``lightning_stylegan.converters``, see ``converters.base``) whose ``handles`` accepts them. The
  built-in ``stylegan2`` converter reads stylegan2-ada-pytorch pickles (every configuration of its
  ``train.py``: ``auto``, ``stylegan2``, ``paper256/512/1024``, ``cifar``; any resolution;
  conditional or not); the ``lightning-stylegan-stylegan3`` package adds StyleGAN3's. Our
  parameter names are NVlabs', so the weights carry over one to one; the init kwargs become our
  options, and a kwarg we cannot represent is an error, never a silent approximation. fp16 layers
  become fp32 (``num_fp16_res`` only sets precision); ``conv_clamp`` is kept. A pickle that no
  installed converter reads is an error naming the package to install, when it is one we know of.
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

from .. import registry
from ..converters.base import ConversionError, Converted, NetworkConverter, child, generator_record
from ..network_files import EXPORT_FORMAT, NetworkFileError, export_generator, load_networks, write_checkpoint
from ..networks import Generator
from .restricted_pickle import UnsafePickleError, load_network_pickle


def _is_stylegan3(records: dict) -> bool:
    """NVlabs' persistence records a class by its bare name: StyleGAN3's synthesis network starts
    with a ``SynthesisInput`` (Fourier features) where StyleGAN2's has blocks ``b4, b8, ...``."""
    main = generator_record(records)
    return main is not None and (main.class_name.endswith("networks_stylegan3.Generator") or
                                 getattr(child(main, "synthesis", "input"), "class_name", None) == "SynthesisInput")


# Network pickles that a converter plugin outside this distribution reads, for the message when it is
# not installed: (what the file is, how to recognise it, the distribution, how to install it).
PLUGIN_FORMATS = [
    ("an NVlabs StyleGAN3 network pickle (training.networks_stylegan3.Generator, from the stylegan3 repository)",
     _is_stylegan3, "lightning-stylegan-stylegan3", "`pip install ./plugins/stylegan3` from a lightning-stylegan "
     "checkout"),
]


def _converters() -> tuple[list[tuple[str, NetworkConverter]], dict[str, str]]:
    """``([(name, converter)], {name: why it is broken})`` of the installed converter plugins."""
    found, broken = [], {}
    for name in registry.names("converter"):
        try:
            found.append((name, registry.load("converter", name)()))
        except Exception as error:  # one broken plugin must not stop the others
            broken[name] = " ".join(str(error).split())
    return found, broken


def pickle_networks(records: dict, src: str | Path = "the pickle") -> Converted:
    """Our networks of an NVlabs pickle's records (``load_network_pickle``), built by the one installed
    converter plugin that ``handles`` them; none or several is a ``ConversionError`` saying what to do."""
    main = generator_record(records)
    if main is None:
        raise ConversionError("The pickle has neither G_ema nor G")
    converters, failed = _converters()
    takers = []
    for name, converter in converters:
        try:
            if converter.handles(records):
                takers.append(name)
        except Exception as error:  # a converter's bug must not stop the others
            failed[name] = (f"the converter plugin {name!r} ({registry.spec('converter', name).owner}) failed to "
                            f"examine the pickle: {type(error).__name__}: {' '.join(str(error).split())}")
    if len(takers) == 1:
        return Converted(*dict(converters)[takers[0]].networks(records))
    if takers:
        owners = ", ".join(f"{name!r} ({registry.spec('converter', name).owner})" for name in takers)
        raise ConversionError(f"{src}: more than one installed converter plugin reads this pickle: {owners}; "
                              "uninstall all but one of their distributions")
    for what, recognise, distribution, install in PLUGIN_FORMATS:
        if recognise(records):
            own = [why for name, why in failed.items()
                   if _normalize(registry.index("converter")[name].distribution) == _normalize(distribution)]
            if own:
                raise ConversionError(f"{src} is {what}, which the converter plugin of the {distribution} package "
                                      f"reads, but it is broken: {' | '.join(own)}. Reinstall it with {install}")
            raise ConversionError(f"{src} is {what}, which the converter plugin of the {distribution} package "
                                  f"reads; it is not installed: install it with {install} (or `pip install "
                                  f"{distribution}`) and run convert again")
    installed = "; ".join(f"{row.spec.name} ({row.spec.owner}): {row.description}"
                          for row in registry.describe("converter") if row.error is None) or "none"
    problems = f" Broken converter plugins: {' | '.join(failed.values())}." if failed else ""
    raise ConversionError(f"{src}: no installed converter plugin reads this network pickle (its generator is a "
                          f"{main.class_name} with init kwargs {sorted(main.init_kwargs)}). Installed converters: "
                          f"{installed}.{problems} Install the plugin package that reads it (`lightning-stylegan "
                          "plugins --kind converter` lists what is installed).")


def _normalize(distribution: str) -> str:
    return distribution.lower().replace("_", "-").replace(".", "-")


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
        return pickle_networks(_nvlabs_records(src), src)
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
           "the NVlabs pickles of installed converter plugins (`lightning-stylegan plugins --kind converter`; "
           "StyleGAN3 with lightning-stylegan-stylegan3), rosinality stylegan2-pytorch checkpoints (.pt, from its "
           "train.py or convert_weight.py), and with --export a lightning-stylegan checkpoint (.ckpt) or exported "
           "generator (.pt).")
# torch.save's legacy (pre-zip, torch < 1.6) files begin with this magic number, pickled as a long:
# older rosinality checkpoints are such files.
_LEGACY_TORCH = b"\x8a\x0a" + 0x1950A86A20F9469CFC6C.to_bytes(10, "little")


def _nvlabs_records(src: Path) -> dict:
    """``load_network_pickle(src)``; a file that is no pickle at all is a ``NetworkFileError``."""
    try:
        try:
            return load_network_pickle(src)
        except UnsafePickleError as refusal:
            refusals = [str(refusal)]
            for name, converter in _converters()[0]:
                if converter.pickle_globals:  # a pickle of other globals, which this converter's reader knows?
                    try:
                        return load_network_pickle(src, converter.pickle_globals)
                    except UnsafePickleError as error:
                        refusals.append(f"with the globals of the converter plugin {name!r}: {error}")
            raise UnsafePickleError("; ".join(refusals)) from refusal
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
