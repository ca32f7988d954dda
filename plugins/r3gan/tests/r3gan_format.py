"""Write network pickles in the format of the official R3GAN training loop, without its code.

``training/training_loop.py`` writes ``pickle.dump(dict(G=G, D=D, G_ema=G_ema, training_set_kwargs=...,
cur_nimg=...))`` where G and D are plain ``torch.nn.Module`` trees (R3GAN's classes are not NVlabs'
persistent classes): a ``training.networks.Generator`` with ``z_dim``, ``c_dim``, ``img_resolution``
and the child ``Model``, an ``R3GAN.Networks.Generator`` (D likewise, with ``Model`` only). Pickle
writes each module as its class, by import path, then its ``__dict__`` (``_parameters``,
``_buffers``, ``_modules``, hooks, ``training`` and the attributes: a stage's ``DataType``, a
``Conv2d``'s sizes, ...). Here the modules are built from our networks (whose parameter names are the
official ones) as instances of stand-in ``nn.Module`` classes that carry the official import paths,
with the official attributes, so the file holds the same stream; ``torch.nn``'s own layers are the
real classes. With ``legacy`` the modules are named as before the official rebranding:
``training.networks_baseline`` and ``BaselineGAN.*``.
"""
from __future__ import annotations

import contextlib
import copy
import pickle
import sys
import types
from pathlib import Path

import torch
from torch import nn

from lightning_stylegan_r3gan.discriminator import R3GANDiscriminator
from lightning_stylegan_r3gan.generator import R3GANGenerator
from lightning_stylegan_r3gan.layers import (BiasedActivation, Convolution, DiscriminativeBasis, DownsampleLayer,
                                             GenerativeBasis, Resampler, ResidualBlock, Stage, UpsampleLayer)

PACKAGES = {False: ("training.networks", "R3GAN"), True: ("training.networks_baseline", "BaselineGAN")}
# (module below the R3GAN package, class) of each of our classes; a stage and a resampler depend on their network.
SAME_NAME = (Convolution, ResidualBlock, UpsampleLayer, DownsampleLayer, GenerativeBasis, DiscriminativeBasis)
OFFICIAL = {R3GANGenerator: ("Networks", "Generator"), R3GANDiscriminator: ("Networks", "Discriminator"),
            BiasedActivation: ("FusedOperators", "BiasedActivationCUDA"),
            **{cls: ("Networks", cls.__name__) for cls in SAME_NAME}}


def _official_name(module: nn.Module, in_discriminator: bool) -> tuple[str, str]:
    if isinstance(module, Stage):
        return "Networks", "DiscriminatorStage" if in_discriminator else "GeneratorStage"
    if isinstance(module, Resampler):
        return "Resamplers", "InterpolativeUpsamplerCUDA" if module.up else "InterpolativeDownsamplerCUDA"
    return OFFICIAL[type(module)]


@contextlib.contextmanager
def _official_classes(legacy: bool):
    """Stand-in modules and classes under the official import paths while pickling; removed afterwards.
    Yields ``make(module_path, class_name)``, an empty ``nn.Module`` of that class."""
    wrappers, package = PACKAGES[legacy]
    modules = {name: types.ModuleType(name) for name in
               ("training", wrappers, package, *(f"{package}.{sub}" for sub in ("Networks", "FusedOperators",
                                                                                   "Resamplers")))}

    def make(path: str, name: str) -> nn.Module:
        module = modules[path]
        if not hasattr(module, name):
            setattr(module, name, type(name, (nn.Module,), {"__module__": path, "__qualname__": name}))
        return getattr(module, name)()

    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield make, wrappers, package
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _official(module: nn.Module, make, package: str, in_discriminator: bool) -> nn.Module:
    """The official module tree of one of ours: the same tensors, children and official attributes."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        return copy.deepcopy(module)
    if isinstance(module, nn.ModuleList):
        return nn.ModuleList([_official(child, make, package, in_discriminator) for child in module])
    sub, name = _official_name(module, in_discriminator)
    twin = make(f"{package}.{sub}", name)
    for key, value in module._parameters.items():
        twin.register_parameter(key, nn.Parameter(value.detach().clone()))
    for key, value in module._buffers.items():
        twin.register_buffer(key, value.clone(), persistent=key not in module._non_persistent_buffers_set)
    for key, child in module.named_children():
        twin.add_module(key, _official(child, make, package, in_discriminator))
    if isinstance(module, Stage):
        twin.DataType = torch.bfloat16 if module.reduced_precision else torch.float32
    return twin


def official_networks(G: R3GANGenerator, D: R3GANDiscriminator | None, G_ema: R3GANGenerator, make, wrappers: str,
                      package: str) -> dict:
    """G, D and G_ema as the official ``training.networks`` wrappers, eval mode, no gradients."""
    def generator(net):
        wrapper = make(wrappers, "Generator")
        wrapper.Model = _official(net, make, package, False)
        wrapper.z_dim, wrapper.c_dim, wrapper.img_resolution = net.z_dim, net.c_dim, net.img_resolution
        return wrapper.eval().requires_grad_(False)

    networks = {"G": generator(G), "G_ema": generator(G_ema)}
    if D is not None:
        networks["D"] = make(wrappers, "Discriminator")
        networks["D"].Model = _official(D, make, package, True)
        networks["D"].eval().requires_grad_(False)
    return networks


def write_snapshot(path: Path, G: R3GANGenerator, D: R3GANDiscriminator | None, G_ema: R3GANGenerator,
                   legacy: bool = False, extra=None) -> Path:
    """A ``network-snapshot`` pickle of our networks as the official training loop writes it;
    ``extra(networks)`` may change the official modules before they are pickled."""
    with _official_classes(legacy) as (make, wrappers, package):
        networks = official_networks(G, D, G_ema, make, wrappers, package)
        if extra is not None:
            extra(networks)
        snapshot = {"G": networks["G"], **({"D": networks["D"]} if D is not None else {}), "G_ema": networks["G_ema"],
                    "training_set_kwargs": dict(class_name="training.dataset.ImageFolderDataset", path="data.zip",
                                                use_labels=bool(G.c_dim), max_size=100, xflip=False,
                                                resolution=G.img_resolution, random_seed=0),
                    "cur_nimg": 4000}
        with open(path, "wb") as file:
            pickle.dump(snapshot, file)
    return path
