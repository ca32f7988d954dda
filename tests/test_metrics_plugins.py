"""The metric plugin group ``lightning_stylegan.metrics``: the built-ins are found through their
entry points, a third-party metric installed as a throwaway distribution is parsed and computed
next to them with the statistics they share, and broken, clashing or misbehaving plugins get
errors that name them."""
from __future__ import annotations

import numpy as np
import pytest
from metric_plugins import install_tiny_extractor
from plugin_site import write_distribution
from tiny_networks import tiny_checkpoint

from lightning_stylegan import registry
from lightning_stylegan.data.dataset import ImageDataset
from lightning_stylegan.metrics import evaluate
from lightning_stylegan.metrics.catalog import parse_metric, parse_metrics
from lightning_stylegan.metrics.evaluate import MetricOptions, compute_metrics
from lightning_stylegan.metrics.feature_stats import generator_stats
from lightning_stylegan.metrics.features import load_extractor
from lightning_stylegan.network_files import load_generator

# featnorm<count>: the mean L2 norm of the raw features of generated images (declared raw rows);
# pixhist<count>: per-image mean pixel values, returned as a per-image array.
METRIC_SOURCE = '''
import re
import numpy as np
import torch
from lightning_stylegan.metrics.base import Metric, MetricSpec


class FeatureNorm(Metric):
    """Mean L2 norm of generated-image features."""
    api_version = 1
    forms = "featnorm50 (any count)"

    def parse(self, name, num_gen=None):
        match = re.fullmatch(r"featnorm(\\d+)", name)
        if not match:
            return None
        count = num_gen or int(match[1])
        return MetricSpec(f"featnorm{count}", "featnorm", count)

    def raw_features(self, spec, context):
        return [("generated", context.extractor_name("inception"), spec.num_gen)]

    def compute(self, spec, context):
        stats = context.generator_stats(context.extractor_name("inception"), spec.num_gen)
        return {spec.name: float(stats.features().norm(dim=1).mean())}


class PixelMeans(Metric):
    """Per-image mean pixel values of a few generated images."""
    api_version = 1
    forms = "pixmean4"

    def parse(self, name, num_gen=None):
        return MetricSpec("pixmean4", "pixmean", 4) if name == "pixmean4" else None

    def compute(self, spec, context):
        G = context.G
        z = torch.randn(spec.num_gen, G.z_dim, generator=torch.Generator().manual_seed(context.options.seed))
        with torch.no_grad():
            means = G(z, None).mean(dim=(1, 2, 3)).numpy()
        return {spec.name: float(means.mean())}, {spec.name: means}


class ClaimsFid(Metric):
    """Claims a built-in name."""
    api_version = 1
    forms = "fid50k_full"

    def parse(self, name, num_gen=None):
        return MetricSpec(name, "fid", 10) if name == "fid50k_full" else None


class ReturnsList(Metric):
    """Returns a list instead of a dict."""
    api_version = 1
    forms = "badresult1"

    def parse(self, name, num_gen=None):
        return MetricSpec(name, "bad", 1) if name == "badresult1" else None

    def compute(self, spec, context):
        return [1.0]
'''


@pytest.fixture
def metric_site(site):
    install_tiny_extractor(site)
    write_distribution(site, "lsg-test-metrics", {"lightning_stylegan.metrics": {
        "featnorm": "lsg_test_metrics:FeatureNorm", "pixmean": "lsg_test_metrics:PixelMeans",
        "badresult": "lsg_test_metrics:ReturnsList", "missing": "lsg_test_metrics_nowhere:Gone"}},
        modules={"lsg_test_metrics": METRIC_SOURCE})
    registry.clear_cache()
    return site


@pytest.fixture
def tiny_g(tmp_path):
    return load_generator(tiny_checkpoint(tmp_path / "tiny.ckpt"))


def test_the_built_in_metrics_are_plugins_of_the_lightning_stylegan_distribution():
    found = registry.index("metric")
    assert {"fid", "kid", "pr", "is", "realism", "ppl"} <= set(found)
    assert all(found[name].distribution == "lightning-stylegan" for name in ("fid", "kid", "pr", "is", "realism", "ppl"))
    assert parse_metric("kid50k_full").plugin == "kid" and parse_metric("ppl_wend").plugin == "ppl"


def test_a_third_party_metric_is_parsed_and_unknown_names_list_its_forms(metric_site):
    spec = parse_metric("featnorm30")
    assert (spec.name, spec.kind, spec.num_gen, spec.plugin) == ("featnorm30", "featnorm", 30, "featnorm")
    assert parse_metric("featnorm30", num_gen=12).name == "featnorm12"
    with pytest.raises(ValueError) as error:
        parse_metric("featnorm")
    message = str(error.value)
    assert "Unknown metric 'featnorm'" in message and "featnorm: featnorm50 (any count)" in message
    assert "fid50k_full" in message and "pr50k3_full" in message
    # the plugin that cannot be imported is named; every other one still works
    assert "'missing'" in message and "lsg_test_metrics_nowhere" in message


def test_two_plugins_claiming_one_name_are_named_both(metric_site):
    write_distribution(metric_site, "lsg-test-clash", {"lightning_stylegan.metrics": {
        "myfid": "lsg_test_metrics:ClaimsFid"}})
    registry.clear_cache()
    with pytest.raises(ValueError, match=r"'fid50k_full' is claimed by more than one metric plugin: "
                                         r"fid \(lightning-stylegan .*myfid \(lsg-test-clash 1.0\)"):
        parse_metric("fid50k_full")
    assert parse_metric("kid50k_full").plugin == "kid"


def test_a_plugin_metric_shares_the_generated_statistics_of_the_built_ins(metric_site, tiny_g, tmp_path, monkeypatch):
    """featnorm declares that it reads the raw rows of the generated statistics fid also uses: they
    are computed once, with the rows kept, and both values equal independent computations."""
    calls = []

    def counting(*args, **kwargs):
        calls.append(kwargs["keep_features"])
        return generator_stats(*args, **kwargs)

    monkeypatch.setattr(evaluate, "generator_stats", counting)
    dataset = ImageDataset("fashion-mnist", tiny_g.img_resolution, tiny_g.img_channels, max_images=40)
    options = MetricOptions(features="tiny", batch_size=16, cache_dir=str(tmp_path / "cache"), progress=False)
    specs = parse_metrics("fid20_full,featnorm20,pixmean4")
    results, per_image = compute_metrics(specs, tiny_g, dataset, options)
    assert calls == [True]  # one pass over the generated images, rows kept for featnorm
    expected = generator_stats(tiny_g, load_extractor("tiny"), 20, batch_size=16, keep_features=True, progress=False)
    assert results["featnorm20"] == pytest.approx(float(expected.features().norm(dim=1).mean()), rel=1e-6)
    alone, _ = compute_metrics(parse_metrics("fid20_full"), tiny_g, dataset, options)
    assert results["fid20_full"] == pytest.approx(alone["fid20_full"], rel=1e-9)
    assert per_image["pixmean4"].shape == (4,) and results["pixmean4"] == pytest.approx(per_image["pixmean4"].mean())


def test_the_built_ins_share_generated_and_real_statistics_as_before(metric_site, tiny_g, tmp_path, monkeypatch):
    """fid, kid and pr of one count on one extractor: one pass over generated and one over real
    images, with the rows kept (kid and pr read them)."""
    fakes, reals = [], []
    monkeypatch.setattr(evaluate, "generator_stats",
                        lambda *a, **k: fakes.append(k["keep_features"]) or generator_stats(*a, **k))
    original = evaluate.dataset_stats
    monkeypatch.setattr(evaluate, "dataset_stats", lambda *a, **k: reals.append(k["keep_features"]) or original(*a, **k))
    dataset = ImageDataset("fashion-mnist", tiny_g.img_resolution, tiny_g.img_channels, max_images=30)
    options = MetricOptions(features="tiny", batch_size=16, cache_dir=str(tmp_path / "cache"), progress=False)
    results, _ = compute_metrics(parse_metrics("fid20_full,kid20_full,pr0.02k3_full,is20"), tiny_g, dataset, options)
    assert fakes == [True] and reals == [True]
    assert set(results) == {"fid20_full", "kid20_full", "pr0.02k3_full_precision", "pr0.02k3_full_recall",
                            "is20_mean", "is20_std"}
    assert all(np.isfinite(value) for value in results.values())


def test_a_plugin_returning_something_else_is_named(metric_site, tiny_g):
    with pytest.raises(ValueError, match="metric plugin 'badresult' returned list for badresult1"):
        compute_metrics(parse_metrics("badresult1"), tiny_g, None, MetricOptions(progress=False))


def test_a_metric_comparing_with_reals_without_a_dataset_says_so(metric_site, tiny_g):
    with pytest.raises(ValueError, match="fid10_full compares with real images: give the dataset"):
        compute_metrics(parse_metrics("fid10_full"), tiny_g, None, MetricOptions(features="tiny", progress=False))


def test_plugins_command_lists_the_metric_kind(metric_site):
    rows = {row.spec.name: row for row in registry.describe("metric")}
    assert rows["featnorm"].description == "Mean L2 norm of generated-image features."
    assert rows["fid"].error is None and rows["fid"].description.startswith("Frechet Inception Distance")
    assert rows["missing"].error and "lsg_test_metrics_nowhere" in rows["missing"].error
