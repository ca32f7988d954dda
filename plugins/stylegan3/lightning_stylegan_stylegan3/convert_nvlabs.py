"""The converter plugin ``stylegan3``: NVlabs stylegan3 network pickles for ``lightning-stylegan convert``.

    lightning-stylegan convert --src stylegan3-t-ffhqu-256x256.pkl --out ffhqu-t.ckpt
    lightning-stylegan generate --ckpt ffhqu-t.ckpt --outdir out --seeds 0-3 --translate 0.1,0 --rotate 10

A snapshot of NVlabs' stylegan3 ``train.py --cfg stylegan3-t`` or ``--cfg stylegan3-r`` holds
``G``/``G_ema``, a ``training.networks_stylegan3.Generator(z_dim, c_dim, w_dim, img_resolution,
img_channels, mapping_kwargs, **synthesis_kwargs)``, whose flat synthesis kwargs are those of its
``SynthesisNetwork`` (``channel_base``, ``channel_max``, ``num_layers``, ``num_critical``,
``first_cutoff``, ``first_stopband``, ``last_stopband_rel``, ``margin_size``, ``output_scale``,
``num_fp16_res``) and of its ``SynthesisLayer`` (``conv_kernel``, ``filter_size``,
``lrelu_upsampling``, ``use_radial_filters``, ``conv_clamp``, ``magnitude_ema_beta``); ``train.py``
sets ``magnitude_ema_beta`` and, for R, ``conv_kernel=1``, ``use_radial_filters=True`` and doubled
``channel_base``/``channel_max`` (``--fp32``: ``num_fp16_res=0``, ``conv_clamp=None``). ``D`` is a
``training.networks_stylegan2.Discriminator`` with stylegan2-ada-pytorch's parameter names and
kwargs, but ``conv_clamp`` 256 and ``num_fp16_res`` 4 by default: core's StyleGAN2 conversion reads it.

A kwarg the pickle does not hold takes NVlabs' default (``conv_clamp`` 256, mapping 2 layers,
``w_avg_beta`` 0.998, ...). The options become our ``stylegan3-t`` (3x3 convolutions, separable
filters) or ``stylegan3-r`` (1x1 convolutions, radial filters) generator with every synthesis
option given explicitly in ``synthesis_options``, so an unusual combination (say 1x1 convolutions
with separable filters) is built exactly as written; the topology name follows the filters. Any
kwarg our networks do not know is a ``ConversionError`` naming it; ``num_fp16_res`` only sets
precision (our layers run in the precision of the run). Our module and parameter names are
NVlabs', so the state dicts (weights, ``magnitude_ema``, the designed ``up_filter`` /
``down_filter``, the Fourier ``freqs``/``phases`` and the user ``transform``) are copied one to one.
"""
from __future__ import annotations

import math

from lightning_stylegan.converters.base import (ConversionError, Converted, NetworkConverter, build_networks,
                                                child, generator_record, network_record)
from lightning_stylegan.converters.stylegan2 import discriminator_options, take
from lightning_stylegan.training.options import DiscriminatorOptions, GeneratorOptions

# networks_stylegan3.Generator's own kwargs, then its SynthesisNetwork's and SynthesisLayer's, with NVlabs' defaults.
GENERATOR_DEFAULTS = dict(z_dim=None, c_dim=0, w_dim=None, img_resolution=None, img_channels=None, mapping_kwargs={})
SYNTHESIS_DEFAULTS = dict(channel_base=32768, channel_max=512, num_layers=14, num_critical=2, first_cutoff=2,
                          first_stopband=2 ** 2.1, last_stopband_rel=2 ** 0.3, margin_size=10, output_scale=0.25)
LAYER_DEFAULTS = dict(conv_kernel=3, filter_size=6, lrelu_upsampling=2, use_radial_filters=False, conv_clamp=256,
                      magnitude_ema_beta=0.999)
MAPPING_DEFAULTS = dict(num_layers=2, lr_multiplier=0.01, w_avg_beta=0.998)
# What GeneratorOptions takes itself; the rest of SYNTHESIS_DEFAULTS and LAYER_DEFAULTS go to synthesis_options.
OWN_FIELDS = ("channel_base", "channel_max", "conv_clamp")
# The stylegan3 repository's networks_stylegan2.Discriminator defaults that differ from stylegan2-ada-pytorch's.
DISCRIMINATOR_DEFAULTS = dict(conv_clamp=256)


# The type of each value (a pickle may hold numpy scalars, which cannot go into our checkpoints).
INTEGERS = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "channel_base", "channel_max", "num_layers",
            "num_critical", "margin_size", "conv_kernel", "filter_size", "lrelu_upsampling"}
FLOATS = {"first_cutoff", "first_stopband", "last_stopband_rel", "output_scale", "magnitude_ema_beta", "lr_multiplier",
          "w_avg_beta"}


def _typed(values: dict, where: str) -> dict:
    """``values`` as plain Python ints, floats and bools; a value of another type is a ``ConversionError``."""
    typed = dict(values)
    for key, value in values.items():
        if key not in INTEGERS | FLOATS:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if (number is None or isinstance(value, bool) or not math.isfinite(number)
                or (key in INTEGERS and number != int(number))):
            raise ConversionError(f"{where}: {key}={value!r} is not {'an integer' if key in INTEGERS else 'a number'}")
        typed[key] = int(number) if key in INTEGERS else number
    if "conv_clamp" in typed and typed["conv_clamp"] is not None:
        typed["conv_clamp"] = float(typed["conv_clamp"])
    if "use_radial_filters" in typed:
        typed["use_radial_filters"] = bool(typed["use_radial_filters"])
    return typed


def generator_options(kwargs: dict) -> tuple[dict, GeneratorOptions]:
    """(the Generator's kwargs with NVlabs' defaults, our options) of a networks_stylegan3.Generator."""
    where = "G (StyleGAN3)"
    top = _typed(take(kwargs, GENERATOR_DEFAULTS | SYNTHESIS_DEFAULTS | LAYER_DEFAULTS, where), where)
    mapping = _typed(take(top["mapping_kwargs"], MAPPING_DEFAULTS, "G mapping_kwargs"), "G mapping_kwargs")
    topology = "stylegan3-r" if top["use_radial_filters"] else "stylegan3-t"
    synthesis_options = {key: top[key] for key in (*SYNTHESIS_DEFAULTS, *LAYER_DEFAULTS) if key not in OWN_FIELDS}
    options = GeneratorOptions(topology=topology, normalization="demod", use_noise=False, z_dim=top["z_dim"],
                               w_dim=top["w_dim"], mapping_layers=mapping["num_layers"],
                               mapping_lr_multiplier=mapping["lr_multiplier"], w_avg_beta=mapping["w_avg_beta"],
                               channel_base=top["channel_base"], channel_max=top["channel_max"],
                               conv_clamp=top["conv_clamp"], synthesis_options=synthesis_options)
    return top, options


def is_stylegan3(records: dict) -> bool:
    """A networks_stylegan3 generator: its synthesis network starts with the Fourier ``SynthesisInput``
    followed by ``SynthesisLayer``s (NVlabs' persistence records classes by their bare names)."""
    synthesis = child(generator_record(records), "synthesis")
    if synthesis is None or getattr(child(synthesis, "input"), "class_name", None) != "SynthesisInput":
        return False
    layers = [record for name, record in synthesis.modules.items() if name != "input"]
    return bool(layers) and all(getattr(record, "class_name", None) == "SynthesisLayer" for record in layers)


class Stylegan3Converter(NetworkConverter):
    """NVlabs stylegan3 network pickles: --cfg stylegan3-t and stylegan3-r (G, G_ema and the StyleGAN2 D)."""

    api_version = 1
    description = "NVlabs stylegan3 network pickles (--cfg stylegan3-t / stylegan3-r; G, D, G_ema)"

    def handles(self, records: dict) -> bool:
        return is_stylegan3(records)

    def networks(self, records: dict) -> Converted:
        top, generator = generator_options(generator_record(records).init_kwargs)
        D = network_record(records, "D")
        discriminator = (discriminator_options(D.init_kwargs, **DISCRIMINATOR_DEFAULTS) if D is not None
                         else DiscriminatorOptions(conv_clamp=DISCRIMINATOR_DEFAULTS["conv_clamp"]))
        return build_networks(records, top["img_resolution"], top["img_channels"], top["c_dim"], generator,
                              discriminator)
