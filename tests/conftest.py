"""Fixtures shared by the test modules."""
from __future__ import annotations

import sys

import pytest
import torch

from lightning_stylegan import registry
from lightning_stylegan.dependency_noise import hide_dependency_noise


def pytest_configure(config):
    """The dependency warnings the command hides, hidden in every test too (installed here, before
    pytest's per-test warning capture copies the filters)."""
    hide_dependency_noise()


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path for throwaway distributions; the registry forgets them afterwards."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    registry.clear_cache()
    yield folder
    registry.clear_cache()
    for name in [m for m in sys.modules if m.startswith("lsg_test_")]:
        del sys.modules[name]


@pytest.fixture
def tiny_ckpt(tmp_path):
    """A checkpoint of small random 16x16 RGB networks (see ``tiny_networks.tiny_module``)."""
    from tiny_networks import tiny_checkpoint

    return tiny_checkpoint(tmp_path / "tiny.ckpt")


@pytest.fixture
def one_thread():
    """Small networks on a shared 2-core machine run faster on one thread than on two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
