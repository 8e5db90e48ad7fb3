"""Ascending sort of a large float array by value buckets, on several threads (numba), values as `np.sort` gives.

Three compiled passes, each parallel over chunks or buckets. A value's fine bucket is floor((x - lo) * scale)
(lo, hi: the array's min and max; scale = n_buckets / (hi - lo), rounded once), its coarse bucket the fine
one >> FINE_BITS. (1) Coarse buckets counted per chunk; (2) each value copied to its coarse bucket's next free
slot (chunk by chunk, so every slot is known in advance; a few thousand coarse buckets keep every chunk's
write positions in cache, where one position per fine bucket would miss the cache on nearly every value);
(3) per coarse bucket, in cache: its values spread over its fine buckets (a counting sort) and every fine
bucket sorted in place (insertion sort when small). The fine bucket is a non-decreasing function of the value
(a rounded subtraction, a rounded product by a positive constant and a floor are each monotone; the last
bucket takes what rounds past it), and so is the coarse one; so bucket q holds only values below those of
bucket q + 1 at either level, and equal values (-0.0 and 0.0 included) fall into one bucket: the output holds
np.sort's values. Equal values that are
distinct bit patterns (-0.0 and 0.0) may stand in another order among themselves: callers compare values,
never the positions of equal ones.

Buckets are linear in value, about BUCKET_SIZE values each on average: for scores with a smooth
distribution (similarities) each bucket is small and is sorted in cache. A very skewed array (a few far
outliers) puts most values into a few buckets: the result is the same, only slower. Arrays with NaN or a
range that overflows float64 (hi - lo = inf), and arrays below MIN_SIZE, are sorted by `np.sort`.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange, set_num_threads

from arface_repro.utils.cpus import usable_cpus

MIN_SIZE = 1 << 16      # below this one np.sort is as fast
BUCKET_SIZE = 16        # values per bucket on average
INSERTION_MAX = 64      # buckets up to this size are sorted by insertion, larger ones by numba's quicksort
FINE_BITS = 8           # fine buckets per coarse bucket: 2 ** FINE_BITS


@njit(cache=True, nogil=True, inline="always")
def _fine_bucket(v, lo, scale, last):
    """The fine bucket of value v: floor((v - lo) * scale), the values rounding past `last` in the last one."""
    u = (np.float64(v) - lo) * scale
    return last if u >= last else np.int64(u)


@njit(cache=True, nogil=True, parallel=True)
def _bucket_sort(x, lo, scale, n_buckets, n_chunks):
    """Two levels of the one bucket function: values go to their coarse bucket (fine bucket >> FINE_BITS; few
    enough that every chunk's write positions stay in cache), then each coarse bucket, in cache, is spread over
    its fine buckets, and these are sorted."""
    n = x.shape[0]
    last = n_buckets - 1
    n_coarse = (last >> FINE_BITS) + 1
    counts = np.zeros((n_chunks, n_coarse), np.int64)
    for c in prange(n_chunks):
        for k in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            counts[c, _fine_bucket(x[k], lo, scale, last) >> FINE_BITS] += 1
    # slots: coarse bucket by coarse bucket, and within one chunk by chunk
    starts = np.empty(n_coarse + 1, np.int64)
    nxt = np.empty((n_chunks, n_coarse), np.int64)
    pos = 0
    for q in range(n_coarse):
        starts[q] = pos
        for c in range(n_chunks):
            nxt[c, q] = pos
            pos += counts[c, q]
    starts[n_coarse] = pos
    coarse = np.empty_like(x)
    for c in prange(n_chunks):
        for k in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            q = _fine_bucket(x[k], lo, scale, last) >> FINE_BITS
            coarse[nxt[c, q]] = x[k]
            nxt[c, q] += 1
    out = np.empty_like(x)
    width = 1 << FINE_BITS
    for q in prange(n_coarse):
        s = starts[q]
        e = starts[q + 1]
        if e == s:
            continue
        base = q << FINE_BITS
        fill = np.zeros(width + 1, np.int64)
        for i in range(s, e):
            fill[_fine_bucket(coarse[i], lo, scale, last) - base + 1] += 1
        for f in range(width):
            fill[f + 1] += fill[f]
        bounds = fill.copy()
        for i in range(s, e):
            f = _fine_bucket(coarse[i], lo, scale, last) - base
            out[s + fill[f]] = coarse[i]
            fill[f] += 1
        for f in range(width):
            b0 = s + bounds[f]
            b1 = s + bounds[f + 1]
            if b1 - b0 > INSERTION_MAX:
                out[b0:b1].sort()
            else:                       # insertion sort: the common small bucket
                for i in range(b0 + 1, b1):
                    v = out[i]
                    j = i - 1
                    while j >= b0 and out[j] > v:
                        out[j + 1] = out[j]
                        j -= 1
                    out[j + 1] = v
    return out


def sort_bucketed(x: np.ndarray, threads: int | None = None) -> np.ndarray:
    """np.sort(x)'s values for a 1-D float32/float64 array, on up to `threads` threads (default: the usable CPUs)."""
    x = np.ascontiguousarray(x).ravel()
    if x.size < MIN_SIZE or x.dtype not in (np.float32, np.float64):
        return np.sort(x)
    lo, hi = float(x.min()), float(x.max())
    span = hi - lo
    if not np.isfinite(span) or span <= 0:        # NaN, an overflowing range, or all values equal
        return np.sort(x)
    n_buckets = int(min(1 << 24, max(1, x.size // BUCKET_SIZE)))
    scale = n_buckets / span
    if not np.isfinite(scale):                     # a range so small that the scale overflows
        return np.sort(x)
    before = get_num_threads()
    n_threads = max(1, min(usable_cpus() if threads is None else int(threads), before))
    set_num_threads(n_threads)
    try:
        return _bucket_sort(x, lo, scale, n_buckets, n_threads)
    finally:
        set_num_threads(before)
