"""The interface of a converter plugin: a reader of one kind of NVlabs network pickle.

``lightning-stylegan convert`` reads a network pickle with ``tools.restricted_pickle``, which runs
nothing from the file: every persistent network of NVlabs' ``torch_utils.persistence`` becomes a
``PersistentRecord`` (its ``class_name``, ``init_kwargs``, tensors, child records and
``state_dict()``). ``convert`` then asks every installed converter plugin (entry-point group
``lightning_stylegan.converters``) whether it ``handles`` those records; the one that does builds our
networks from them with ``networks``. The built-in ``stylegan2`` converter reads stylegan2-ada-pytorch
pickles; a plugin package adds other networks (``lightning-stylegan-stylegan3`` reads StyleGAN3's).

A converter maps the pickle's init kwargs to our options and copies the weights one to one: an
option that our networks cannot represent exactly is a ``ConversionError`` naming it, never a silent
approximation.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from ..network_files import NetworkFileError, load_state
from ..networks import Generator
from ..tools.restricted_pickle import PersistentRecord
from ..training.options import DiscriminatorOptions, GeneratorOptions
from ..training.run_networks import initial_networks, network_hparams


class ConversionError(NetworkFileError):
    """The source holds something our networks cannot represent exactly."""


class Converted(NamedTuple):
    """What a converter returns: the networks' hyper-parameters (``training.run_networks.network_hparams``:
    the ``StyleGAN2`` module's arguments that decide its networks) and the three networks."""

    hparams: dict
    G: Generator
    D: torch.nn.Module | None
    G_ema: Generator


class NetworkConverter:
    """Base class of converter plugins. ``convert`` builds one with ``cls()`` and calls
    ``handles(records)``; when exactly one installed converter answers True it calls its
    ``networks(records)``. ``records`` is the pickle's top-level dict: ``"G"``, ``"D"``, ``"G_ema"``
    as ``PersistentRecord`` trees (those present), other entries (``training_set_kwargs``, ...) as
    plain data."""

    description = ""
    # Globals beyond NVlabs' (``restricted_pickle.ALLOWED``) that the pickles this converter reads name,
    # as {(module, name): what the restricted unpickler gives for it}: data, or a class whose instances
    # are data (a ``PersistentRecord`` subclass for a plainly pickled torch.nn.Module), never the
    # pickle's own code. ``convert`` reads a pickle that ALLOWED refuses again with each converter's.
    pickle_globals: dict = {}

    def handles(self, records: dict) -> bool:
        """Whether these records are the networks this converter reads (cheap: no tensors built)."""
        raise NotImplementedError

    def networks(self, records: dict) -> Converted:
        """Our networks with the pickle's weights; ``ConversionError`` for what cannot be represented."""
        raise NotImplementedError


def network_record(records: dict, name: str) -> PersistentRecord | None:
    """``records[name]`` when it is a network record (``"G"``, ``"D"`` or ``"G_ema"``), else None."""
    record = records.get(name)
    return record if isinstance(record, PersistentRecord) else None


def generator_record(records: dict) -> PersistentRecord | None:
    """The generator that images come from: G_ema, or G when the pickle has no G_ema."""
    return network_record(records, "G_ema") or network_record(records, "G")


def child(record: PersistentRecord | None, *path: str) -> PersistentRecord | None:
    """The record at ``path`` below ``record`` (``child(G, "synthesis", "input")``), or None."""
    for name in path:
        if record is None:
            return None
        record = record.modules.get(name)
    return record


def build_networks(records: dict, resolution: int, channels: int, label_dim: int, generator: GeneratorOptions,
                   discriminator: DiscriminatorOptions | None = None) -> Converted:
    """Our G, D and G_ema built from these options, with the records' weights loaded one to one.

    G_ema gets the generator record's weights (G_ema, else G), G those of G (else G_ema's), D those of
    D; D is None when the pickle has no D (``discriminator`` then only fills the hyper-parameters,
    default ``DiscriminatorOptions()``). Weights whose names or shapes do not fit the built networks
    are a ``NetworkFileError`` naming them."""
    main = generator_record(records)
    if main is None:
        raise ConversionError("The pickle has neither G_ema nor G")
    D_record = network_record(records, "D")
    hparams = network_hparams(resolution, channels, label_dim, generator, discriminator or DiscriminatorOptions())
    G, D, G_ema = initial_networks(hparams)
    load_state(G_ema, main.state_dict(), "NVlabs G_ema")
    load_state(G, (network_record(records, "G") or main).state_dict(), "NVlabs G")
    if D_record is not None:
        load_state(D, D_record.state_dict(), "NVlabs D")
    return Converted(hparams, G, D if D_record is not None else None, G_ema)
