"""The built-in converter ``stylegan2``: NVlabs stylegan2-ada-pytorch network pickles.

Every configuration of its ``train.py`` (``auto``, ``stylegan2``, ``paper256/512/1024``, ``cifar``;
any resolution; conditional or not). Our parameter names are NVlabs', so the weights carry over one
to one; the init kwargs become our options, and a kwarg we cannot represent is a
``ConversionError``, never a silent approximation. fp16 layers become fp32 (``num_fp16_res`` only
sets precision); ``conv_clamp`` is kept.

``take``, ``require`` and ``discriminator_options`` are for other converters too: the StyleGAN3
pickles of NVlabs' stylegan3 repository hold this discriminator (with other defaults).
"""
from __future__ import annotations

from ..training.options import DiscriminatorOptions, GeneratorOptions
from .base import ConversionError, Converted, NetworkConverter, build_networks, child, generator_record, network_record

ARCHITECTURES = {"orig": "original", "skip": "skip", "resnet": "residual"}
FILTER = [1, 3, 3, 1]
# NVlabs options that only set speed or precision, not the function a network computes.
PRECISION_ONLY = {"num_fp16_res", "use_fp16", "fp16_channels_last", "channels_last"}
# stylegan2-ada-pytorch's Discriminator defaults (the stylegan3 repository's has conv_clamp 256, num_fp16_res 4).
DISCRIMINATOR_DEFAULTS = dict(c_dim=0, img_resolution=None, img_channels=None, architecture="resnet",
                              channel_base=32768, channel_max=512, conv_clamp=None, cmap_dim=None,
                              block_kwargs={}, mapping_kwargs={}, epilogue_kwargs={})


# The kwargs of stylegan2-ada-pytorch's Generator itself.
GENERATOR_KWARGS = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs"}


def take(kwargs: dict, defaults: dict, where: str) -> dict:
    """``defaults`` updated by ``kwargs``; keys outside them (and precision-only keys) are refused/dropped."""
    unknown = sorted(set(kwargs) - set(defaults) - PRECISION_ONLY)
    if unknown:
        raise ConversionError(f"{where}: NVlabs options {unknown} are not supported by the converter")
    return defaults | {key: value for key, value in kwargs.items() if key in defaults}


def require(values: dict, expected: dict, where: str) -> None:
    """Each ``values[key]`` must equal ``expected[key]``: a ``ConversionError`` naming the first that does not."""
    for key, value in expected.items():
        if values[key] != value and not (key == "resample_filter" and list(values[key]) == value):
            raise ConversionError(f"{where}: {key}={values[key]!r} is not supported (only {value!r})")


def generator_options(kwargs: dict) -> tuple[dict, GeneratorOptions]:
    """(the Generator's top-level kwargs with defaults, our options) of a stylegan2-ada-pytorch G."""
    top = take(kwargs, dict(z_dim=None, c_dim=0, w_dim=None, img_resolution=None, img_channels=None,
                            mapping_kwargs={}, synthesis_kwargs={}), "G")
    mapping = take(top["mapping_kwargs"], dict(num_layers=8, embed_features=None, layer_features=None,
                                               activation="lrelu", lr_multiplier=0.01, w_avg_beta=0.995),
                   "G mapping_kwargs")
    require(mapping, dict(embed_features=None, layer_features=None, activation="lrelu"), "G mapping_kwargs")
    synthesis = take(top["synthesis_kwargs"], dict(channel_base=32768, channel_max=512, architecture="skip",
                                                   resample_filter=FILTER, conv_clamp=None, use_noise=True,
                                                   activation="lrelu", kernel_size=3), "G synthesis_kwargs")
    require(synthesis, dict(resample_filter=FILTER, activation="lrelu", kernel_size=3), "G synthesis_kwargs")
    if synthesis["architecture"] not in ARCHITECTURES:
        raise ConversionError(f"G architecture {synthesis['architecture']!r} is not one of {list(ARCHITECTURES)}")
    options = GeneratorOptions(topology=ARCHITECTURES[synthesis["architecture"]], normalization="demod",
                               z_dim=top["z_dim"], w_dim=top["w_dim"], mapping_layers=mapping["num_layers"],
                               mapping_lr_multiplier=mapping["lr_multiplier"], w_avg_beta=mapping["w_avg_beta"],
                               channel_base=synthesis["channel_base"], channel_max=synthesis["channel_max"],
                               use_noise=synthesis["use_noise"], conv_clamp=synthesis["conv_clamp"])
    return top, options


def discriminator_options(kwargs: dict, **defaults) -> DiscriminatorOptions:
    """Our options of an NVlabs StyleGAN2 Discriminator; ``defaults`` replace some of
    ``DISCRIMINATOR_DEFAULTS`` (the values the pickle's class uses for kwargs it does not hold)."""
    top = take(kwargs, DISCRIMINATOR_DEFAULTS | defaults, "D")
    require(top, dict(cmap_dim=None), "D")
    block = take(top["block_kwargs"], dict(activation="lrelu", resample_filter=FILTER, freeze_layers=0),
                 "D block_kwargs")
    require(block, dict(activation="lrelu", resample_filter=FILTER), "D block_kwargs")
    mapping = take(top["mapping_kwargs"], dict(num_layers=8, embed_features=None, layer_features=None,
                                               activation="lrelu", lr_multiplier=0.01), "D mapping_kwargs")
    require(mapping, dict(embed_features=None, layer_features=None, activation="lrelu", lr_multiplier=0.01),
            "D mapping_kwargs")
    epilogue = take(top["epilogue_kwargs"], dict(mbstd_group_size=4, mbstd_num_channels=1, activation="lrelu"),
                    "D epilogue_kwargs")
    require(epilogue, dict(activation="lrelu"), "D epilogue_kwargs")
    if top["architecture"] not in ARCHITECTURES:
        raise ConversionError(f"D architecture {top['architecture']!r} is not one of {list(ARCHITECTURES)}")
    return DiscriminatorOptions(topology=ARCHITECTURES[top["architecture"]], channel_base=top["channel_base"],
                                channel_max=top["channel_max"], mbstd_group_size=epilogue["mbstd_group_size"],
                                mbstd_num_channels=epilogue["mbstd_num_channels"],
                                mapping_layers=mapping["num_layers"], conv_clamp=top["conv_clamp"])


def nvlabs_networks(records: dict) -> Converted:
    """``(hparams, G, D or None, G_ema)`` from the records of a stylegan2-ada-pytorch pickle."""
    main = generator_record(records)
    if main is None:
        raise ConversionError("The pickle has neither G_ema nor G")
    if "stylegan3" in main.class_name:  # training.networks_stylegan3.Generator: alias-free, not StyleGAN2
        raise ConversionError(f"The pickle holds a StyleGAN3 generator ({main.class_name}); only StyleGAN2 "
                              "networks can be converted by the stylegan2 converter")
    top, generator = generator_options(main.init_kwargs)
    D = network_record(records, "D")
    discriminator = discriminator_options(D.init_kwargs) if D is not None else DiscriminatorOptions()
    return build_networks(records, top["img_resolution"], top["img_channels"], top["c_dim"], generator,
                          discriminator)


class Stylegan2Converter(NetworkConverter):
    """NVlabs stylegan2-ada-pytorch network pickles (training.networks.Generator, every train.py config)."""

    api_version = 1
    description = "NVlabs stylegan2-ada-pytorch network pickles (every train.py config; G, D, G_ema)"

    def handles(self, records: dict) -> bool:
        """stylegan2-ada-pytorch's Generator takes ``synthesis_kwargs`` (its ``train.py`` always sets
        them; one built with the defaults has StyleGAN2's blocks and no other kwargs); StyleGAN3's
        and the stylegan3 repository's StyleGAN2 generators take them flat, beside ``z_dim``."""
        main = generator_record(records)
        if main is None:
            return False
        if "synthesis_kwargs" in main.init_kwargs:
            return True
        flat = set(main.init_kwargs) - GENERATOR_KWARGS - PRECISION_ONLY
        return child(main, "synthesis", "b4") is not None and not flat

    def networks(self, records: dict) -> Converted:
        return nvlabs_networks(records)
