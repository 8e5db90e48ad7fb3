"""Where the project's shared data folder is: `$ARFACE_SHARED`, else `../shared` beside the checkout.

Used by tests, benchmarks and the embedded defaults; nothing in the package requires it.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


PACKAGE_DIR = Path(__file__).resolve().parent
INSTALLED_PROTOCOLS = PACKAGE_DIR / "protocols"  # where `pip install .` / a wheel puts them (setup.py maps them)
CHECKOUT_PROTOCOLS = REPO_ROOT / "protocols"  # a checkout (and an editable install of it)


def protocols_dir() -> Path:
    """The declarative `protocols/` folder (protocol specs, model presets, the paper's tables).

    `$ARFACE_PROTOCOLS` if set (a folder of one's own); else the copy shipped inside an installed package
    (`arface_repro/protocols`, present only in a non-editable install: a checkout has none); else the
    checkout's top-level `protocols/`. The installed copy comes first because beside an installed package
    (site-packages) an unrelated top-level `protocols/` folder could exist."""
    env = os.environ.get("ARFACE_PROTOCOLS")
    if env:
        return Path(env)
    if INSTALLED_PROTOCOLS.is_dir():
        return INSTALLED_PROTOCOLS
    return CHECKOUT_PROTOCOLS


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
