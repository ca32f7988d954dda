"""Write network pickles in the published format of NVlabs' stylegan2-ada-pytorch, without its code.

A snapshot is ``pickle.dump(dict(training_set_kwargs=..., G=..., D=..., G_ema=..., augment_pipe=...))``;
each network pickles, through ``torch_utils.persistence``, as the call
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with
``meta = dict(type='class', version=4, module_src=<source of training/networks.py>,
class_name=<class>, state=<the module's __dict__>)``. The state holds ``_parameters`` and
``_buffers`` (OrderedDicts of tensors, pickled by torch), ``_modules`` (OrderedDict of child
records), ``_non_persistent_buffers_set``, ``training``, ``_init_args`` and ``_init_kwargs``
(``dnnlib.util.EasyDict``). Parameter names and shapes are NVlabs' (ours are the same), so the
records are built from one of our networks' module tree. ``module_src`` is whatever text the test
gives: a reader that ran it would be caught.
"""
from __future__ import annotations

import collections
import contextlib
import pickle
import re
import sys
import types
from pathlib import Path

from torch import nn

HARMLESS_SOURCE = "# training/networks.py of stylegan2-ada-pytorch would be here\n"

# NVlabs class of a module, by the last part of its path in G or D.
_CLASS_BY_NAME = [(r"^mapping$", "MappingNetwork"), (r"^synthesis$", "SynthesisNetwork"),
                  (r"^(fc\d+|embed|affine|fc|out)$", "FullyConnectedLayer"), (r"^torgb$", "ToRGBLayer"),
                  (r"^conv[01]$", "SynthesisLayer"), (r"^mbstd$", "MinibatchStdLayer"),
                  (r"^skip$", "Conv2dLayer")]


def _class_name(path: str, in_discriminator: bool) -> str:
    last = path.rsplit(".", 1)[-1]
    if in_discriminator:
        if last == "b4":
            return "DiscriminatorEpilogue"
        if re.fullmatch(r"b\d+", last):
            return "DiscriminatorBlock"
        if last in ("fromrgb", "conv0", "conv1", "skip", "conv"):
            return "Conv2dLayer"
    elif re.fullmatch(r"b\d+", last):
        return "SynthesisBlock"
    for pattern, name in _CLASS_BY_NAME:
        if re.fullmatch(pattern, last):
            return name
    raise KeyError(path)


@contextlib.contextmanager
def _nvlabs_modules():
    """Stand-ins named ``torch_utils.persistence`` and ``dnnlib.util`` while pickling, so the
    pickle names NVlabs' globals; removed afterwards."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # never called: only its name goes into the file
        raise RuntimeError("fixture stand-in")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util = types.ModuleType("dnnlib.util")
    easy_dict = type("EasyDict", (dict,), {"__module__": "dnnlib.util", "__qualname__": "EasyDict"})
    util.EasyDict = easy_dict
    names = {"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence,
             "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util}
    saved = {name: sys.modules.get(name) for name in names}
    sys.modules.update(names)
    try:
        yield _reconstruct_persistent_obj, easy_dict
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


class _Record:
    """Pickles exactly as NVlabs' persistent objects do."""

    def __init__(self, reconstruct, meta):
        self.reconstruct, self.meta = reconstruct, meta

    def __reduce__(self):
        return self.reconstruct, (self.meta,)


def _record(module: nn.Module, path: str, in_discriminator: bool, class_name: str, init_kwargs: dict,
            reconstruct, easy_dict, module_src: str, class_names=_class_name) -> _Record:
    children = collections.OrderedDict(
        (name, _record(child, f"{path}.{name}" if path else name, in_discriminator,
                       class_names(f"{path}.{name}" if path else name, in_discriminator), {},
                       reconstruct, easy_dict, module_src, class_names))
        for name, child in module.named_children())
    state = {
        "training": False,
        "_parameters": collections.OrderedDict(
            (name, nn.Parameter(value.detach().clone(), requires_grad=False))
            for name, value in module._parameters.items() if value is not None),
        # NVlabs registers some buffers as None (StyleGAN3's identity filters): they pickle as None.
        "_buffers": collections.OrderedDict((name, None if value is None else value.detach().clone())
                                            for name, value in module._buffers.items()),
        "_non_persistent_buffers_set": set(module._non_persistent_buffers_set),
        "_backward_hooks": collections.OrderedDict(), "_forward_hooks": collections.OrderedDict(),
        "_forward_pre_hooks": collections.OrderedDict(), "_state_dict_hooks": collections.OrderedDict(),
        "_load_state_dict_pre_hooks": collections.OrderedDict(),
        "_modules": children,
        "_init_args": (),
        "_init_kwargs": easy_dict(init_kwargs),
        # The rest of an NVlabs module's __dict__ (sizes as numpy arrays, rates as numpy scalars, ...),
        # when the module carries it as ``nvlabs_state``.
        **getattr(module, "nvlabs_state", {}),
    }
    meta = dict(type="class", version=4, module_src=module_src, class_name=class_name, state=state)
    return _Record(reconstruct, meta)


def _easy(value, easy_dict):
    return easy_dict({k: _easy(v, easy_dict) for k, v in value.items()}) if isinstance(value, dict) else value


def write_snapshot(path: Path, G: nn.Module, G_kwargs: dict, D: nn.Module | None = None, D_kwargs: dict | None = None,
                   G_ema: nn.Module | None = None, module_src: str = HARMLESS_SOURCE, class_names=_class_name) -> Path:
    """``network-snapshot`` pickle of our networks under NVlabs' names and init kwargs.

    ``class_names(path, in_discriminator)`` is the NVlabs class name of the module at ``path``
    (default: stylegan2-ada-pytorch's ``training/networks.py``)."""
    with _nvlabs_modules() as (reconstruct, easy_dict):
        def net(module, kwargs, name, in_d):
            return _record(module, "", in_d, name, _easy(kwargs, easy_dict), reconstruct, easy_dict, module_src,
                           class_names)

        snapshot = {"training_set_kwargs": dict(class_name="training.dataset.ImageFolderDataset", path="data.zip",
                                                use_labels=bool(G_kwargs.get("c_dim")), max_size=None, xflip=False,
                                                resolution=G_kwargs["img_resolution"]),
                    "G": net(G, G_kwargs, "Generator", False)}
        if D is not None:
            snapshot["D"] = net(D, D_kwargs, "Discriminator", True)
        snapshot["G_ema"] = net(G_ema if G_ema is not None else G, G_kwargs, "Generator", False)
        snapshot["augment_pipe"] = None
        with open(path, "wb") as file:
            pickle.dump(snapshot, file, protocol=pickle.DEFAULT_PROTOCOL)
    return path


def nvlabs_kwargs(module) -> tuple[dict, dict]:
    """NVlabs ``G_kwargs`` and ``D_kwargs`` (as its ``train.py`` sets them) for a ``StyleGAN2`` module."""
    hp = module.hparams
    g, d = hp["generator"], hp["discriminator"]
    arch = {"original": "orig", "skip": "skip", "residual": "resnet"}
    common = dict(c_dim=hp["label_dim"], img_resolution=hp["resolution"], img_channels=hp["channels"])
    G_kwargs = dict(z_dim=g["z_dim"], w_dim=g["w_dim"], mapping_kwargs=dict(num_layers=g["mapping_layers"]),
                    synthesis_kwargs=dict(channel_base=g["channel_base"], channel_max=g["channel_max"],
                                          num_fp16_res=4, conv_clamp=g["conv_clamp"],
                                          architecture=arch[g["topology"]]), **common)
    D_kwargs = dict(block_kwargs={}, mapping_kwargs=dict(num_layers=d["mapping_layers"]),
                    epilogue_kwargs=dict(mbstd_group_size=d["mbstd_group_size"]), channel_base=d["channel_base"],
                    channel_max=d["channel_max"], num_fp16_res=4, conv_clamp=d["conv_clamp"],
                    architecture=arch[d["topology"]], **common)
    return G_kwargs, D_kwargs
