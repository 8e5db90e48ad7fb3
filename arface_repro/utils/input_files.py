"""Opening input files safely: regular files only, sizes bounded before anything is read.

A FIFO, a character device such as /dev/zero, a socket or a folder where a file is expected would block a
reader forever or feed it bytes until memory runs out. `open_regular` checks with `os.stat` before opening,
opens with O_NONBLOCK (so a FIFO swapped in after the check cannot block the open) and checks the opened
descriptor again with `os.fstat`; anything but a regular file is a FormatError naming the file and what it is.
`read_capped` also refuses a file larger than the caller's cap before reading a byte of it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from arface_repro.errors import FormatError, MissingDataError

MiB = 1 << 20


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _size_text(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n} bytes"


def check_regular(path: str | os.PathLike, what: str = "file") -> os.stat_result:
    """os.stat of `path` (symlinks followed) if it is a regular file; MissingDataError / FormatError otherwise."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise MissingDataError(f"{p}: {what} not found") from None
    except OSError as exc:
        raise FormatError(f"{p}: cannot read the {what} ({exc.strerror or type(exc).__name__})") from None
    if not stat.S_ISREG(st.st_mode):
        raise FormatError(f"{p}: is {_kind(st.st_mode)}; expected a regular file as the {what}")
    return st


def check_size(path: str | os.PathLike, size: int, max_bytes: int | None, what: str) -> None:
    if max_bytes is not None and size > max_bytes:
        raise FormatError(f"{path}: the {what} is {_size_text(size)}; at most {_size_text(max_bytes)} is read "
                          f"(a larger file is not a {what} this package knows)")


def open_regular(path: str | os.PathLike, what: str = "file", max_bytes: int | None = None):
    """A binary file object for `path`, a regular file of at most `max_bytes` (checked before and after opening)."""
    p = Path(path)
    check_size(p, check_regular(p, what).st_size, max_bytes, what)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise MissingDataError(f"{p}: {what} not found") from None
    except OSError as exc:
        raise FormatError(f"{p}: cannot read the {what} ({exc.strerror or type(exc).__name__})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # replaced between the stat and the open
            raise FormatError(f"{p}: is {_kind(st.st_mode)}; expected a regular file as the {what}")
        check_size(p, st.st_size, max_bytes, what)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_capped(path: str | os.PathLike, what: str = "file", max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file of at most `max_bytes` (a file growing while read is cut at the cap + refused)."""
    with open_regular(path, what, max_bytes) as fh:
        try:
            data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
        except OSError as exc:
            raise FormatError(f"{path}: cannot read the {what} ({exc.strerror or type(exc).__name__})") from None
    if max_bytes is not None:
        check_size(path, len(data), max_bytes, what)
    return data
