"""An exclusive lock on an output folder, so that two runs never write into one folder at the same time.

`FolderLock(folder, what)` takes `fcntl.flock` on `folder/.arface.lock` without waiting: a second holder gets a
one-line ConfigError naming the folder and the first holder (pid, host, start time as the lock file records
them). The kernel releases a flock when its process ends, however it ends, so a run that crashed or was killed
never blocks the next one (its lock file is left behind, unlocked, and is taken over). A clean release removes
the file while still holding the lock; a taker checks after locking that the file it holds is still the one at
the path, and starts again otherwise, so the removal never lets two holders in.
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import os
import socket
from pathlib import Path

from arface_repro.errors import ConfigError

LOCK_NAME = ".arface.lock"


class FolderLock:
    def __init__(self, folder: str | os.PathLike, what: str = "run"):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_holder(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise ConfigError(f"{self.folder}: another {self.what} is writing to this folder "
                                      f"({holder or 'holder unknown'}; lock {self.path}); wait for it to end or choose "
                                      f"another output folder") from None
                raise
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:  # released (and removed) between our open and our lock: take the new file
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            started = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname() or 'host'} since {started}\n".encode())
            self._fd = fd
            return self
        raise ConfigError(f"{self.folder}: could not take the lock {self.path} (it kept changing)")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            try:
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    os.unlink(self.path)
            except FileNotFoundError:
                pass
        finally:
            os.close(fd)  # closing releases the flock

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace")
    except OSError:
        return ""
    return " ".join(text.split())
