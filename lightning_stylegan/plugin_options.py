"""A plugin's options (a recipe's ``model.growth_options``, ...) checked against its constructor.

Options reach a plugin as keyword arguments. Each is checked against the constructor's signature
and type annotations before the plugin is built: an unknown name fails with the valid names and the
closest match, a wrong type with the expected one. A string where the annotation asks for another
type is read as YAML, so ``--model.growth_options.start_resolution 16`` typed on the command line
becomes the integer 16, as it would in a recipe.
"""
from __future__ import annotations

import difflib
import inspect
import types
import typing

import yaml

from .errors import ConfigError

_UNION_TYPES = (typing.Union, types.UnionType)


def bind_options(plugin, options: dict | None, *, key: str, label: str, given: tuple[str, ...] = ()) -> dict:
    """``options`` checked and converted for ``plugin(*given values, **options)``.

    ``key`` names the options in messages (``model.growth_options``), ``label`` the plugin (``the
    growth plugin 'progressive'``); ``given`` are the constructor's parameters that core code
    passes itself (``final_resolution``)."""
    options = dict(options or {})
    parameters = {name: p for name, p in inspect.signature(plugin).parameters.items()
                  if name not in given and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    takes_any = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(plugin).parameters.values())
    try:
        hints = typing.get_type_hints(plugin.__init__ if inspect.isclass(plugin) else plugin)
    except Exception:  # an annotation that cannot be resolved is not checked
        hints = {}
    valid = ", ".join(f"{name} ({_type_name(hints.get(name))})" for name in parameters) or "none"
    for name in [name for name in options if name not in parameters]:
        if takes_any:
            continue
        close = difflib.get_close_matches(str(name), parameters, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"{key}: {label} has no option {name!r}; {hint}its options are: {valid}")
    checked = {}
    for name, value in options.items():
        hint = hints.get(name)
        if hint is not None and isinstance(value, str) and not _accepts(hint, value):
            value = _parse(value)
        if hint is not None and not _accepts(hint, value):
            raise ConfigError(f"{key}.{name}: {label} expects {_type_name(hint)}, "
                              f"got {value!r}; its options are: {valid}")
        checked[name] = value
    missing = [name for name, p in parameters.items() if p.default is p.empty and name not in checked]
    if missing:
        raise ConfigError(f"{key}: {label} needs the option(s) {', '.join(missing)}; "
                          f"its options are: {valid}")
    return checked


def _parse(text: str):
    """A command-line string as YAML; ``1e3`` (a string to YAML 1.1) as the number it means."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _accepts(hint, value) -> bool:
    """Whether ``value`` (parsed YAML: plain Python values) is of the annotated type."""
    if hint is typing.Any or hint is object:
        return True
    origin = typing.get_origin(hint)
    if origin in _UNION_TYPES:
        return any(_accepts(arg, value) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    base = origin or hint
    if base in (list, tuple) or base in (typing.Sequence, typing.MutableSequence):
        return isinstance(value, (list, tuple))
    if base in (dict, typing.Mapping):
        return isinstance(value, dict)
    return isinstance(value, base) if isinstance(base, type) else True


def _type_name(hint) -> str:
    if hint is None:
        return "any"
    if typing.get_origin(hint) in _UNION_TYPES:
        return " or ".join(_type_name(arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
