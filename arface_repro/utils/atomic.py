"""Atomic file output: write to a temp file in the same folder, fsync, then rename.

An interrupted run therefore never leaves a half-written result, table or checkpoint behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it is renamed onto `path`, on error removed.

    Use it for writers that want a file name (np.savez, torch.save, fig.savefig).
    The temp name keeps the suffix of `path` so that libraries which append one do not.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions of a new file
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[Any]:
    """Open a temp file for writing that replaces `path` only when the block finishes cleanly."""
    if "r" in mode or "a" in mode:
        raise ValueError("atomic_open is for writing a whole new file ('w' or 'wb')")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            yield fh


def write_json_atomic(path: str | os.PathLike, obj: Any, indent: int = 1) -> Path:
    """Write `obj` as JSON to `path` atomically and return the path."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=indent, sort_keys=False, allow_nan=False)
        fh.write("\n")
    return Path(path)
