"""Plugin registry: every StyleGAN variant is found by name through Python entry points.

A plugin is any object (usually a class) published under one of the entry-point groups in
``GROUPS``. The project's own built-ins are registered in its ``pyproject.toml`` exactly the way a
third-party package registers its own, so core code never imports a plugin module by name.

Discovery is lazy: names are indexed from installed distributions' metadata, and a plugin's module is
imported only when that plugin is used (``load``) or listed (``describe``). A plugin that fails to
import is reported as broken without affecting any other plugin.

Every plugin declares ``api_version``; it must equal ``API_VERSION`` of this registry.
"""
from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from importlib import metadata

from .errors import UsageError

API_VERSION = 1

GROUPS = {
    "normalization": "lightning_stylegan.normalizations",
    "generator": "lightning_stylegan.generators",
    "discriminator": "lightning_stylegan.discriminators",
    "growth": "lightning_stylegan.growth",
    "loss": "lightning_stylegan.losses",
    "feature_extractor": "lightning_stylegan.feature_extractors",
    "augmentation": "lightning_stylegan.augmentations",
    "converter": "lightning_stylegan.converters",
    "metric": "lightning_stylegan.metrics",
}


class PluginError(UsageError, LookupError):
    """Any problem finding or loading a plugin; the message says what to do about it."""


@dataclass(frozen=True)
class PluginSpec:
    """What the metadata says about one plugin, before anything is imported."""

    kind: str
    name: str
    target: str  # "module:attribute"
    distribution: str
    version: str
    conflicts: tuple[str, ...] = ()  # other distributions claiming the same name

    @property
    def owner(self) -> str:
        return f"{self.distribution} {self.version}"


@dataclass(frozen=True)
class PluginListing:
    """One row of ``lightning-stylegan plugins``: a spec plus what importing it showed."""

    spec: PluginSpec
    description: str
    error: str | None  # None when the plugin loads and targets this registry's API


def _check_kind(kind: str) -> str:
    if kind not in GROUPS:
        raise PluginError(f"Unknown plugin kind {kind!r}; the kinds are: {', '.join(GROUPS)}.")
    return GROUPS[kind]


def _distribution_of(entry_point: metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return "<unknown distribution>", "?"
    return dist.metadata["Name"], dist.version


@functools.cache
def index(kind: str) -> dict[str, PluginSpec]:
    """Map name -> spec for one kind, read from entry-point metadata only (nothing is imported).

    The same distribution seen twice (for instance on two ``sys.path`` entries) counts once; two
    different distributions claiming one name are recorded as a conflict, reported when the name
    is used.
    """
    group = _check_kind(kind)
    found: dict[str, PluginSpec] = {}
    for entry_point in metadata.entry_points(group=group):
        dist, version = _distribution_of(entry_point)
        spec = PluginSpec(kind, entry_point.name, entry_point.value, dist, version)
        previous = found.get(spec.name)
        if previous is None:
            found[spec.name] = spec
        elif _normalize(previous.distribution) != _normalize(dist):
            claimants = tuple(sorted({*previous.conflicts, f"{dist} {version}"}))
            found[spec.name] = PluginSpec(kind, spec.name, previous.target, previous.distribution,
                                          previous.version, claimants)
    return dict(sorted(found.items()))


def _normalize(dist_name: str) -> str:
    return dist_name.lower().replace("_", "-").replace(".", "-")


def names(kind: str) -> list[str]:
    """The registered names of one kind, sorted."""
    return list(index(kind))


def spec(kind: str, name: str) -> PluginSpec:
    """The spec of one plugin; unknown names and conflicts raise ``PluginError``."""
    available = index(kind)
    if name not in available:
        close = difflib.get_close_matches(str(name), available, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        listing = ", ".join(available) or "(none installed)"
        raise PluginError(
            f"Unknown {kind} plugin {name!r}.{hint} Available {kind} plugins: {listing}. "
            f"Install the package that provides {name!r}, or run `lightning-stylegan plugins --kind {kind}`."
        )
    found = available[name]
    if found.conflicts:
        raise PluginError(
            f"The {kind} plugin name {name!r} is claimed by more than one distribution: "
            f"{found.owner} and {', '.join(found.conflicts)}. Uninstall one of them."
        )
    return found


@functools.cache
def load(kind: str, name: str):
    """Import and return the plugin object registered as ``name`` of ``kind``.

    Raises ``PluginError`` naming the plugin, its distribution and the cause when it cannot be
    imported or targets another registry API version.
    """
    found = spec(kind, name)
    module_name, _, attribute = found.target.partition(":")
    try:
        obj = __import__(module_name, fromlist=["_"])
        for part in attribute.split(".") if attribute else []:
            obj = getattr(obj, part)
    except Exception as error:  # a broken plugin must be reported, whatever it raises
        raise PluginError(
            f"The {kind} plugin {name!r} from {found.owner} is broken: importing {found.target} "
            f"failed with {type(error).__name__}: {error}. Reinstall or fix that package."
        ) from error
    declared = getattr(obj, "api_version", None)
    if declared is None:
        raise PluginError(
            f"The {kind} plugin {name!r} from {found.owner} does not declare `api_version`; a plugin "
            f"must set `api_version = {API_VERSION}` to say which registry API it was written for."
        )
    if declared != API_VERSION:
        raise PluginError(
            f"The {kind} plugin {name!r} from {found.owner} targets registry API version {declared!r}, "
            f"but this lightning-stylegan provides version {API_VERSION}. Install a release of "
            f"{found.distribution} built for API version {API_VERSION}."
        )
    return obj


def describe(kind: str | None = None) -> list[PluginListing]:
    """Every plugin of one kind (or all kinds), imported to read its description; never raises."""
    rows = []
    for each_kind in [kind] if kind else list(GROUPS):
        _check_kind(each_kind)
        for found in index(each_kind).values():
            try:
                obj = load(each_kind, found.name)
            except PluginError as error:
                rows.append(PluginListing(found, "", str(error)))
                continue
            rows.append(PluginListing(found, _first_line(obj), None))
    return rows


def _first_line(obj) -> str:
    text = getattr(obj, "description", None) or (obj.__doc__ or "")
    return text.strip().splitlines()[0] if text.strip() else ""


def provenance(used: dict[str, str]) -> dict[str, dict[str, str]]:
    """``{kind: name}`` -> ``{kind: {name, distribution, version}}``, for recording in checkpoints."""
    specs = {kind: spec(kind, name) for kind, name in used.items()}
    return {kind: {"name": found.name, "distribution": found.distribution, "version": found.version}
            for kind, found in specs.items()}


def clear_cache() -> None:
    """Forget indexed and loaded plugins (after installing a package into a running process)."""
    index.cache_clear()
    load.cache_clear()
