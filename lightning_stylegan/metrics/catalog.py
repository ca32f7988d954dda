"""Metric names as users of NVlabs' stylegan2-ada-pytorch know them, parsed into what to compute.

``<kind><count>[<k>][_full]``: ``fid50k_full`` (FID of 50k generated images against every real
image), ``fid50k`` (against 50k reals), ``kid50k_full``, ``pr50k3_full`` (precision and recall with
k = 3), ``is50k``, ``realism1k3_full`` (mean realism score, k = 3, with the per-image scores saved);
``ppl_zfull``, ``ppl_wfull``, ``ppl_zend``, ``ppl_wend``, ``ppl2_wend`` (perceptual path length,
50k paths). ``count`` is ``50k``, ``10k``, ``500``, ... A ``num_gen`` given by the user replaces the
count, and the reported name says so (``fid50k_full`` with ``num_gen=1000`` -> ``fid1k_full``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from .ppl import PPL_METRICS

KINDS = ("fid", "kid", "pr", "is", "realism")
ALL_REALS = None  # ``_full``: every image of the dataset
_PATTERN = re.compile(r"^(fid|kid|pr|is|realism)(\d+(?:\.\d+)?)(k?)(\d*)(_full)?$")
EXAMPLES = "fid50k_full, kid50k_full, pr50k3_full, is50k, realism1k3_full, " + ", ".join(PPL_METRICS)


@dataclass(frozen=True)
class MetricSpec:
    """One metric to compute.

    ``num_real`` is the number of real images (``None`` = all of them); ``k`` the neighbourhood size
    of precision/recall and the realism score; ``ppl`` the keyword arguments of
    ``perceptual_path_length`` for the PPL metrics.
    """

    name: str
    kind: str
    num_gen: int
    num_real: int | None = None
    k: int = 3
    ppl: dict = field(default_factory=dict, compare=False)

    @property
    def uses_reals(self) -> bool:
        return self.kind in ("fid", "kid", "pr", "realism")

    @property
    def needs_features(self) -> bool:
        """Whether the raw feature vectors are needed, not only their mean and covariance."""
        return self.kind in ("kid", "pr", "realism")


def _count_text(count: int, kind: str) -> str:
    """50000 -> 50k; 500 -> 500, or 0.5k where a neighbourhood size follows (pr0.5k3)."""
    if count % 1000 == 0:
        return f"{count // 1000}k"
    return f"{count / 1000:g}k" if kind in ("pr", "realism") else str(count)


def parse_metric(name: str, num_gen: int | None = None) -> MetricSpec:
    """The metric a name stands for; ``num_gen`` overrides its sample count."""
    if num_gen is not None and num_gen < 1:
        raise ValueError(f"num_gen must be positive, got {num_gen}")
    if name in PPL_METRICS:
        kwargs = dict(PPL_METRICS[name])
        count = kwargs.pop("num_samples")
        return MetricSpec(name, "ppl", num_gen or count, ppl=kwargs)
    match = _PATTERN.match(name)
    if not match or (match[1] in ("pr", "realism")) != bool(match[4]) or (match[1] == "is" and match[5]):
        raise ValueError(f"Unknown metric {name!r}. Known forms: {EXAMPLES} (any count: fid10k_full, "
                         "pr5k3_full, ...)")
    kind, digits, thousands, k, full = match.groups()
    count = num_gen or round(float(digits) * (1000 if thousands else 1))
    if not thousands and "." in digits:
        raise ValueError(f"Unknown metric {name!r}: a fractional count needs k (fid0.5k_full)")
    suffix = (k or "") + (full or "")
    spec = MetricSpec(f"{kind}{_count_text(count, kind)}{suffix}", kind, count, k=int(k) if k else 3)
    if kind == "is":
        return spec
    return replace(spec, num_real=ALL_REALS if full else count)


def parse_metrics(names: str | list[str], num_gen: int | None = None) -> list[MetricSpec]:
    """Comma-separated names (or a list) -> specs, in order, without repeats."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names:
        raise ValueError(f"No metric named; choose from {EXAMPLES}")
    specs = []
    for name in names:
        spec = parse_metric(name, num_gen)
        if spec not in specs:
            specs.append(spec)
    return specs
