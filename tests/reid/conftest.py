"""Fixtures shared by the reid tests."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny convolutions run fastest on one thread, and the test machine's two cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
