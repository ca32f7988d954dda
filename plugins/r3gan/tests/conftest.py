"""Fixtures the R3GAN plugin's tests share."""
import pytest
import torch


@pytest.fixture
def one_thread():
    """Small networks on a shared 2-core machine run faster on one thread than on two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
