"""``convert`` chooses the converter plugin that reads a network pickle (entry-point group
``lightning_stylegan.converters``): the built-in ``stylegan2``, throwaway plugins written as
installed distributions, and the errors for none, several or broken converters."""
from __future__ import annotations

import pytest
import torch
from nvlabs_format import nvlabs_kwargs, write_snapshot
from plugin_site import write_distribution
from tiny_networks import tiny_module

from lightning_stylegan import registry
from lightning_stylegan.converters.base import Converted, child, generator_record
from lightning_stylegan.converters.stylegan2 import Stylegan2Converter
from lightning_stylegan.network_files import load_networks
from lightning_stylegan.tools.convert import ConversionError, convert, main, pickle_networks
from lightning_stylegan.tools.restricted_pickle import PersistentRecord, load_network_pickle

pytestmark = pytest.mark.usefixtures("one_thread")
GROUP = registry.GROUPS["converter"]

# A converter that takes every pickle whose G_ema has z_dim 32 (as the built-in also does) and
# records that it ran by zeroing w_avg.
GREEDY = '''
from lightning_stylegan.converters.base import NetworkConverter, generator_record
from lightning_stylegan.converters.stylegan2 import nvlabs_networks

class Greedy(NetworkConverter):
    """Takes what the built-in takes."""
    api_version = 1

    def handles(self, records):
        return generator_record(records).init_kwargs.get("z_dim") == 32

    def networks(self, records):
        hparams, G, D, G_ema = nvlabs_networks(records)
        G_ema.mapping.w_avg.zero_()
        return hparams, G, D, G_ema
'''
BROKEN_IMPORT = "raise ImportError('lsg_test_broken needs a missing library')\n"
BROKEN_HANDLES = '''
from lightning_stylegan.converters.base import NetworkConverter

class Crash(NetworkConverter):
    api_version = 1

    def handles(self, records):
        raise KeyError("synthesis")
'''


def snapshot(tmp_path):
    module = tiny_module()
    G_kwargs, D_kwargs = nvlabs_kwargs(module)
    return module, write_snapshot(tmp_path / "network-snapshot.pkl", module.G, G_kwargs, module.D, D_kwargs,
                                  module.G_ema)


def test_the_built_in_stylegan2_converter_is_a_registered_plugin():
    spec = registry.index("converter")["stylegan2"]
    assert spec.distribution == "lightning-stylegan"
    assert registry.load("converter", "stylegan2") is Stylegan2Converter


def test_a_stylegan2_pickle_goes_to_the_built_in(tmp_path):
    module, path = snapshot(tmp_path)
    records = load_network_pickle(path)
    assert Stylegan2Converter().handles(records)
    converted = pickle_networks(records, path)
    assert isinstance(converted, Converted) and converted.hparams["generator"]["topology"] == "skip"
    assert torch.equal(converted.G_ema.mapping.w_avg, module.G_ema.mapping.w_avg)


def test_the_built_in_takes_stylegan2_ada_generators_only(tmp_path):
    """synthesis_kwargs, or StyleGAN2's blocks with only the Generator's own kwargs (all defaults);
    flat synthesis kwargs (NVlabs' stylegan3 repository) and StyleGAN3 networks are others'."""
    module, path = snapshot(tmp_path)
    records = load_network_pickle(path)
    kwargs = records["G_ema"].init_kwargs
    assert Stylegan2Converter().handles(records)
    synthesis = kwargs.pop("synthesis_kwargs")
    assert Stylegan2Converter().handles(records)  # Generator(...) with the default synthesis_kwargs
    kwargs.update(synthesis)
    assert not Stylegan2Converter().handles(records)  # flat: channel_base, ... beside z_dim
    assert not Stylegan2Converter().handles(stylegan3_records())


def test_two_converters_reading_one_pickle_is_an_error_naming_both(tmp_path, site):
    module, path = snapshot(tmp_path)
    write_distribution(site, "greedy-pkg", {GROUP: {"greedy": "lsg_test_greedy:Greedy"}}, {"lsg_test_greedy": GREEDY},
                       version="0.3")
    with pytest.raises(ConversionError) as error:
        convert(path, tmp_path / "x.ckpt")
    message = str(error.value)
    assert "more than one installed converter plugin" in message
    assert "'greedy' (greedy-pkg 0.3)" in message and "'stylegan2' (lightning-stylegan" in message


def test_a_plugin_converter_builds_the_networks_it_takes(tmp_path, site, monkeypatch):
    """With the built-in out of the way (a pickle it does not read), the plugin's networks are used."""
    module, path = snapshot(tmp_path)
    write_distribution(site, "greedy-pkg", {GROUP: {"greedy": "lsg_test_greedy:Greedy"}}, {"lsg_test_greedy": GREEDY})
    monkeypatch.setattr(Stylegan2Converter, "handles", lambda self, records: False)
    networks = load_networks(convert(path, tmp_path / "x.ckpt"))
    assert torch.count_nonzero(networks.G_ema.mapping.w_avg) == 0  # the plugin's mark
    assert torch.equal(networks.G.mapping.fc0.weight, module.G.mapping.fc0.weight)


def test_broken_converters_do_not_stop_the_others(tmp_path, site):
    module, path = snapshot(tmp_path)
    write_distribution(site, "broken-pkg", {GROUP: {"broken": "lsg_test_broken:Nothing"}},
                       {"lsg_test_broken": BROKEN_IMPORT})
    write_distribution(site, "crash-pkg", {GROUP: {"crash": "lsg_test_crash:Crash"}},
                       {"lsg_test_crash": BROKEN_HANDLES})
    assert load_networks(convert(path, tmp_path / "x.ckpt")).hparams["generator"]["topology"] == "skip"
    # ... and are reported when nothing reads the file.
    records = load_network_pickle(path)
    kwargs = records["G_ema"].init_kwargs
    kwargs.update(kwargs.pop("synthesis_kwargs"))  # flat, as no installed converter reads them
    records.pop("G")
    with pytest.raises(ConversionError) as error:
        pickle_networks(records, path)
    message = str(error.value)
    assert "no installed converter plugin reads this network pickle" in message
    assert "lsg_test_broken needs a missing library" in message and "'crash' (crash-pkg 1.0)" in message
    assert "KeyError" in message and "stylegan2 (lightning-stylegan" in message


def stylegan3_records() -> dict:
    """The shape of an NVlabs StyleGAN3 G_ema: persistence records bare class names."""
    def record(class_name, modules=None):
        return PersistentRecord(class_name, (), {}, {}, {}, modules or {}, {})

    synthesis = record("SynthesisNetwork", {"input": record("SynthesisInput"), "L0_36_512": record("SynthesisLayer")})
    return {"G_ema": record("Generator", {"mapping": record("MappingNetwork"), "synthesis": synthesis})}


def test_a_stylegan3_pickle_without_its_plugin_names_the_package(monkeypatch):
    monkeypatch.setattr(registry, "names", lambda kind: ["stylegan2"] if kind == "converter" else [])
    records = stylegan3_records()
    assert child(generator_record(records), "synthesis", "input").class_name == "SynthesisInput"
    with pytest.raises(ConversionError) as error:
        pickle_networks(records, "stylegan3-t-ffhqu-256x256.pkl")
    message = str(error.value)
    for words in ["stylegan3-t-ffhqu-256x256.pkl is an NVlabs StyleGAN3 network pickle", "not installed",
                  "lightning-stylegan-stylegan3", "pip install ./plugins/stylegan3"]:
        assert words in message, (words, message)


def test_a_pickle_without_a_generator_is_refused(tmp_path, capsys):
    module = tiny_module()
    _, D_kwargs = nvlabs_kwargs(module)
    path = tmp_path / "d_only.pkl"
    import pickle

    from nvlabs_format import _easy, _nvlabs_modules, _record

    with _nvlabs_modules() as (reconstruct, easy_dict):
        with open(path, "wb") as file:
            pickle.dump({"D": _record(module.D, "", True, "Discriminator", _easy(D_kwargs, easy_dict), reconstruct,
                                      easy_dict, "# source")}, file)
    code = main(["--src", str(path), "--out", str(tmp_path / "x.ckpt")])
    err = capsys.readouterr().err
    assert code == 2 and err == "error: The pickle has neither G_ema nor G\n"
