"""The converter plugin ``r3gan``: the official R3GAN network pickles for ``lightning-stylegan convert``.

    lightning-stylegan convert --src network-snapshot-000100.pkl --out r3gan.ckpt
    lightning-stylegan generate --ckpt r3gan.ckpt --outdir out --seeds 0-3 [--class 2]

The official ``training/training_loop.py`` writes ``pickle.dump(dict(G=..., D=..., G_ema=...,
training_set_kwargs=..., cur_nimg=..., G_opt_state=..., D_opt_state=...))``. Unlike NVlabs'
networks, R3GAN's are not ``torch_utils.persistence`` classes: each network is a plainly pickled
``torch.nn.Module`` tree, its classes named by their import paths (``training.networks.Generator``
holding ``Model``, an ``R3GAN.Networks.Generator`` of ``GeneratorStage``s, ``torch.nn`` layers, ...),
each object rebuilt by pickle as an empty instance given the module's ``__dict__``. No constructor
keyword arguments are stored: the G wrapper keeps ``z_dim``, ``c_dim`` and ``img_resolution``, the
stages their ``DataType``; everything else is in the module tree and the tensor shapes.

``PICKLE_GLOBALS`` (the converter's ``pickle_globals``) lists every global such a pickle names, for
the project's restricted unpickler (core's ``RestrictedUnpickler`` with ``ALLOWED`` and these; the
README says what core's ``convert`` needs to use them): each class becomes a ``ModuleRecord`` (a
``PersistentRecord`` built from the module's ``__dict__``; nothing of R3GAN's code is imported or
run), ``torch.float32`` / ``bfloat16`` / ``float16`` / ``float64`` the dtypes (a stage's
``DataType``). Any other global (``os.system``, ...) is refused before it is called. Pickles written
before the official code's rebranding name ``training.networks_baseline`` and ``BaselineGAN.*`` (the
same classes; the official ``legacy.py`` maps them): both names give the same records, named by the
current names.

``generator_options`` and ``discriminator_options`` read the options back from the records: per
stage, the width (the basis, the extraction layer or the 1x1 transition convolutions), the blocks,
the cardinality (the grouped convolution's weight shape), the ``DataType`` (bfloat16: in
``FP16Stages``, as non-negative indices); for the network, ``ExpansionFactor`` and ``KernelSize``
(its first block), ``ConditionEmbeddingDimension`` (the label embedding) and ``ResamplingFilter``
(recovered from the resamplers' ``Kernel``). The weights then load one to one: our
``G.synthesis.<k>`` is the official G's ``Model.<k>``, our ``D.<k>`` D's ``Model.<k>``, and a tensor
that does not fit the options read (another width, cardinality, expansion or kernel size in a later
block) is an error naming it. Anything our networks cannot compute exactly is a ``ConversionError``.
"""
from __future__ import annotations

import torch

from lightning_stylegan.converters.base import (ConversionError, Converted, NetworkConverter, build_networks,
                                                generator_record, network_record)
from lightning_stylegan.errors import ConfigError
from lightning_stylegan.tools.restricted_pickle import PersistentRecord, UnsafePickleError
from lightning_stylegan.training.options import DiscriminatorOptions, GeneratorOptions

from .layers import interpolation_kernel

NETWORKS, FUSED, RESAMPLERS = "R3GAN.Networks", "R3GAN.FusedOperators", "R3GAN.Resamplers"
WRAPPERS = "training.networks"
CONV, LINEAR = "torch.nn.modules.conv.Conv2d", "torch.nn.modules.linear.Linear"
LIST = "torch.nn.modules.container.ModuleList"
# The classes an official pickle names, by module (the aliases BiasedActivation, InterpolativeUpsampler
# and InterpolativeDownsampler of the official code are its CUDA classes).
CLASSES = {
    WRAPPERS: ("Generator", "Discriminator"),
    NETWORKS: ("Generator", "Discriminator", "GeneratorStage", "DiscriminatorStage", "GenerativeBasis",
               "DiscriminativeBasis", "UpsampleLayer", "DownsampleLayer", "ResidualBlock", "Convolution"),
    FUSED: ("BiasedActivationCUDA",),
    RESAMPLERS: ("InterpolativeUpsamplerCUDA", "InterpolativeDownsamplerCUDA"),
    **{name.rsplit(".", 1)[0]: (name.rsplit(".", 1)[1],) for name in (CONV, LINEAR, LIST)},
}
# Module names of the code before its rebranding (official legacy.py's _LegacyUnpickler): the same classes.
LEGACY_MODULES = {"training.networks_baseline": WRAPPERS, "BaselineGAN.Networks": NETWORKS,
                  "BaselineGAN.FusedOperators": FUSED, "BaselineGAN.Resamplers": RESAMPLERS}
# GeneratorStage / DiscriminatorStage.DataType: float32, or bfloat16 for FP16Stages (others are named in errors).
DTYPES = {name: getattr(torch, name) for name in ("float32", "bfloat16", "float16", "float64")}


class ModuleRecord(PersistentRecord):
    """A plainly pickled ``torch.nn.Module`` as data. Pickle makes an empty one (its class is this
    record's subclass for the module's class, ``pickled_class``) and hands it the module's
    ``__dict__``, which ``__setstate__`` checks and keeps: tensors, child records, attributes."""

    pickled_class = ""

    def __setstate__(self, state) -> None:
        where = self.pickled_class
        if not isinstance(state, dict) or not all(isinstance(state.get(key), dict)
                                                  for key in ("_parameters", "_buffers", "_modules")):
            raise UnsafePickleError(f"{where}: expected the __dict__ of a torch.nn.Module, got {type(state).__name__}")
        for kind in ("_parameters", "_buffers"):
            for name, value in state[kind].items():
                if value is not None and not isinstance(value, torch.Tensor):
                    raise UnsafePickleError(f"{where}.{name} is a {type(value).__name__}, not a tensor")
        for name, value in state["_modules"].items():
            if value is not None and not isinstance(value, PersistentRecord):
                raise UnsafePickleError(f"{where}.{name} is a {type(value).__name__}, not a network module")
        PersistentRecord.__init__(self, class_name=where, init_args=(), init_kwargs={},
                                  parameters=dict(state["_parameters"]), buffers=dict(state["_buffers"]),
                                  modules=dict(state["_modules"]), attributes=state)


def _record_class(module: str, name: str) -> type:
    return type(name, (ModuleRecord,), {"pickled_class": f"{module}.{name}", "__module__": __name__})


_RECORDS = {(module, name): _record_class(module, name) for module, names in CLASSES.items() for name in names}
PICKLE_GLOBALS = {
    **_RECORDS,
    **{(legacy, name): _RECORDS[(module, name)] for legacy, module in LEGACY_MODULES.items()
       for name in CLASSES[module]},
    **{("torch", name): dtype for name, dtype in DTYPES.items()},
}


def _kind(record: PersistentRecord, class_name: str, where: str) -> PersistentRecord:
    """``record``, which must be a ``class_name``."""
    if record.class_name != class_name:
        raise ConversionError(f"{where} is a {record.class_name}, expected a {class_name}")
    return record


def _child(record: PersistentRecord, path: str, class_name: str, where: str) -> PersistentRecord:
    """The record at the dotted ``path`` below ``record``, which must be a ``class_name``."""
    found = record
    for name in path.split("."):
        found = found.modules.get(name)
        if found is None:
            raise ConversionError(f"{where}: the pickle has no {path} (expected a {class_name})")
    return _kind(found, class_name, f"{where}: {path}")


def _items(record: PersistentRecord, path: str, where: str) -> list[PersistentRecord]:
    """The modules of the ``ModuleList`` at ``path`` below ``record``, in order; at least one."""
    items = _child(record, path, LIST, where).modules
    if not items or list(items) != [str(i) for i in range(len(items))] or None in items.values():
        raise ConversionError(f"{where}: {path} is a ModuleList of the entries {list(items)}, expected modules "
                              "0, 1, ...")
    return list(items.values())


def _weight(record: PersistentRecord, path: str, class_name: str, where: str) -> torch.Tensor:
    weight = _child(record, path, class_name, where).parameters.get("weight")
    if weight is None:
        raise ConversionError(f"{where}: {path} has no weight")
    return weight


def _width(transition: PersistentRecord, width: int, where: str) -> int:
    """The width after an up- or down-sampling transition: its 1x1 convolution's, where it has one."""
    if transition.modules.get("LinearLayer") is None:
        return width
    return _weight(transition, "LinearLayer.Layer", CONV, where).shape[0]


def _integer(record: PersistentRecord, name: str, where: str) -> int:
    value = record.attributes.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConversionError(f"{where}: {name}={value!r} is not an integer")
    return value


def _resampling_filter(transition: PersistentRecord, resampler: str, where: str) -> list:
    """The ``ResamplingFilter`` taps of a transition's resampler ``Kernel``: the 2-D kernel's row sums are
    the taps convolved with [1, 1] (normalized), which a running difference undoes; the taps are
    scaled to a first tap of 1 (integers where they are), then must rebuild the kernel."""
    kernel = _child(transition, "Resampler", f"{RESAMPLERS}.{resampler}", where).buffers.get("Kernel")
    if kernel is None or kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] < 2:
        raise ConversionError(f"{where}: the resampler's Kernel is not a square 2-D filter")
    rows = kernel.double().sum(1)
    taps = [rows[0].item()]
    for value in rows[1:-1].tolist():
        taps.append(value - taps[-1])
    if taps[0] > 0:
        taps = [t / taps[0] for t in taps]
        taps = [round(t) if abs(t - round(t)) < 1e-5 else t for t in taps]
    if taps[0] <= 0 or not torch.allclose(interpolation_kernel(taps).double(), kernel.double(), rtol=0, atol=1e-6):
        raise ConversionError(f"{where}: the resampler's Kernel is not the outer product of a filter convolved with "
                              "[1, 1] (official CreateLowpassKernel): no ResamplingFilter builds it")
    return taps


def _stage(stage: PersistentRecord, blocks: list[PersistentRecord], width: int, where: str) -> dict:
    """A stage's values: its width, blocks and ``DataType`` (bfloat16: in ``FP16Stages``), and from
    its first residual block's weights its cardinality, expansion and kernel size."""
    dtype = stage.attributes.get("DataType")
    if dtype not in (torch.float32, torch.bfloat16):
        raise ConversionError(f"{where}: DataType {dtype!r} is neither torch.float32 nor torch.bfloat16 "
                              "(FP16Stages); the r3gan plugin computes other stages in the input's dtype")
    if not blocks:
        raise ConversionError(f"{where}: a stage without residual blocks (BlocksPerStage 0), which the r3gan "
                              "plugin does not build")
    for j, block in enumerate(blocks):
        _kind(block, f"{NETWORKS}.ResidualBlock", f"{where}: its block {j}")
    first = _weight(blocks[0], "LinearLayer1.Layer", CONV, f"{where} block 0")
    grouped = _weight(blocks[0], "LinearLayer2.Layer", CONV, f"{where} block 0")
    wide = first.shape[0]
    if first.shape[1] != width or wide % width or grouped.ndim != 4 or wide % grouped.shape[1]:
        raise ConversionError(f"{where} block 0: weights of shapes {list(first.shape)} and {list(grouped.shape)} "
                              f"are no inverted bottleneck of a {width}-channel stage")
    return {"width": width, "blocks": len(blocks), "fp16": dtype == torch.bfloat16,
            "cardinality": wide // grouped.shape[1], "expansion": wide // width, "kernel": grouped.shape[-1]}


def _common(values: list, name: str):
    """The one value a network-wide option has (``ExpansionFactor``, ``KernelSize``, ``ResamplingFilter``)."""
    if any(value != values[0] for value in values):
        raise ConversionError(f"{name} differs between the stages of a network ({values}); the official "
                              "networks have one")
    return values[0]


def _embedding(model: PersistentRecord, where: str) -> tuple[int, int]:
    """(c_dim, ConditionEmbeddingDimension) of a network's label embedding; (0, 0) without labels."""
    if model.modules.get("EmbeddingLayer") is None:
        return 0, 0
    weight = _weight(model, "EmbeddingLayer", LINEAR, where)
    if weight.shape[0] == 0:
        raise ConversionError(f"{where}: a conditional network with ConditionEmbeddingDimension 0 ignores its labels; "
                              "the r3gan plugin needs a positive ConditionEmbeddingDimension")
    return weight.shape[1], weight.shape[0]


def _options(stages: list[dict], filters: list, embedding: int) -> dict:
    """``synthesis_options`` / ``topology_options`` of the per-stage values read."""
    return {"WidthPerStage": [s["width"] for s in stages], "CardinalityPerStage": [s["cardinality"] for s in stages],
            "BlocksPerStage": [s["blocks"] for s in stages],
            "ExpansionFactor": _common([s["expansion"] for s in stages], "ExpansionFactor"),
            "ConditionEmbeddingDimension": embedding or None,
            "KernelSize": _common([s["kernel"] for s in stages], "KernelSize"),
            "ResamplingFilter": _common(filters or [[1, 2, 1]], "ResamplingFilter"),
            "FP16Stages": [i for i, s in enumerate(stages) if s["fp16"]]}


def generator_options(record: PersistentRecord, where: str = "G") -> tuple[dict, GeneratorOptions]:
    """(``z_dim``, ``c_dim``, ``img_resolution``, ``img_channels``; our options) of an official G
    (a ``training.networks.Generator`` record)."""
    model = _child(record, "Model", f"{NETWORKS}.Generator", where)
    stages, filters = [], []
    for i, stage in enumerate(_items(model, "MainLayers", where)):
        at = f"{where} Model.MainLayers.{i}"
        transition, *blocks = _items(_kind(stage, f"{NETWORKS}.GeneratorStage", at), "Layers", at)
        if i == 0:
            basis = _kind(transition, f"{NETWORKS}.GenerativeBasis", f"{at}: its layer 0").parameters.get("Basis")
            if basis is None:
                raise ConversionError(f"{at}: its GenerativeBasis has no Basis")
            width = basis.shape[0]
        else:
            _kind(transition, f"{NETWORKS}.UpsampleLayer", f"{at}: its layer 0")
            filters.append(_resampling_filter(transition, "InterpolativeUpsamplerCUDA", at))
            width = _width(transition, stages[-1]["width"], at)
        stages.append(_stage(stage, blocks, width, at))
    c_dim, embedding = _embedding(model, where)
    channels = _weight(model, "AggregationLayer.Layer", CONV, where).shape[0]
    top = {"z_dim": _integer(record, "z_dim", where), "c_dim": _integer(record, "c_dim", where),
           "img_resolution": _integer(record, "img_resolution", where), "img_channels": channels}
    if top["c_dim"] != c_dim:
        raise ConversionError(f"{where}: c_dim={top['c_dim']} but its label embedding takes {c_dim} labels")
    options = _options(stages, filters, embedding)
    return top, GeneratorOptions(topology="r3gan", z_dim=top["z_dim"], synthesis_options=options)


def discriminator_options(record: PersistentRecord, where: str = "D") -> DiscriminatorOptions:
    """Our options of an official D (a ``training.networks.Discriminator`` record)."""
    model = _child(record, "Model", f"{NETWORKS}.Discriminator", where)
    width = _weight(model, "ExtractionLayer.Layer", CONV, where).shape[0]
    items = _items(model, "MainLayers", where)
    stages, filters = [], []
    for i, stage in enumerate(items):
        at = f"{where} Model.MainLayers.{i}"
        *blocks, transition = _items(_kind(stage, f"{NETWORKS}.DiscriminatorStage", at), "Layers", at)
        stages.append(_stage(stage, blocks, width, at))
        if i + 1 == len(items):
            _kind(transition, f"{NETWORKS}.DiscriminativeBasis", f"{at}: its last layer")
        else:
            _kind(transition, f"{NETWORKS}.DownsampleLayer", f"{at}: its last layer")
            filters.append(_resampling_filter(transition, "InterpolativeDownsamplerCUDA", at))
            width = _width(transition, width, at)
    options = _options(stages, filters, _embedding(model, where)[1])
    return DiscriminatorOptions(topology="r3gan", topology_options=options)


def mirrored_discriminator(generator: GeneratorOptions) -> DiscriminatorOptions:
    """The D the official ``train.py`` pairs with this G (its lists reversed, the label embedding as
    wide as the 4x4 stage), for the hyper-parameters of a pickle without D."""
    g = generator.synthesis_options
    count = len(g["WidthPerStage"])
    return DiscriminatorOptions(topology="r3gan", topology_options=g | {
        "WidthPerStage": g["WidthPerStage"][::-1], "CardinalityPerStage": g["CardinalityPerStage"][::-1],
        "BlocksPerStage": g["BlocksPerStage"][::-1], "FP16Stages": sorted(count - 1 - i for i in g["FP16Stages"]),
        "ConditionEmbeddingDimension": g["WidthPerStage"][0] if g["ConditionEmbeddingDimension"] else None})


def _as_synthesis(record: PersistentRecord) -> PersistentRecord:
    """An official G whose ``Model`` is named ``synthesis``: the state-dict keys of core's ``Generator``."""
    return PersistentRecord(class_name=record.class_name, init_args=(), init_kwargs={}, parameters={}, buffers={},
                            modules={"synthesis": record.modules["Model"]}, attributes={})


def is_r3gan(records: dict) -> bool:
    """An official R3GAN generator: a ``training.networks.Generator`` wrapping an ``R3GAN.Networks.Generator``."""
    G = generator_record(records)
    return (G is not None and G.class_name == f"{WRAPPERS}.Generator"
            and getattr(G.modules.get("Model"), "class_name", None) == f"{NETWORKS}.Generator")


class R3GANConverter(NetworkConverter):
    """Official R3GAN network pickles (brownvc/R3GAN train.py; G, D and G_ema; BaselineGAN-era names too)."""

    api_version = 1
    description = "official R3GAN network pickles (train.py snapshots: G, D, G_ema; BaselineGAN-era names too)"
    pickle_globals = PICKLE_GLOBALS

    def handles(self, records: dict) -> bool:
        return is_r3gan(records)

    def networks(self, records: dict) -> Converted:
        top, generator = generator_options(generator_record(records), "G_ema" if "G_ema" in records else "G")
        G, D = network_record(records, "G"), network_record(records, "D")
        if G is not None and generator_options(G, "G") != (top, generator):
            raise ConversionError("G and G_ema of the pickle are networks of different options")
        discriminator = discriminator_options(D) if D is not None else mirrored_discriminator(generator)
        rooted = {"G_ema": _as_synthesis(generator_record(records))}
        rooted |= {"G": _as_synthesis(G)} if G is not None else {}
        rooted |= {"D": D.modules["Model"]} if D is not None else {}
        try:
            return build_networks(rooted, top["img_resolution"], top["img_channels"], top["c_dim"], generator,
                                  discriminator)
        except ConfigError as error:
            raise ConversionError(f"the pickle's networks are not R3GAN networks the r3gan plugin builds: {error}") \
                from error
