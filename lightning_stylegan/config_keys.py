"""Misspelled configuration keys, found before LightningCLI parses.

jsonargparse reports a misspelled key under a typed group such as ``model.generator`` as "Does not
validate against any of the Union subtypes", after a hundred lines of usage. Here every key given
on the command line or in a recipe (and the files a recipe includes, like ``data:
../base/data-ffhq.yaml``) is looked up in the parser's own tree of options first; an unknown one is
reported with the valid keys at its level and the closest match.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path

import yaml

from .errors import ConfigError

ANY = "any"  # a node whose keys are not checked here: class_path/init_args values, dicts, plugin options
LEAF = "leaf"


def option_tree(parser) -> dict:
    """``{group: {key: LEAF | ANY | {...}}}`` of a jsonargparse parser (one subcommand's)."""
    tree: dict = {}
    for action in parser._actions:
        dest = action.dest
        if not dest or dest == "help" or dest.endswith(".help"):
            continue
        node = tree
        *parents, name = dest.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        kind = type(action).__name__
        if kind == "_ActionConfigLoad":
            node.setdefault(name, {})
        else:
            node[name] = _type_node(getattr(action, "_typehint", None))
    return tree


def _type_node(hint):
    """A dataclass (or an optional one) has its fields as keys; anything else takes a value."""
    for candidate in [hint, *typing.get_args(hint)]:
        if dataclasses.is_dataclass(candidate):
            return {field.name: _type_node(typing.get_type_hints(candidate).get(field.name))
                    for field in dataclasses.fields(candidate)}
    if any((typing.get_origin(candidate) or candidate) is dict for candidate in [hint, *typing.get_args(hint)]):
        return ANY  # free keys: a plugin's options, checked by the plugin (plugin_options)
    return ANY if _is_class_type(hint) else LEAF


def _is_class_type(hint) -> bool:
    """A Lightning class option (callbacks, logger, strategy...): class_path/init_args beneath."""
    for candidate in [hint, *typing.get_args(hint), *[a for arg in typing.get_args(hint) for a in typing.get_args(arg)]]:
        if isinstance(candidate, type) and candidate.__module__.split(".")[0] in ("lightning", "torch"):
            return True
    return False


def check_keys(tree: dict, args: list[str]) -> None:
    """Raise ``ConfigError`` for the first key in ``args`` (a subcommand's arguments, ``--config``
    files included) that ``tree`` does not have."""
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if not arg.startswith("--"):
            continue
        key, _, inline = arg[2:].partition("=")
        if key == "help" or key.endswith(".help"):  # --help, --trainer.callbacks.help CLASS
            continue
        if key in ("config", "c"):
            value = inline or (args[index] if index < len(args) else "")
            index += 0 if inline else 1
            _check_file(tree, Path(value))
            continue
        _check(tree, key.rstrip("+").split("."), "on the command line")


def _check_file(tree: dict, path: Path, prefix: tuple[str, ...] = ()) -> None:
    if not path.is_file():
        return  # jsonargparse names the missing file
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from error
    _check_values(tree, content, list(prefix), path)


def _check_values(tree: dict, content, prefix: list[str], path: Path) -> None:
    if not isinstance(content, dict):
        return
    for key, value in content.items():
        keys = [*prefix, str(key)]
        node = _check(tree, keys, f"in {path}")
        if isinstance(node, dict):
            if isinstance(value, str) and value.endswith((".yaml", ".yml", ".json")):
                _check_file(tree, path.parent / value, tuple(keys))  # an included group file
            else:
                _check_values(tree, value, keys, path)


def _check(tree: dict, keys: list[str], where: str):
    """The node of ``keys`` in ``tree``, or ``ConfigError`` naming the first unknown part."""
    node = tree
    for depth, part in enumerate(keys):
        if node == ANY:
            return ANY
        if node == LEAF:
            raise ConfigError(f"'{'.'.join(keys)}' ({where}): '{'.'.join(keys[:depth])}' takes a value, "
                              "not keys beneath it")
        if part not in node:
            level = ".".join(keys[:depth]) or "the top level"
            close = difflib.get_close_matches(part, list(node), n=1)
            hint = f"did you mean '{'.'.join([*keys[:depth], close[0]])}'? " if close else ""
            raise ConfigError(f"unknown key '{'.'.join(keys)}' ({where}); {hint}the keys of {level} are: "
                              f"{', '.join(sorted(node))}")
        node = node[part]
    return node
