"""Running independent jobs in worker processes so that Ctrl-C stops everything cleanly.

`run_unordered(fn, args, workers)` yields `(arg, fn(arg))` as jobs finish, in `workers` spawned processes
(a `ProcessPoolExecutor`: its workers may start processes of their own, e.g. DataLoader readers). The workers
ignore SIGINT: a Ctrl-C (sent by the terminal to the whole process group) reaches the parent only, which
terminates the workers and raises KeyboardInterrupt once, so the user sees one message instead of a traceback
per process, and no worker keeps training after the command has ended. Any other error in the parent (or a
worker's exception, re-raised in the parent) also terminates the workers.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _terminate(pool: ProcessPoolExecutor) -> None:
    stop = getattr(pool, "terminate_workers", None)  # public from Python 3.14
    if stop is not None:
        stop()
        return
    for proc in list((getattr(pool, "_processes", None) or {}).values()):  # the same, before 3.14
        if proc.is_alive():
            proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def run_unordered(fn: Callable[[Any], Any], args: Iterable[Any], workers: int) -> Iterator[tuple[Any, Any]]:
    """`(arg, fn(arg))` for every arg, in completion order; `fn` must be a module-level function (spawn)."""
    pool = ProcessPoolExecutor(max(1, int(workers)), mp_context=mp.get_context("spawn"), initializer=_ignore_sigint)
    try:
        futs = {pool.submit(fn, a): a for a in args}
        for f in as_completed(futs):
            yield futs[f], f.result()
    except BaseException:
        _terminate(pool)
        raise
    pool.shutdown(wait=True)
