"""The ``lightning-stylegan`` command.

* ``lightning-stylegan plugins [--kind KIND]``: every installed plugin with its distribution,
  version and a one-line description (or why it is broken).
* ``lightning-stylegan fit|validate --config recipes/<recipe>.yaml [--ckpt_path last]``:
  LightningCLI over ``training.module.StyleGAN2`` and ``data.datamodule.ImageDataModule``, with the
  regularizer, sample-grid, checkpoint and metrics callbacks as top-level groups ``r1``,
  ``path_length``, ``samples``, ``checkpoints`` and ``metrics``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__, registry

TRAINER_DEFAULTS = {
    "max_epochs": -1,  # training length is model.total_kimg; the data stream is infinite
    "num_sanity_val_steps": 0,
    "log_every_n_steps": 10,
    "precision": "32-true",
    "use_distributed_sampler": False,  # the data module's InfiniteSampler splits the data by rank
}


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def plugins_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lightning-stylegan plugins",
                                     description="List the installed plugins of every kind.")
    parser.add_argument("--kind", choices=list(registry.GROUPS), help="list only this kind")
    args = parser.parse_args(argv)
    listings = registry.describe(args.kind)
    rows = [["KIND", "NAME", "DISTRIBUTION", "VERSION", "DESCRIPTION"]]
    for item in listings:
        status = f"BROKEN: {item.error}" if item.error else item.description
        rows.append([item.spec.kind, item.spec.name, item.spec.distribution, item.spec.version, status])
    print(_table(rows))
    broken = sum(item.error is not None for item in listings)
    if broken:
        print(f"\n{broken} plugin(s) cannot be used; the others work.", file=sys.stderr)
    return 0


def _lightning_cli(argv: list[str] | None) -> None:
    # Imported here so that `lightning-stylegan plugins` starts without loading Lightning.
    from lightning.pytorch.cli import LightningCLI

    from .data.datamodule import ImageDataModule
    from .metrics.callback import Metrics
    from .metrics.catalog import parse_metrics
    from .training.module import StyleGAN2
    from .training.regularizers import PathLength, R1
    from .training.snapshots import KimgCheckpoint, SampleGrid

    class StyleGANCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            parser.add_lightning_class_args(R1, "r1")
            parser.add_lightning_class_args(PathLength, "path_length")
            parser.add_lightning_class_args(SampleGrid, "samples")
            parser.add_lightning_class_args(KimgCheckpoint, "checkpoints")
            parser.add_lightning_class_args(Metrics, "metrics")
            parser.link_arguments("data.resolution", "model.resolution")
            parser.link_arguments("data.channels", "model.channels")
            parser.link_arguments("data.label_dim", "model.label_dim", apply_on="instantiate")

        def before_instantiate_classes(self) -> None:
            config = self.config[self.subcommand] if self.subcommand else self.config
            model = config.model
            for kind, name in [("generator", model.generator.topology),
                               ("normalization", model.generator.normalization),
                               ("discriminator", model.discriminator.topology),
                               ("growth", model.growth)]:
                try:
                    registry.load(kind, name)
                except registry.PluginError as error:
                    print(f"error: {error}", file=sys.stderr)
                    sys.exit(2)
            if config.metrics.metrics:
                try:
                    parse_metrics(config.metrics.metrics, config.metrics.num_gen)
                except ValueError as error:
                    print(f"error: --metrics.metrics: {error}", file=sys.stderr)
                    sys.exit(2)
            if config.trainer.strategy == "ddp":
                # G and D take turns: each phase leaves the other network's parameters unused.
                config.trainer.strategy = "ddp_find_unused_parameters_true"

        def before_fit(self) -> None:
            self._resolve_last("starting a new run")

        def before_validate(self) -> None:
            self._resolve_last("validating the freshly initialized networks")

        def _resolve_last(self, otherwise: str) -> None:
            """``--ckpt_path last`` means ``checkpoints.dirpath/last.ckpt`` of this recipe."""
            config = self.config_init[self.subcommand]
            if config.get("ckpt_path") == "last":
                checkpoint = next(cb for cb in self.trainer.callbacks if isinstance(cb, KimgCheckpoint))
                last = checkpoint.last_path(self.trainer)
                if last.exists():
                    config["ckpt_path"] = str(last)
                else:
                    print(f"No {last} found; {otherwise}.", file=sys.stderr)
                    config["ckpt_path"] = None

    StyleGANCLI(StyleGAN2, ImageDataModule, args=argv, trainer_defaults=TRAINER_DEFAULTS,
                save_config_kwargs={"overwrite": True},
                parser_kwargs={"prog": "lightning-stylegan",
                               "description": "Train and evaluate StyleGAN-family GANs."})


# Subcommands outside LightningCLI: module whose ``main(argv) -> int`` runs it.
TOOLS = {
    "metrics": "lightning_stylegan.metrics.command",
    "generate": "lightning_stylegan.tools.generate",
    "project": "lightning_stylegan.tools.project",
    "convert": "lightning_stylegan.tools.convert",
    "analyze": "lightning_stylegan.analysis.command",
}


def main(argv: list[str] | None = None) -> int:
    given = argv
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "plugins":
        return plugins_command(argv[1:])
    if argv and argv[0] in TOOLS:
        return importlib.import_module(TOOLS[argv[0]]).main(argv[1:])
    if argv and argv[0] == "--version":
        print(f"lightning-stylegan {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: lightning-stylegan {plugins,fit,validate,metrics,generate,project,convert,analyze} ...\n\n"
              "  plugins   list the installed plugins (--kind to filter)\n"
              "  fit       train:  lightning-stylegan fit --config recipes/quickstart.yaml\n"
              "  validate  score reals and EMA fakes with D on the validation images\n"
              "  metrics   FID, KID, precision/recall, IS, PPL of a checkpoint\n"
              "  generate  images, style-mixing grids and interpolations from a checkpoint\n"
              "  project   find the latent w of a target image\n"
              "  convert   import official NVlabs / rosinality networks; --export a generator\n"
              "  analyze   feature maps, activation rates, ablations (artifact analysis)\n\n"
              "Run `lightning-stylegan fit --help` for every option.")
        return 0 if argv else 2
    _lightning_cli(given)  # None: LightningCLI reads sys.argv itself
    return 0


if __name__ == "__main__":
    sys.exit(main())
