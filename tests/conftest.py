"""Shared test fixtures: the `../shared` data folder (skip with a reason when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from arface_repro.shared_data import shared_dir


@pytest.fixture(scope="session")
def shared() -> Path:
    root = shared_dir()
    if root is None:
        pytest.skip("../shared (or $ARFACE_SHARED) is absent: real-data test skipped")
    return root


def require(path: Path) -> Path:
    """Skip the calling test when a file inside the shared folder is missing."""
    if not path.exists():
        pytest.skip(f"{path} is absent from the shared folder")
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a module: on a shared 2-core machine, spinning OpenMP threads slow
    small models about 10×. Use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
