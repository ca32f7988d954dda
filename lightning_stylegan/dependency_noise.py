"""What our dependencies print from their own internals that a user can do nothing about, and the
filters that hide it. Every entry says where it comes from and why it is not the user's business;
a warning about the user's own configuration (Lightning's or ours) is never on this list.

Warnings hidden (each matched on its message and the module it is attributed to):

* ``isinstance(treespec, LeafSpec) is deprecated`` (``FutureWarning``, lightning.pytorch's
  ``utilities/_pytree.py``): Lightning's own copy of ``tree_flatten`` uses a class that torch
  deprecated; printed once per run at the first training step, whatever the recipe.
* ``Found N module(s) in eval mode at the start of training`` (lightning.pytorch's fit loop):
  ``G_ema`` is in eval mode on purpose, it is only averaged, never trained.
* ``LightningCLI's args parameter is intended to run from within Python`` (lightning.pytorch's
  CLI): the ``lightning-stylegan`` command passes ``sys.argv`` without ``--debug`` as ``args``.

Log lines hidden: Lightning's advertisement of its cloud logger (``litlogger``) at every start.
"""
from __future__ import annotations

import logging
import warnings

# (message regex, category, regex of the module the warning is attributed to)
HIDDEN_WARNINGS = [
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning, r"lightning\.pytorch\.utilities\._pytree"),
    (r"Found \d+ module\(s\) in eval mode at the start of training", UserWarning, r"lightning\.pytorch\.loops"),
    (r"LightningCLI's args parameter is intended", UserWarning, r"lightning\.pytorch\.cli"),
]
RANK_ZERO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class _NoTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in str(record.msg)


def hide_dependency_noise() -> None:
    """Install the filters above (idempotent: ``warnings`` drops a filter it already has)."""
    for message, category, module in HIDDEN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for name in RANK_ZERO_LOGGERS:  # whichever Lightning imported last logs its rank-0 lines
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoTips) for f in logger.filters):
            logger.addFilter(_NoTips())
