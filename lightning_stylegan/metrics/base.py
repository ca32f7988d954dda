"""The metric plugin interface (entry-point group ``lightning_stylegan.metrics``, kind ``metric``).

A metric plugin turns the names it knows (``fid50k_full``, ``eqt50k_int``, ...) into a
``MetricSpec`` (``parse``) and computes the values of a spec (``compute``) from a
``MetricContext`` (``lightning_stylegan.metrics.evaluate``), which holds what several metrics of
one run share: the generator, its labels, the dataset, the options, loaded feature extractors,
cached feature statistics of generated and real images, and the LPIPS distance. The built-in
metrics (``feature_metrics``: fid, kid, pr, is, realism; ``ppl``) are plugins of this group,
registered in the project's ``pyproject.toml`` as a third party registers its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field

ALL_REALS = None  # ``num_real`` of a ``_full`` metric: every image of the dataset


@dataclass(frozen=True)
class MetricSpec:
    """One metric to compute, as a plugin's ``parse`` describes it.

    ``name`` is the reported name (it says the count: ``fid1k_full``); ``kind`` a plugin-chosen
    word (``fid``, ``ppl``, ``eqt_int``); ``num_gen`` the number of generated images (or paths,
    or samples); ``num_real`` the number of real images (``None`` = all); ``k`` the neighbourhood
    size of precision/recall and the realism score; ``uses_reals`` whether the dataset's images
    are read (the ``metrics`` command then loads the dataset); ``options`` any further settings of
    the plugin (PPL's keyword arguments, ...). ``plugin`` is the registered name of the plugin
    that parsed it, filled in by ``catalog.parse_metric``. Two specs are the same metric when all
    fields but ``options`` are equal (``options`` follow from the name).
    """

    name: str
    kind: str
    num_gen: int
    num_real: int | None = None
    k: int = 3
    uses_reals: bool = False
    options: dict = field(default_factory=dict, compare=False)
    plugin: str = ""

    @property
    def ppl(self) -> dict:
        """The keyword arguments of ``perceptual_path_length`` of a PPL spec (its ``options``)."""
        return self.options


class Metric:
    """Base of metric plugins. Core code constructs ``Plugin()`` (no arguments) and calls:

    * ``parse(name, num_gen)``: the ``MetricSpec`` of ``name``, or ``None`` when the name is not
      one of this plugin's. ``num_gen`` (the user's ``--num-gen``, or None) replaces the count
      of the name, and the reported name then says so. Raise ``ValueError`` for a name of yours
      that is malformed (the message is shown as it is).
    * ``check(spec, G)`` (optional): raise ``ValueError`` (one line, what to do instead) when
      ``spec`` cannot be computed for the generator ``G`` (PPL in W of a generator without a W
      space); called for every spec of a run before any is computed.
    * ``raw_features(spec, context)`` (optional): the statistics whose raw feature rows this
      metric reads, not only their mean and covariance, as keys ``("generated", extractor,
      num_gen)`` / ``("real", extractor, num_real)``; the context then keeps those rows the first
      time the statistics are computed, so metrics sharing them compute them once.
    * ``compute(spec, context)``: ``{result name: float}``, or ``(values, per_image)`` with
      ``per_image`` ``{name: numpy array}`` (saved as ``<ckpt>.<name>.npy`` by the ``metrics``
      command).

    A subclass sets ``api_version = 1``, ``description`` (one line for ``lightning-stylegan
    plugins``) and ``forms`` (the names it accepts, listed when a name is unknown).
    """

    description = ""
    forms = ""

    def parse(self, name: str, num_gen: int | None = None) -> MetricSpec | None:
        raise NotImplementedError(f"{type(self).__name__} must define parse(name, num_gen)")

    def check(self, spec: MetricSpec, G) -> None:
        pass

    def raw_features(self, spec: MetricSpec, context) -> list[tuple[str, str, int | None]]:
        return []

    def compute(self, spec: MetricSpec, context):
        raise NotImplementedError(f"{type(self).__name__} must define compute(spec, context)")


def count_text(count: int, fractional: bool = False) -> str:
    """A sample count as NVlabs writes it in names: 50000 -> 50k, 500 -> 500 (0.5k with
    ``fractional``, where a neighbourhood size follows the count: pr0.5k3)."""
    if count % 1000 == 0:
        return f"{count // 1000}k"
    return f"{count / 1000:g}k" if fractional else str(count)


def parse_count(digits: str, thousands: str, name: str) -> int:
    """``("50", "k")`` -> 50000, ``("0.5", "k")`` -> 500, ``("500", "")`` -> 500; a fractional
    count without ``k`` is an error naming ``name``."""
    if not thousands and "." in digits:
        raise ValueError(f"Unknown metric {name!r}: a fractional count needs k (fid0.5k_full)")
    count = round(float(digits) * (1000 if thousands else 1))
    if count < 1:
        raise ValueError(f"Unknown metric {name!r}: the count must be at least 1")
    return count
