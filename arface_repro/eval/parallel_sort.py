"""Ascending sort of a large numeric array on several threads.

numpy sorts the parts (its sort releases the GIL, so threads run in parallel), then a compiled pass (numba,
nogil) merges sorted pairs until one array is left. The values come out exactly as `np.sort` gives them,
except that equal values that are distinct bit patterns (-0.0 and 0.0) may stand in another order among
themselves: callers compare values (as the ROC's counts do), never the positions of equal ones. NaN is not
allowed (the callers refuse non-finite scores first).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from arface_repro.utils.cpus import usable_cpus

MIN_PARALLEL = 1 << 20   # below a million values one np.sort is as fast


@njit(cache=True, nogil=True)
def _merge_into(a, b, out):
    i = 0
    j = 0
    k = 0
    na = a.shape[0]
    nb = b.shape[0]
    while i < na and j < nb:
        if b[j] < a[i]:
            out[k] = b[j]
            j += 1
        else:
            out[k] = a[i]
            i += 1
        k += 1
    while i < na:
        out[k] = a[i]
        i += 1
        k += 1
    while j < nb:
        out[k] = b[j]
        j += 1
        k += 1


def _merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty(a.shape[0] + b.shape[0], a.dtype)
    _merge_into(a, b, out)
    return out


def sort_parallel(x: np.ndarray, threads: int | None = None) -> np.ndarray:
    """`np.sort(x)` of a 1-D array on up to `threads` threads (default: the usable CPUs)."""
    x = np.ascontiguousarray(x).ravel()
    n_threads = min(usable_cpus() if threads is None else max(1, int(threads)), max(1, x.size // MIN_PARALLEL))
    if n_threads < 2:
        return np.sort(x)
    bounds = np.linspace(0, x.size, n_threads + 1).astype(np.int64)
    with ThreadPoolExecutor(n_threads) as pool:
        parts = list(pool.map(np.sort, [x[bounds[k]:bounds[k + 1]] for k in range(n_threads)]))
        while len(parts) > 1:
            merged = list(pool.map(_merge, parts[0::2], parts[1::2]))
            parts = merged + ([parts[-1]] if len(parts) % 2 else [])
    return parts[0]
