"""Read NVlabs stylegan2-ada-pytorch network pickles without executing anything from them.

A ``network-snapshot-*.pkl`` is ``pickle.dump(dict(G=..., D=..., G_ema=..., augment_pipe=...,
training_set_kwargs=...))``. Each network is a "persistent" object of NVlabs' ``torch_utils.persistence``:
it pickles as a call ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` where ``meta``
holds ``module_src`` (the Python source of the module that defined the class, which NVlabs'
loader ``exec``s), ``class_name`` and ``state`` (the module's ``__dict__``: ``_parameters``,
``_buffers``, ``_modules``, ``_init_args``, ``_init_kwargs``, ...). Tensors pickle as
``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` over storages serialized with
``torch.save`` and revived by ``torch.storage._load_from_bytes``.

``RestrictedUnpickler`` resolves only the globals in ``ALLOWED`` and maps them to functions that
build plain data: a persistent object becomes a ``PersistentRecord`` (its ``module_src`` is kept as
a string and never run), embedded storages are read with ``torch.load(weights_only=True)``, NVlabs'
``EasyDict`` becomes a ``dict``. Any other global (``os.system``, ``builtins.exec``, a class of the
pickle's own) stops loading with ``UnsafePickleError`` before it is called.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle refers to a global that is not plain network data."""


@dataclass
class PersistentRecord:
    """A persistent NVlabs object as data: class name, init arguments, tensors and child records."""

    class_name: str
    init_args: tuple
    init_kwargs: dict
    parameters: dict[str, torch.Tensor]
    buffers: dict[str, torch.Tensor]
    modules: dict[str, "PersistentRecord | None"]
    attributes: dict = field(repr=False)

    def state_dict(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Parameters and persistent buffers of the whole tree, keyed like ``nn.Module.state_dict``."""
        skipped = self.attributes.get("_non_persistent_buffers_set") or set()
        state = {prefix + name: value for name, value in self.parameters.items() if value is not None}
        state.update({prefix + name: value for name, value in self.buffers.items()
                      if value is not None and name not in skipped})
        for name, child in self.modules.items():
            if child is not None:
                state.update(child.state_dict(f"{prefix}{name}."))
        return state


class PlainDict(dict):
    """Stands in for ``dnnlib.util.EasyDict`` (a dict with attribute access) while unpickling."""


def _persistent_record(meta: dict) -> PersistentRecord:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise UnsafePickleError(f"Unexpected persistent record {type(meta).__name__}: expected NVlabs' "
                                "dict(type='class', module_src=..., class_name=..., state=...)")
    state = meta["state"]
    modules = dict(state.get("_modules") or {})
    for name, child in modules.items():
        if child is not None and not isinstance(child, PersistentRecord):
            raise UnsafePickleError(f"Submodule {name!r} of {meta.get('class_name')} is not a persistent "
                                    f"record but {type(child).__name__}")
    return PersistentRecord(class_name=str(meta.get("class_name")), init_args=tuple(state.get("_init_args", ())),
                            init_kwargs=_plain(state.get("_init_kwargs", {})),
                            parameters=dict(state.get("_parameters") or {}),
                            buffers=dict(state.get("_buffers") or {}), modules=modules, attributes=state)


def _plain(value):
    """EasyDicts (nested) as plain dicts."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    return value


def _storage_from_bytes(data: bytes):
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _rebuild_parameter(data, requires_grad, backward_hooks, *state):
    return data  # a parameter's tensor is all a converter needs


def _numpy_scalar(dtype: np.dtype, data: bytes | None = None):
    """A numpy scalar from its dtype and raw bytes (what ``numpy.core.multiarray.scalar`` does)."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError(f"Refusing a numpy scalar of dtype {dtype!r}")
    return np.frombuffer(data, dtype=dtype)[0] if data is not None else dtype.type()


def _numpy_array(cls, shape, dtype_code):
    """The empty array that numpy's ``_reconstruct`` makes before its state is set (plain dtypes only)."""
    if cls is not np.ndarray:
        raise UnsafePickleError(f"Refusing a numpy array of class {cls!r}")
    return np.ndarray.__new__(np.ndarray, shape, np.dtype(dtype_code))


_NUMPY = {"scalar": _numpy_scalar, "_reconstruct": _numpy_array}

# What a pickled numpy array or scalar of a plain dtype names (numpy 1.x writes numpy.core, 2.x numpy._core).
NUMPY_GLOBALS = {
    **{(f"numpy.{core}.multiarray", name): function for core in ("core", "_core") for name, function in _NUMPY.items()},
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
}

ALLOWED = {
    **NUMPY_GLOBALS,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_record,
    ("dnnlib.util", "EasyDict"): PlainDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the globals of ``allowed`` (``ALLOWED``, see the module
    docstring; a subclass may allow fewer). ``options`` go to ``pickle.Unpickler`` (e.g. ``encoding``)."""

    allowed = ALLOWED

    def __init__(self, file, source: str = "<pickle>", **options):
        super().__init__(file, **options)
        self.source = source

    def find_class(self, module: str, name: str):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(self.refusal(module, name)) from None

    def refusal(self, module: str, name: str) -> str:
        """The error message for a global that is not allowed."""
        return (f"{self.source} refers to {module}.{name}, which is not part of a StyleGAN network pickle; "
                "refusing to load it (nothing from the file was run). If this is a genuine NVlabs "
                "stylegan2-ada-pytorch pickle, please report the name.")

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.source} uses persistent ids ({pid!r}): it is a torch.save file, not "
                                "an NVlabs network pickle; `convert` reads it with torch.load(weights_only=True)")


def load_network_pickle(path: str | os.PathLike, extra_globals: dict | None = None) -> dict:
    """The top-level dict of an NVlabs network pickle, networks as ``PersistentRecord`` trees;
    ``extra_globals`` ({(module, name): object}, a converter's ``pickle_globals``) are allowed too."""
    path = Path(path)
    with open(path, "rb") as file:
        unpickler = RestrictedUnpickler(file, str(path))
        if extra_globals:
            unpickler.allowed = {**ALLOWED, **extra_globals}
        data = unpickler.load()
    if not isinstance(data, dict) or not any(isinstance(data.get(k), PersistentRecord) for k in ("G", "G_ema", "D")):
        raise UnsafePickleError(f"{path} holds {type(data).__name__}, not NVlabs' dict with G, D and G_ema")
    return _plain_top(data)


def _plain_top(data: dict) -> dict:
    return {key: (value if isinstance(value, PersistentRecord) else _plain(value)) for key, value in data.items()}
