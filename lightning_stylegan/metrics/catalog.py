"""Metric names, parsed into what to compute by the installed metric plugins.

Every plugin of the group ``lightning_stylegan.metrics`` (kind ``metric``) is asked whether a name
is one of its own (``Metric.parse``); exactly one must claim it. The built-ins know NVlabs' names
(``feature_metrics``: ``fid50k_full``, ``kid50k_full``, ``pr50k3_full``, ``is50k``,
``realism1k3_full``, any count; ``ppl``: ``ppl_zfull``, ``ppl_wfull``, ``ppl_zend``, ``ppl_wend``,
``ppl2_wend``); installed packages add theirs (``lightning-stylegan-stylegan3``: ``eqt50k_int``,
``eqt50k_frac``, ``eqr50k``). An unknown name is an error listing the forms every plugin accepts.
"""
from __future__ import annotations

from dataclasses import replace

from .. import registry
from .base import ALL_REALS, MetricSpec  # noqa: F401  (re-exported: the names users import from here)
from .ppl import PPL_METRICS

# The built-in forms (help texts); ``known_forms()`` adds those of installed plugins.
EXAMPLES = "fid50k_full, kid50k_full, pr50k3_full, is50k, realism1k3_full, " + ", ".join(PPL_METRICS)


def _plugins() -> tuple[dict[str, object], dict[str, str]]:
    """``({name: plugin instance}, {name: why it cannot be used})`` of every installed metric plugin."""
    usable, broken = {}, {}
    for name in registry.names("metric"):
        try:
            usable[name] = registry.load("metric", name)()
        except registry.PluginError as error:
            broken[name] = str(error)
        except Exception as error:  # a constructor that raises: the plugin is broken, the others work
            broken[name] = f"constructing it failed with {type(error).__name__}: {error}"
    return usable, broken


def _forms(usable: dict[str, object]) -> str:
    return "; ".join(f"{name}: {getattr(plugin, 'forms', '') or '(no forms listed)'}"
                     for name, plugin in usable.items())


def known_forms() -> str:
    """The forms of every usable metric plugin, one ``plugin: forms`` group each."""
    return _forms(_plugins()[0])


def parse_metric(name: str, num_gen: int | None = None) -> MetricSpec:
    """The metric a name stands for; ``num_gen`` overrides its sample count."""
    if num_gen is not None and num_gen < 1:
        raise ValueError(f"num_gen must be positive, got {num_gen}")
    usable, broken = _plugins()
    claims = []
    for plugin_name, plugin in usable.items():
        spec = plugin.parse(name, num_gen)
        if spec is None:
            continue
        if not isinstance(spec, MetricSpec) or not isinstance(spec.num_gen, int) or spec.num_gen < 1:
            raise ValueError(f"The metric plugin {plugin_name!r} parsed {name!r} into {spec!r}: parse must "
                             "return a MetricSpec (lightning_stylegan.metrics.base) with num_gen >= 1, or None")
        claims.append(replace(spec, plugin=plugin_name))
    if len(claims) > 1:
        owners = ", ".join(f"{spec.plugin} ({registry.spec('metric', spec.plugin).owner})" for spec in claims)
        raise ValueError(f"The metric name {name!r} is claimed by more than one metric plugin: {owners}. "
                         "Uninstall one of them.")
    if not claims:
        unusable = f" Not searched, broken: {'; '.join(broken.values())}" if broken else ""
        raise ValueError(f"Unknown metric {name!r}. Known forms: {_forms(usable)}. "
                         f"`lightning-stylegan plugins --kind metric` lists the metric plugins.{unusable}")
    return claims[0]


def parse_metrics(names: str | list[str], num_gen: int | None = None) -> list[MetricSpec]:
    """Comma-separated names (or a list) -> specs, in order, without repeats."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names:
        raise ValueError(f"No metric named; choose from {known_forms()}")
    specs = []
    for name in names:
        spec = parse_metric(name, num_gen)
        if spec not in specs:
            specs.append(spec)
    return specs
