"""The plugin registry, through real entry points: the installed package's own, and throwaway
distributions written as ``*.dist-info`` folders on ``sys.path`` (what pip leaves behind)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_site import write_distribution

from lightning_stylegan import registry

BUILT_INS = {
    "normalization": {"adain", "pixel", "pin", "demod", "modulate", "none"},
    "generator": {"original", "skip", "residual", "revised", "stylegan1"},
    "discriminator": {"original", "skip", "residual", "revised", "stylegan1"},
    "growth": {"none"},
    "loss": {"logistic", "hinge", "rpgan"},
}

GOOD_PLUGIN = '''
from lightning_stylegan.normalizations.demod import Demodulation

class Plugin(Demodulation):
    """A test plugin."""
    api_version = {api_version}
'''


NORM = registry.GROUPS["normalization"]


def test_built_ins_are_found_through_the_projects_own_entry_points():
    for kind, expected in BUILT_INS.items():
        found = registry.index(kind)
        assert expected <= set(found), kind
        for name in expected:
            assert found[name].distribution == "lightning-stylegan"
            assert registry.load(kind, name).api_version == registry.API_VERSION


def test_unknown_name_lists_available_and_suggests_closest():
    with pytest.raises(registry.PluginError) as error:
        registry.load("normalization", "demodd")
    message = str(error.value)
    assert "Did you mean 'demod'?" in message
    for name in BUILT_INS["normalization"]:
        assert name in message


def test_unknown_kind_lists_kinds():
    with pytest.raises(registry.PluginError, match="normalization, generator, discriminator, growth, loss, feature_extractor"):
        registry.names("normalisations")


def test_indexing_imports_nothing(site):
    write_distribution(site, "lazy-pkg", {NORM: {"lazy": "lsg_test_lazy:Plugin"}},
                       {"lsg_test_lazy": GOOD_PLUGIN.format(api_version=1)})
    assert "lazy" in registry.index("normalization")
    assert "lsg_test_lazy" not in sys.modules
    assert registry.load("normalization", "lazy").__doc__ == "A test plugin."
    assert "lsg_test_lazy" in sys.modules


def test_two_distributions_claiming_one_name_is_an_error_naming_both(site):
    write_distribution(site, "rival-pkg", {NORM: {"demod": "lsg_test_rival:Plugin"}},
                       {"lsg_test_rival": GOOD_PLUGIN.format(api_version=1)}, version="2.5")
    with pytest.raises(registry.PluginError) as error:
        registry.load("normalization", "demod")
    assert "lightning-stylegan" in str(error.value) and "rival-pkg 2.5" in str(error.value)
    assert registry.load("normalization", "pin")  # the other names still work


def test_the_same_distribution_seen_twice_is_not_a_conflict(site, tmp_path, monkeypatch):
    entries = {NORM: {"twice": "lsg_test_twice:Plugin"}}
    write_distribution(site, "twice-pkg", entries, {"lsg_test_twice": GOOD_PLUGIN.format(api_version=1)})
    second = tmp_path / "second_site"
    second.mkdir()
    write_distribution(second, "twice-pkg", entries)
    monkeypatch.syspath_prepend(str(second))
    registry.clear_cache()
    assert registry.load("normalization", "twice").api_version == 1


def test_broken_plugin_is_reported_and_breaks_nothing_else(site):
    write_distribution(site, "broken-pkg", {NORM: {"broken": "lsg_test_broken:Plugin"}},
                       {"lsg_test_broken": "raise ImportError('needs libfoo')\n"})
    with pytest.raises(registry.PluginError) as error:
        registry.load("normalization", "broken")
    assert "broken-pkg 1.0" in str(error.value) and "needs libfoo" in str(error.value)
    rows = {row.spec.name: row for row in registry.describe("normalization")}
    assert "needs libfoo" in rows["broken"].error
    assert rows["demod"].error is None and rows["demod"].description


def test_api_version_mismatch_is_a_clear_error(site):
    write_distribution(site, "future-pkg", {NORM: {"future": "lsg_test_future:Plugin"}},
                       {"lsg_test_future": GOOD_PLUGIN.format(api_version=2)})
    with pytest.raises(registry.PluginError, match="targets registry API version 2.*provides version 1"):
        registry.load("normalization", "future")


def test_missing_api_version_is_a_clear_error(site):
    write_distribution(site, "old-pkg", {NORM: {"old": "lsg_test_old:Plugin"}},
                       {"lsg_test_old": "class Plugin:\n    pass\n"})
    with pytest.raises(registry.PluginError, match="does not declare `api_version`"):
        registry.load("normalization", "old")


def test_a_third_party_plugin_builds_into_a_generator(site):
    from lightning_stylegan.networks import Generator

    write_distribution(site, "third-pkg", {NORM: {"third": "lsg_test_third:Plugin"}},
                       {"lsg_test_third": GOOD_PLUGIN.format(api_version=1)})
    G = Generator(img_resolution=8, z_dim=8, w_dim=8, channel_base=64, channel_max=8,
                  mapping_layers=1, normalization="third")
    assert G(__import__("torch").randn(2, 8)).shape == (2, 3, 8, 8)
    assert registry.provenance(G.plugins())["normalization"] == {
        "name": "third", "distribution": "third-pkg", "version": "1.0"}


def run_cli(*args: str, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    return subprocess.run(["lightning-stylegan", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_plugins_command_lists_every_built_in():
    result = run_cli("plugins")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "DISTRIBUTION", "VERSION", "DESCRIPTION"]
    listed = {(line.split()[0], line.split()[1]) for line in lines[1:]}
    for kind, expected in BUILT_INS.items():
        assert {(kind, name) for name in expected} <= listed
    demod = next(line for line in lines if line.split()[:2] == ["normalization", "demod"])
    assert "lightning-stylegan" in demod and "demodulation" in demod


def test_plugins_command_filters_by_kind():
    result = run_cli("plugins", "--kind", "generator")
    assert result.returncode == 0, result.stderr
    kinds = {line.split()[0] for line in result.stdout.splitlines()[1:]}
    assert kinds == {"generator"}


def test_plugins_command_survives_a_broken_plugin(site):
    write_distribution(site, "broken-pkg", {NORM: {"broken": "lsg_test_broken:Plugin"}},
                       {"lsg_test_broken": "import a_module_that_does_not_exist\n"})
    result = run_cli("plugins", "--kind", "normalization", extra_path=site)
    assert result.returncode == 0, result.stderr
    broken = next(line for line in result.stdout.splitlines() if line.split()[1] == "broken")
    assert "BROKEN" in broken and "a_module_that_does_not_exist" in broken
    assert "1 plugin(s) cannot be used" in result.stderr
    assert any(line.split()[1] == "demod" and "BROKEN" not in line for line in result.stdout.splitlines()[1:])


def test_plugins_command_rejects_an_unknown_kind():
    result = run_cli("plugins", "--kind", "normalisation")
    assert result.returncode == 2 and "invalid choice" in result.stderr
