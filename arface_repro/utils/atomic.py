"""Atomic file output: write to a temp file in the same folder, fsync, then rename.

An interrupted run therefore never leaves a half-written result, table or checkpoint behind. A run that is
killed outright (SIGKILL, power loss) cannot remove its temp file; temp names carry the writer's host and
process id (`.NAME.<host>-<pid>.<random>.tmp<suffix>`), and the next write of NAME by a writer of large files
(`atomic_path(..., clean_stale=True)`: RecordIO, feature stores, checkpoints) removes the temp files of NAME
whose process is gone (same host only; a live writer's file is never touched).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)
_HOST = re.sub(r"[^A-Za-z0-9_]+", "_", socket.gethostname() or "host")[:40] or "host"


def _writer_tag() -> str:
    return f"{_HOST}-{os.getpid()}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or cannot tell: keep its file
    return True


def stale_temp_files(path: str | os.PathLike) -> list[Path]:
    """Temp files left beside `path` by atomic writers of `path` on this host whose process no longer runs."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pat = re.compile(r"^\." + re.escape(path.name) + r"\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)\.[^/]*\.tmp"
                     + re.escape(path.suffix) + r"$")
    out = []
    for cand in path.parent.glob(f".{glob_escape(path.name)}.*.tmp*"):
        m = pat.match(cand.name)
        if m and m["host"] == _HOST and not _alive(int(m["pid"])) and cand.is_file():
            out.append(cand)
    return out


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def remove_stale_temp_files(path: str | os.PathLike) -> list[Path]:
    """Remove (and return) the temp files `stale_temp_files(path)` finds."""
    removed = []
    for p in stale_temp_files(path):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, clean_stale: bool = False) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it is renamed onto `path`, on error removed.

    Use it for writers that want a file name (np.savez, torch.save, fig.savefig).
    The temp name keeps the suffix of `path` so that libraries which append one do not.
    `clean_stale`: first remove the temp files killed writers of `path` left (`remove_stale_temp_files`; it lists
    the folder, so writers of large files ask for it: `.rec`/`.idx`, feature stores, checkpoints, not the many
    small files of an image tree).
    """
    path = Path(path)
    tmp_path = _temp_beside(path, clean_stale)
    try:
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _temp_beside(path: Path, clean_stale: bool) -> Path:
    """A new empty temp file beside `path` (its folder made if needed), named as the module docstring says."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if clean_stale:
        remove_stale_temp_files(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_writer_tag()}.", suffix=".tmp" + path.suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions of a new file
    return tmp_path


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_paths(paths: list[str | os.PathLike], clean_stale: bool = False) -> Iterator[list[Path]]:
    """Temp paths beside each of `paths`, committed as one unit when the block finishes cleanly.

    For paired outputs (a record and its `.scores.npz` sidecar, a `.rec` and its `.idx`). The LAST path is the
    file a reader opens to find the others (the record naming its sidecar by sha256, the `.idx` indexing the
    `.rec`). Commit: every temp file is written and fsynced; the old last file is removed; the others are renamed
    into place; the last one is renamed last. So at no moment does a last file stand beside partners of another
    write: a run killed between the renames leaves partners without their last file (a `.rec` without `.idx`,
    a sidecar without a record), which readers refuse; a failure raised between them also removes the partners
    already renamed, so an exit-2 failure leaves no new partner behind. On an error inside the block nothing is
    renamed or removed.
    """
    targets = [Path(p) for p in paths]
    if len(targets) < 2 or len({p.resolve() for p in targets}) != len(targets):
        raise ValueError("atomic_paths needs two or more distinct paths")
    temps: list[Path] = []
    done: list[Path] = []
    try:
        for p in targets:
            temps.append(_temp_beside(p, clean_stale))
        yield list(temps)
        for t in temps:
            _fsync(t)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(targets[-1])
        for t, p in zip(temps, targets):
            os.replace(t, p)
            done.append(p)
    except BaseException:
        for t in temps:
            with contextlib.suppress(FileNotFoundError):
                t.unlink()
        if len(done) < len(targets):
            for p in done:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
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
