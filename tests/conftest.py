"""Shared fixtures: real datasets that skip (or fail, under TGKIT_REQUIRE_DATA=1) when absent."""

import os

import pytest
import torch

from tgkit import data


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="module")
def one_thread():
    """Tiny networks on a CPU shared with other jobs: a second intra-op thread only waits for a core,
    and makes a module of such tests several times slower. `pytestmark = pytest.mark.usefixtures(...)`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def require_dataset(name: str, **kwargs):
    """Load a real dataset, or skip with the reason (fail when TGKIT_REQUIRE_DATA=1)."""
    try:
        return data.load_dataset(name, download=False, **kwargs)
    except data.DatasetNotFound as missing:
        if os.environ.get("TGKIT_REQUIRE_DATA") == "1":
            pytest.fail(f"TGKIT_REQUIRE_DATA=1 but {name} is missing: {missing}")
        pytest.skip(f"{name} not available: {missing}")
