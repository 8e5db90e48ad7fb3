"""Where the project's shared data folder is: `$ARFACE_SHARED`, else `../shared` beside the checkout.

Used by tests, benchmarks and the embedded defaults; nothing in the package requires it.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def protocols_dir() -> Path:
    """The declarative `protocols/` folder of the checkout (protocol specs, model presets, the paper's tables).

    `$ARFACE_PROTOCOLS` overrides it (for an installed copy whose checkout lives elsewhere)."""
    env = os.environ.get("ARFACE_PROTOCOLS")
    return Path(env) if env else REPO_ROOT / "protocols"


def shared_dir() -> Path | None:
    """The shared folder if it exists, else None."""
    env = os.environ.get("ARFACE_SHARED")
    candidates = [Path(env)] if env else [REPO_ROOT.parent / "shared", Path.cwd().parent / "shared"]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None


def shared_path(*parts: str) -> Path | None:
    """A path inside the shared folder, or None when the folder or the path is absent."""
    root = shared_dir()
    if root is None:
        return None
    p = root.joinpath(*parts)
    return p if p.exists() else None
