"""The per-stage options of R3GAN's G and D (the official ``train.py``'s ``WidthPerStage``,
``CardinalityPerStage``, ``BlocksPerStage``, ``FP16Stages``), checked, with the defaults this package
derives from the official presets where they are left out.

A stage is one resolution: G's stages run 4x4, 8x8, ..., R x R, D's the other way. The official
presets CIFAR10, FFHQ-64 and FFHQ-256 follow one rule, used for what a recipe leaves out:
768 channels and cardinality 96 up to 32x32, both halved at every octave above, two blocks per stage.
"""
from __future__ import annotations

from dataclasses import dataclass

from lightning_stylegan.errors import ConfigError

PRESET_WIDTH, PRESET_CARDINALITY, PRESET_BLOCKS, PRESET_FULL_WIDTH_UP_TO = 768, 96, 2, 32


@dataclass(frozen=True)
class StageSpec:
    """One stage: its side, width, cardinality, residual blocks, and whether it is in FP16Stages."""

    resolution: int
    width: int
    cardinality: int
    blocks: int
    reduced_precision: bool


def preset_width(resolution: int) -> int:
    return PRESET_WIDTH * PRESET_FULL_WIDTH_UP_TO // max(resolution, PRESET_FULL_WIDTH_UP_TO)


def preset_cardinality(resolution: int) -> int:
    return PRESET_CARDINALITY * PRESET_FULL_WIDTH_UP_TO // max(resolution, PRESET_FULL_WIDTH_UP_TO)


def stage_specs(img_resolution: int, *, widths, cardinalities, blocks, expansion: int, kernel_size: int,
                fp16_stages, key: str, from_input: bool) -> list[StageSpec]:
    """The stages of a network for ``img_resolution``, G's order (4x4 first) or, ``from_input``, D's.

    ``widths``, ``cardinalities``, ``blocks``: one value per stage in that order, or None for the
    preset rule; ``fp16_stages``: stage indices (negative from the end). ``key`` names the recipe
    key in errors (``model.generator.synthesis_options``)."""
    if img_resolution < 4 or img_resolution & (img_resolution - 1):
        raise ConfigError(f"R3GAN makes square images of a power-of-two side, got img_resolution={img_resolution}")
    sides = [2 ** k for k in range(2, img_resolution.bit_length())]
    sides = sides[::-1] if from_input else sides
    count = len(sides)
    order = "from the input" if from_input else "from 4x4"
    given = {"WidthPerStage": widths, "CardinalityPerStage": cardinalities, "BlocksPerStage": blocks}
    defaults = {"WidthPerStage": [preset_width(r) for r in sides],
                "CardinalityPerStage": [preset_cardinality(r) for r in sides],
                "BlocksPerStage": [PRESET_BLOCKS] * count}
    values = {}
    for name, value in given.items():
        value = defaults[name] if value is None else list(value)
        if len(value) != count or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            raise ConfigError(f"{key}.{name}: {img_resolution}x{img_resolution} images need {count} positive "
                              f"integers, one per stage {order} ({', '.join(f'{r}x{r}' for r in sides)}), "
                              f"got {value!r}")
        values[name] = value
    for name, value in (("ExpansionFactor", expansion), ("KernelSize", kernel_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key}.{name}: a positive integer, got {value!r}")
    if kernel_size % 2 == 0:
        raise ConfigError(f"{key}.KernelSize: an odd size (the convolutions keep the image size), got {kernel_size}")
    for width, cardinality in zip(values["WidthPerStage"], values["CardinalityPerStage"]):
        if width * expansion % cardinality:
            raise ConfigError(f"{key}: each stage's width times ExpansionFactor ({width} x {expansion}) must be "
                              f"divisible by its cardinality ({cardinality}), the groups of its kxk convolutions")
    fp16_stages = list(fp16_stages or ())
    if not all(isinstance(i, int) and not isinstance(i, bool) and -count <= i < count for i in fp16_stages):
        raise ConfigError(f"{key}.FP16Stages: stage indices from {-count} to {count - 1} ({order}), "
                          f"got {fp16_stages!r}")
    reduced = {i % count for i in fp16_stages}
    return [StageSpec(side, width, cardinality, block_count, i in reduced)
            for i, (side, width, cardinality, block_count) in enumerate(zip(
                sides, values["WidthPerStage"], values["CardinalityPerStage"], values["BlocksPerStage"]))]


def embedding_dim(c_dim: int, value: int | None, default: int, key: str) -> int:
    """``ConditionEmbeddingDimension``: 0 without labels; with labels the given value, or ``default``
    (the official ``train.py``'s choice) when None."""
    if not c_dim:
        return 0
    value = default if value is None else value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}.ConditionEmbeddingDimension: a positive integer for a conditional model "
                          f"(c_dim={c_dim}), or null for {default}; got {value!r}")
    return value
