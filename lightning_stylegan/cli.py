"""The ``lightning-stylegan`` command.

* ``lightning-stylegan plugins [--kind KIND]``: every installed plugin with its distribution,
  version and a one-line description (or why it is broken).
* ``lightning-stylegan fit|validate --config recipes/<recipe>.yaml [--ckpt_path last]``:
  LightningCLI over ``training.module.StyleGAN2`` and ``data.datamodule.ImageDataModule``, with the
  regularizer, augmentation-controller, sample-grid, checkpoint, preemption and metrics callbacks as
  top-level groups ``r1``, ``r2``, ``path_length``, ``ada``, ``samples``, ``checkpoints``,
  ``preemption`` and ``metrics``.

Exit status: 0 done, 1 failed while running, 2 bad input (``errors.UsageError``), 75
(``PREEMPTED_STATUS``) stopped on a signal with ``last.ckpt`` saved: run it again with
``--ckpt_path last`` to go on.
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from pathlib import Path

from . import __version__, registry
from .dependency_noise import hide_dependency_noise
from .errors import ConfigError, UsageError
from .stop_signals import install_stop_handlers

DEBUG_VARIABLE = "LIGHTNING_STYLEGAN_DEBUG"

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


class RunComplete(Exception):
    """``fit --ckpt_path`` of a run that already reached its ``total_kimg``: nothing to do."""


def _lightning_cli(argv: list[str]) -> None:
    # Imported here so that `lightning-stylegan plugins` starts without loading Lightning.
    from lightning.pytorch.callbacks import TQDMProgressBar
    from lightning.pytorch.cli import LightningCLI

    from .config_keys import check_keys, option_tree
    from .data.datamodule import ImageDataModule
    from .metrics.callback import Metrics
    from .metrics.catalog import parse_metrics
    from .network_files import read_training_checkpoint
    from .training import resume
    from .training.module import StyleGAN2
    from .training.progress import KimgProgressBar, Ticks
    from .training.ada import AdaController
    from .training.regularizers import R1, R2, PathLength
    from .training.checkpoints import KimgCheckpoint
    from .training.preemption import Preemption
    from .training.snapshots import SampleGrid

    class StyleGANCLI(LightningCLI):
        checkpoint: dict | None = None  # the --ckpt_path checkpoint, read by the project's own safe reader

        def add_arguments_to_parser(self, parser) -> None:
            parser.add_lightning_class_args(R1, "r1")
            parser.add_lightning_class_args(R2, "r2")
            parser.add_lightning_class_args(PathLength, "path_length")
            parser.add_lightning_class_args(AdaController, "ada")
            parser.add_lightning_class_args(SampleGrid, "samples")
            parser.add_lightning_class_args(KimgCheckpoint, "checkpoints")
            parser.add_lightning_class_args(Preemption, "preemption")  # after checkpoints: its poll ends a step
            parser.add_lightning_class_args(Metrics, "metrics")
            parser.add_lightning_class_args(Ticks, "ticks")
            parser.link_arguments("data.resolution", "model.resolution")
            parser.link_arguments("data.channels", "model.channels")
            parser.link_arguments("data.label_dim", "model.label_dim", apply_on="instantiate")

        def _prepare_subcommand_parser(self, klass, subcommand: str, **kwargs):
            parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
            if subcommand == "fit":
                parser.add_argument("--validate_at_end", type=bool, default=True,
                                    help="score reals and EMA fakes with D on the validation images after training")
            return parser

        def parse_arguments(self, parser, args) -> None:
            subcommands = parser._subcommands_action._name_parser_map
            if args and args[0] in subcommands:
                check_keys(option_tree(subcommands[args[0]]), list(args[1:]))
            super().parse_arguments(parser, args)

        def _parse_ckpt_path(self) -> None:
            """Resolve ``last`` (``last.ckpt``, or the newest snapshot that verifies) and check the
            checkpoint with the project's reader. Unlike LightningCLI's own, this keeps the user's
            options (the rule is in ``training.resume``)."""
            from .checkpoint_files import newest_verified

            subcommand = self.config.get("subcommand")
            config = self.config[subcommand] if subcommand else None
            if config is None:
                return
            root = Path(config.trainer.default_root_dir or ".")
            if config.get("ckpt_path") == "last":
                directory = Path(config.checkpoints.dirpath or root / "checkpoints")
                found = newest_verified(directory, lambda path: read_training_checkpoint(path, subcommand == "fit"))
                if found is not None:
                    config.ckpt_path, self.checkpoint = str(found[0]), found[1]
                    return
                config.ckpt_path = None
                if subcommand == "fit":
                    resume.refuse_implicit_hpc_resume(root)
                otherwise = "starting a new run" if subcommand == "fit" else "validating the freshly initialized networks"
                print(f"No {directory / 'last.ckpt'} found; {otherwise}.", file=sys.stderr)
                return
            if not config.get("ckpt_path"):
                if subcommand == "fit":
                    resume.refuse_implicit_hpc_resume(root)
                return
            self.checkpoint = read_training_checkpoint(config.ckpt_path, resume=subcommand == "fit")

        def before_instantiate_classes(self) -> None:
            config = self.config[self.subcommand] if self.subcommand else self.config
            model = config.model
            for kind, name in [("generator", model.generator.topology),
                               ("normalization", model.generator.normalization),
                               ("discriminator", model.discriminator.topology),
                               ("growth", model.growth), ("augmentation", model.augment), ("loss", model.loss)]:
                registry.load(kind, name)
            if config.metrics.features != "auto":
                registry.load("feature_extractor", config.metrics.features)  # not only at the first evaluation
            if config.metrics.metrics:
                try:
                    parse_metrics(config.metrics.metrics, config.metrics.num_gen)
                except ValueError as error:
                    raise ConfigError(f"--metrics.metrics: {error}") from error
            if config.trainer.strategy == "ddp":
                # G and D take turns: each phase leaves the other network's parameters unused.
                config.trainer.strategy = "ddp_find_unused_parameters_true"

        def before_fit(self) -> None:
            self._dump_config()
            options = {key: value for key, value in resume.flatten(self.config_dump).items()
                       if not key.startswith(resume.NOT_OPTIONS)}
            self.model.run_config = options
            if self.checkpoint is not None:
                self._check_resume(options)
            if not self.config.fit.validate_at_end:
                self.trainer.limit_val_batches = 0
            self._use_kimg_progress_bar()

        def _check_resume(self, options: dict) -> None:
            path, saved = self.config.fit.ckpt_path, self.checkpoint["hyper_parameters"]
            resume.check_same_networks(path, saved, dict(self.model.hparams))
            seen, total_kimg = self.checkpoint["counters"]["images_seen"], self.model.hparams["total_kimg"]
            if seen >= total_kimg * 1000:
                raise RunComplete(f"The run of {path} is complete: it has seen {seen / 1000:g} kimg of its "
                                  f"total_kimg {total_kimg:g}; nothing was trained or written. To train "
                                  f"longer, raise --model.total_kimg (e.g. --model.total_kimg {2 * total_kimg:g}).")
            changed = resume.changed_options(self.checkpoint.get("run_config"), saved, options)
            print(f"Resuming {path} at {seen / 1000:g} kimg" +
                  (f" with changed options: {'; '.join(changed)}" if changed else "; no option changed"),
                  file=sys.stderr)

        def before_validate(self) -> None:
            self._use_kimg_progress_bar()

        def _use_kimg_progress_bar(self) -> None:
            """Lightning's default bar counts batches of an endless stream (``929/?``); ours counts kimg.
            With --trainer.enable_progress_bar false there is no default bar, and none is added."""
            self.trainer.callbacks = [KimgProgressBar() if type(cb) is TQDMProgressBar else cb
                                      for cb in self.trainer.callbacks]

    finished = False
    try:
        StyleGANCLI(StyleGAN2, ImageDataModule, args=argv, trainer_defaults=TRAINER_DEFAULTS,
                    save_config_kwargs={"overwrite": True},
                    parser_kwargs={"prog": "lightning-stylegan", "exit_on_error": False,
                                   "description": "Train and evaluate StyleGAN-family GANs."})
        finished = True
    finally:
        _leave_process_group(wait_for_all=finished)


def _leave_process_group(wait_for_all: bool) -> None:
    """Close the DDP process group before the interpreter exits (after every rank is done, when this
    one finished). Lightning leaves a gloo group open, and a process whose gloo threads outlive the
    interpreter can abort on exit (status -6) after a run that succeeded (pytorch/pytorch#179291)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if wait_for_all:
            dist.barrier()
        dist.destroy_process_group()


# Subcommands outside LightningCLI: module whose ``main(argv) -> int`` runs it.
TOOLS = {
    "metrics": "lightning_stylegan.metrics.command",
    "generate": "lightning_stylegan.tools.generate",
    "project": "lightning_stylegan.tools.project",
    "convert": "lightning_stylegan.tools.convert",
    "analyze": "lightning_stylegan.analysis.command",
    "dataset": "lightning_stylegan.tools.dataset_tool",
    "explore": "lightning_stylegan.explore.command",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "plugins":
        return plugins_command(argv[1:])
    if argv and argv[0] in TOOLS:
        return importlib.import_module(TOOLS[argv[0]]).main(argv[1:])
    if argv and argv[0] == "--version":
        print(f"lightning-stylegan {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: lightning-stylegan {plugins,fit,validate,metrics,generate,project,convert,analyze,"
              "dataset,explore} ...\n\n"
              "  plugins   list the installed plugins (--kind to filter)\n"
              "  fit       train:  lightning-stylegan fit --config recipes/quickstart.yaml\n"
              "  validate  score reals and EMA fakes with D on the validation images\n"
              "  metrics   FID, KID, precision/recall, IS, PPL of a checkpoint\n"
              "  generate  images, style-mixing grids and interpolations from a checkpoint\n"
              "  project   find the latent w of a target image\n"
              "  convert   import official NVlabs / rosinality networks; --export a generator\n"
              "  analyze   feature maps, activation rates, ablations (artifact analysis)\n"
              "  dataset   images (folder, zip, LMDB, CIFAR-10, MNIST) as a training zip\n"
              "  explore   a local web page that draws a generator's images as you move its controls\n\n"
              "Run `lightning-stylegan fit --help` for every option; add --debug (or set "
              f"{DEBUG_VARIABLE}=1) to see the full traceback of an error.")
        return 0 if argv else 2
    if argv[0] == "fit":
        install_stop_handlers()  # before torch and Lightning load: a signal then stops before the first step
    debug = "--debug" in argv or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")
    argv = [arg for arg in argv if arg != "--debug"]
    hide_dependency_noise()
    from .training.preemption import PREEMPTED_STATUS, StopToResume

    try:
        _lightning_cli(argv)
    except RunComplete as done:
        print(done, file=sys.stderr)
        return 0
    except StopToResume as stop:
        print(stop, file=sys.stderr)
        return PREEMPTED_STATUS
    except Exception as error:
        if debug:
            raise
        status = 2 if _is_usage_error(error) else 1
        detail = "" if status == 2 else " (run again with --debug for the full traceback)"
        print(f"error: {_one_line(error)}{detail}", file=sys.stderr)
        return status
    return 0


def _is_usage_error(error: Exception) -> bool:
    """The input is wrong (exit 2), rather than something failing while it ran (exit 1)."""
    from jsonargparse import ArgumentError
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    return isinstance(error, (UsageError, ArgumentError, MisconfigurationException))


def _worker_error_name(error: Exception) -> str | None:
    """The class name of an exception that a DataLoader worker raised and torch re-raised."""
    match = re.search(r"^Caught (\w+) in DataLoader worker", str(error))
    return match.group(1) if match else None


def _one_line(error: Exception) -> str:
    from jsonargparse import ArgumentError

    text = str(error).strip()
    if _worker_error_name(error):  # the original message is the traceback's last line
        text = re.sub(r"^[\w.]+: ", "", text.splitlines()[-1])
    elif isinstance(error, (UsageError, ArgumentError)):
        text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    else:
        text = f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"
    return text


if __name__ == "__main__":
    sys.exit(main())
