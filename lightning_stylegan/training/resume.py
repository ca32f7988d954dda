"""What ``fit --ckpt_path`` keeps from the checkpoint and what it takes from this run's options.

One rule, for an explicit path and for ``last`` alike:

* the options that define the networks and their plugins (``NETWORK_OPTIONS``: resolution,
  channels, labels, every generator and discriminator option, the growth plugin and its options)
  must equal the checkpoint's: the weights and the optimizer moments belong to those networks. A
  difference stops the run before anything is built or written, naming each key with both values;
* every other option (``total_kimg``, learning rates, regularizer weights and intervals, sample,
  checkpoint and metric settings, data loading, trainer flags) is this run's, as given on the
  command line or in the recipe; the log lists the ones that differ from the run that wrote the
  checkpoint.

Lightning's own ``LightningCLI`` instead replaces the ``--model.*`` options with the checkpoint's
hyper-parameters whenever the path is explicit, which silently drops e.g. a raised ``total_kimg``.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import ConfigError

# Module hyper-parameters that define the networks (and freeze_d, which decides the parameters of D's
# optimizer, whose saved moments must match them); a dict-valued one counts with all its keys.
NETWORK_OPTIONS = ("resolution", "channels", "label_dim", "generator", "discriminator", "growth", "growth_options",
                   "freeze_d")
# Network options newer than some checkpoints, with the value an older checkpoint means.
ADDED_OPTIONS = {"freeze_d": 0, "discriminator.topology_options": {}}
# Recorded for the record, not options of a run.
NOT_OPTIONS = ("config", "ckpt_path", "print_config", "weights_only")


def flatten(tree: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def network_differences(checkpoint_hparams: dict, hparams: dict) -> list[str]:
    """``key: checkpoint value -> this run's value`` for every network option that differs."""
    def network(values):
        flat = flatten({key: values.get(key, ADDED_OPTIONS.get(key)) for key in NETWORK_OPTIONS}, "model.")
        for key, value in ADDED_OPTIONS.items():
            if "." in key and key.split(".")[0] in values:  # a key inside a dict-valued option
                flat.setdefault(f"model.{key}", value)
        return flat

    saved, now = network(checkpoint_hparams), network(hparams)
    return [f"{key} {saved.get(key)!r} (checkpoint) != {now.get(key)!r} (now)"
            for key in sorted(set(saved) | set(now)) if _differs(saved.get(key), now.get(key))]


def check_same_networks(path: str, checkpoint_hparams: dict, hparams: dict) -> None:
    differences = network_differences(checkpoint_hparams, hparams)
    if differences:
        raise ConfigError(
            f"--ckpt_path {path} was trained with other networks: {'; '.join(differences)}. Resume with the "
            "checkpoint's values (drop or change these options), or train these networks as a new run "
            "(another --trainer.default_root_dir, without --ckpt_path)")


def changed_options(recorded: dict | None, checkpoint_hparams: dict, options: dict) -> list[str]:
    """``key: old -> new`` for the options (flattened) that differ from those recorded with the
    checkpoint. ``recorded`` is the run's flattened configuration saved in the checkpoint (None for
    a checkpoint that has none: then only the module's hyper-parameters are compared)."""
    if recorded is None:
        recorded = flatten(checkpoint_hparams, "model.")
        options = {key: value for key, value in options.items() if key.startswith("model.")}
    skipped = tuple(f"model.{key}" for key in NETWORK_OPTIONS) + NOT_OPTIONS
    keys = sorted(key for key in set(recorded) | set(options) if not key.startswith(skipped))
    return [f"{key} {recorded.get(key)!r} -> {options.get(key)!r}" for key in keys
            if _differs(recorded.get(key), options.get(key))]


def _differs(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) != len(b) or any(_differs(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) != float(b)
    if isinstance(a, dict) and isinstance(b, dict):  # e.g. growth_options {8: 1} read back as {"8": 1}
        return {str(k): v for k, v in a.items()} != {str(k): v for k, v in b.items()}
    return a != b


def hpc_checkpoints(root: str | Path) -> list[Path]:
    """The ``hpc_ckpt_<n>.ckpt`` files in ``root``, newest first: what Lightning's SLURM auto-requeue
    saved on SIGUSR1 in runs of older versions, from inside the signal handler at any point of a
    step. This version replaces it (``training.preemption``) and writes none."""
    numbered = [(int(match.group(1)), path) for path in Path(root).glob("hpc_ckpt_*.ckpt")
                if (match := re.fullmatch(r"hpc_ckpt_(\d+)\.ckpt", path.name))]
    return [path for _, path in sorted(numbered, reverse=True)]


def refuse_implicit_hpc_resume(root: str | Path) -> None:
    """Lightning resumes the newest ``hpc_ckpt_<n>.ckpt`` of ``root`` whenever ``fit`` runs under
    SLURM without ``--ckpt_path``. Neither a silent mid-step resume nor a silent new run over it is
    right, so stop and say what to choose."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    found = hpc_checkpoints(root) if SLURMEnvironment.detect() else []
    if found:
        raise ConfigError(
            f"{found[0]} was saved mid-step by Lightning's SLURM auto-requeue in a run of an older version, and "
            f"Lightning would resume it because no --ckpt_path is given. Resume exactly from the last checkpoint "
            f"with --ckpt_path last, resume that file with --ckpt_path {found[0]} (not exact), or delete the "
            f"hpc_ckpt_*.ckpt files of {Path(root)} to start a new run")
