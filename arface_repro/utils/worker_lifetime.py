"""Loader worker processes end with the process that started them.

PyTorch's DataLoader workers notice a parent that exits normally, but not one killed with SIGKILL (or by
the OOM killer): they are left running, holding memory and open files. `die_with_parent` is the
DataLoader's `worker_init_fn` for the package's loaders (`embed`/`evaluate` extraction, training). On Linux it
asks the kernel to send the worker SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG through ctypes: no
polling, nothing to clean up in a worker that only reads); elsewhere, or if prctl is unavailable, a daemon
thread polls the parent's pid every POLL_SECONDS and exits the worker when it changes. Either way a parent
that died before the worker got here is caught at once by comparing `os.getppid()` with the pid recorded
when the loader was made.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 1.0


def _prctl_pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _poll_parent(parent_pid: int) -> None:
    while True:
        time.sleep(POLL_SECONDS)
        if os.getppid() != parent_pid:
            os._exit(1)


def die_with_parent(worker_id: int, parent_pid: int) -> None:
    """worker_init_fn: end this worker when the process `parent_pid` ends (see module docstring)."""
    armed = _prctl_pdeathsig()
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    if not armed:
        threading.Thread(target=_poll_parent, args=(parent_pid,), daemon=True, name="parent-watch").start()


def worker_init() -> functools.partial:
    """The worker_init_fn for a DataLoader made in this process (picklable for spawned workers)."""
    return functools.partial(die_with_parent, parent_pid=os.getpid())
