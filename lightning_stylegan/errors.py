"""Errors that are the user's to fix: a wrong option, file, image or checkpoint. Their message
names the culprit and the fix in one line; the ``lightning-stylegan`` command prints it as
``error: <message>`` and exits with status 2 (any other failure exits with 1). Each part of the
package raises a subclass of its own (``ImageDataError``, ``NetworkFileError``, ``PluginError``,
``ConfigError``), so a caller can catch one kind or all of them.
"""
from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user (command line, recipe, data, checkpoint); the message says what to do."""


class ConfigError(UsageError, ValueError):
    """A configuration value or key that cannot work: the message names the key and the valid values."""


class NetworkFileError(UsageError, ValueError):
    """A file that is not a network of ours, or a damaged one; the message names the file and what to do."""
