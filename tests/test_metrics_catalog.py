"""Metric names as NVlabs' stylegan2-ada-pytorch spells them, parsed into what to compute."""
from __future__ import annotations

import pytest

from lightning_stylegan.metrics.catalog import ALL_REALS, parse_metric, parse_metrics


@pytest.mark.parametrize("name, kind, num_gen, num_real, k", [
    ("fid50k_full", "fid", 50000, ALL_REALS, 3),
    ("fid50k", "fid", 50000, 50000, 3),
    ("kid50k_full", "kid", 50000, ALL_REALS, 3),
    ("pr50k3_full", "pr", 50000, ALL_REALS, 3),
    ("pr10k5", "pr", 10000, 10000, 5),
    ("is50k", "is", 50000, None, 3),
    ("fid500_full", "fid", 500, ALL_REALS, 3),
    ("realism1k3_full", "realism", 1000, ALL_REALS, 3),
])
def test_names_give_kind_counts_and_neighbourhood(name, kind, num_gen, num_real, k):
    spec = parse_metric(name)
    assert (spec.name, spec.kind, spec.num_gen, spec.num_real, spec.k) == (name, kind, num_gen, num_real, k)


def test_num_gen_replaces_the_count_and_the_name_says_so():
    assert parse_metric("fid50k_full", num_gen=1000).name == "fid1k_full"
    assert parse_metric("pr50k3_full", num_gen=250).name == "pr0.25k3_full"
    assert parse_metric("pr0.25k3_full").num_gen == 250
    assert parse_metric("fid50k", num_gen=2000).num_real == 2000


def test_ppl_names_carry_the_nvlabs_settings():
    spec = parse_metric("ppl_wend")
    assert spec.kind == "ppl" and spec.num_gen == 50000
    assert spec.ppl["space"] == "w" and spec.ppl["sampling"] == "end"
    assert parse_metric("ppl_zfull", num_gen=64).num_gen == 64


@pytest.mark.parametrize("name", ["fid", "fidk", "pr50k_full", "is50k_full", "lpips50k", "fid50k_ful"])
def test_unknown_names_are_errors_that_list_the_known_forms(name):
    with pytest.raises(ValueError, match="fid50k_full.*pr50k3_full"):
        parse_metric(name)


def test_lists_are_split_and_deduplicated():
    assert [s.name for s in parse_metrics("fid50k_full, kid50k_full,fid50k_full")] == ["fid50k_full", "kid50k_full"]
    with pytest.raises(ValueError, match="No metric"):
        parse_metrics(" , ")
