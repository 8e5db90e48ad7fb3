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
