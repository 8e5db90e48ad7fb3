"""Running independent jobs in worker processes so that Ctrl-C stops everything cleanly.

`run_unordered(fn, args, workers)` yields `(arg, fn(arg))` as jobs finish, in `workers` spawned processes.
The workers ignore SIGINT: a Ctrl-C (sent by the terminal to the whole process group) reaches the parent only,
which terminates the workers and raises KeyboardInterrupt once, so the user sees one message instead of a
traceback per process, and no worker keeps training after the command has ended. Any other error in the parent
(or a worker's exception, re-raised in the parent) also terminates the workers.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
from typing import Any, Callable, Iterable, Iterator


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call(item):
    fn, arg = item
    return arg, fn(arg)


def run_unordered(fn: Callable[[Any], Any], args: Iterable[Any], workers: int) -> Iterator[tuple[Any, Any]]:
    """`(arg, fn(arg))` for every arg, in completion order; `fn` must be a module-level function (spawn)."""
    pool = mp.get_context("spawn").Pool(max(1, int(workers)), initializer=_ignore_sigint)
    try:
        yield from pool.imap_unordered(_call, [(fn, a) for a in args])
    except BaseException:
        pool.terminate()
        pool.join()
        raise
    pool.close()
    pool.join()
