"""Row-pair dot products in float64, bit-identical to numpy's `np.sum(a[i1] * a[i2], -1)`, without temporaries.

numpy sums a contiguous float64 row by pairwise summation (`pairwise_sum_DOUBLE` in numpy's
`_core/src/umath/loops_utils.h.src`): fewer than 8 values are added left to right from 0.0; up to
PW_BLOCKSIZE = 128 values go into 8 accumulators r[j] (r[j] = x[j], then r[j] += x[i + j] for each whole
group of 8), combined as ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), and the values past the last
whole group are then added one by one; a longer row is split at n2 = n/2 rounded down to a multiple of 8 and
the two halves' sums added. The reduction starts from add's identity, so the row's result is 0.0 + that sum
(which turns a -0.0 into 0.0). The elementwise product `a * b` is one rounded float64 multiplication per
element, stored before it is summed.

`pair_dots` does exactly these operations in exactly this order, in a kernel compiled by numba with
fastmath off (LLVM then neither reassociates nor contracts a multiply and an add into an FMA), reading the
two template rows in place; tests/test_numpy_order_dot.py compares every score bit for bit with the numpy
expression. numpy's reduction hands the inner loop at most its buffer size (8192) values at a time; for
longer rows `pair_dots` refuses (MAX_DIM) rather than guess how the pieces are combined.

Speed: a pair reads 2 rows (8 KiB at d = 512) for 1,024 flops, so the order of the pairs decides the speed.
Pairs are grouped by their first row (counting sort on first-row // G, G rows filling one core's L2, `cache_bytes()`; pairs
already sorted by first row, as IJB's pair lists are, are grouped where they lie, bounds found by bisection)
and cut into work items of about equal size, handed out to the threads one at a time (numba prange, chunk
size 1); within an item, pairs are visited in order of their second
row (counting sort), so each second row is fetched once per item and used by its pairs in a row while the
item's G first rows stay in cache; the item's pair positions and rows are copied in that order, so the
scoring loop reads them in sequence. Results are written at the pairs' original positions. numba's SLP
vectoriser is switched on while these kernels compile: it packs the 8 independent accumulators into vector
registers, lane by lane the same operations (no reassociation with fastmath off).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from numba import config as numba_config
from numba import get_num_threads, get_parallel_chunksize, njit, prange, set_num_threads, set_parallel_chunksize, uint64

from arface_repro.utils.cpus import l2_cache_bytes

PW_BLOCKSIZE = 128          # numpy's PW_BLOCKSIZE
MAX_DIM = 8192              # numpy's default ufunc buffer size: rows up to this length are summed in one call
PAIR_BLOCK = 1 << 20        # most pairs per parallel work item: each second row fetched once per item


def cache_bytes() -> int:
    """Bytes of first rows per work item: as many float64 rows as fill one core's L2 (measured on a 2-core EPYC
    with a 1 MiB L2, IJB-C size: 1 MiB of first rows 1.35-1.56 s against 1.74-2.33 s with half a MiB), kept
    within 256 KiB .. 4 MiB."""
    return min(max(l2_cache_bytes(), 1 << 18), 1 << 22)


@njit(cache=True, fastmath=False, nogil=True, inline="always")
def _block_sum(a, b, s, n):
    """numpy's pairwise_sum_DOUBLE on the products a[s + k] * b[s + k], k < n <= PW_BLOCKSIZE.

    Unsigned indices: numba then emits no negative-index wraparound, and LLVM's SLP vectoriser packs the
    eight independent accumulators into vector registers (lane by lane the same operations in the same
    order; no reassociation is allowed with fastmath off)."""
    s = uint64(s)
    n = uint64(n)
    if n < uint64(8):
        res = 0.0
        for k in range(n):
            res += a[s + uint64(k)] * b[s + uint64(k)]
        return res
    r0 = a[s] * b[s]
    r1 = a[s + uint64(1)] * b[s + uint64(1)]
    r2 = a[s + uint64(2)] * b[s + uint64(2)]
    r3 = a[s + uint64(3)] * b[s + uint64(3)]
    r4 = a[s + uint64(4)] * b[s + uint64(4)]
    r5 = a[s + uint64(5)] * b[s + uint64(5)]
    r6 = a[s + uint64(6)] * b[s + uint64(6)]
    r7 = a[s + uint64(7)] * b[s + uint64(7)]
    whole = n - n % uint64(8)
    i = uint64(8)
    while i < whole:
        j = s + i
        r0 += a[j] * b[j]
        r1 += a[j + uint64(1)] * b[j + uint64(1)]
        r2 += a[j + uint64(2)] * b[j + uint64(2)]
        r3 += a[j + uint64(3)] * b[j + uint64(3)]
        r4 += a[j + uint64(4)] * b[j + uint64(4)]
        r5 += a[j + uint64(5)] * b[j + uint64(5)]
        r6 += a[j + uint64(6)] * b[j + uint64(6)]
        r7 += a[j + uint64(7)] * b[j + uint64(7)]
        i += uint64(8)
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[s + i] * b[s + i]
        i += uint64(1)
    return res


@njit(cache=True, fastmath=False, nogil=True, inline="always")
def _block_sum_pair(a, c, b, s):
    """(`_block_sum(a, b, s, 128)`, `_block_sum(c, b, s, 128)`): two rows against one row b, their operations
    exactly, in the same order; each value of b is loaded once for both. The scoring loop is bound by loads
    (two rows of 4 KiB per pair at d = 512, every value used once): two pairs with the same second row load
    3 rows instead of 4. (Written for two rows: with more, numba's SLP vectoriser no longer packs the
    accumulators into vector registers.)"""
    s = uint64(s)
    a0 = a[s] * b[s]
    a1 = a[s + uint64(1)] * b[s + uint64(1)]
    a2 = a[s + uint64(2)] * b[s + uint64(2)]
    a3 = a[s + uint64(3)] * b[s + uint64(3)]
    a4 = a[s + uint64(4)] * b[s + uint64(4)]
    a5 = a[s + uint64(5)] * b[s + uint64(5)]
    a6 = a[s + uint64(6)] * b[s + uint64(6)]
    a7 = a[s + uint64(7)] * b[s + uint64(7)]
    c0 = c[s] * b[s]
    c1 = c[s + uint64(1)] * b[s + uint64(1)]
    c2 = c[s + uint64(2)] * b[s + uint64(2)]
    c3 = c[s + uint64(3)] * b[s + uint64(3)]
    c4 = c[s + uint64(4)] * b[s + uint64(4)]
    c5 = c[s + uint64(5)] * b[s + uint64(5)]
    c6 = c[s + uint64(6)] * b[s + uint64(6)]
    c7 = c[s + uint64(7)] * b[s + uint64(7)]
    i = uint64(8)
    while i < uint64(PW_BLOCKSIZE):
        k = s + i
        v0 = b[k]
        v1 = b[k + uint64(1)]
        v2 = b[k + uint64(2)]
        v3 = b[k + uint64(3)]
        v4 = b[k + uint64(4)]
        v5 = b[k + uint64(5)]
        v6 = b[k + uint64(6)]
        v7 = b[k + uint64(7)]
        a0 += a[k] * v0
        a1 += a[k + uint64(1)] * v1
        a2 += a[k + uint64(2)] * v2
        a3 += a[k + uint64(3)] * v3
        a4 += a[k + uint64(4)] * v4
        a5 += a[k + uint64(5)] * v5
        a6 += a[k + uint64(6)] * v6
        a7 += a[k + uint64(7)] * v7
        c0 += c[k] * v0
        c1 += c[k + uint64(1)] * v1
        c2 += c[k + uint64(2)] * v2
        c3 += c[k + uint64(3)] * v3
        c4 += c[k + uint64(4)] * v4
        c5 += c[k + uint64(5)] * v5
        c6 += c[k + uint64(6)] * v6
        c7 += c[k + uint64(7)] * v7
        i += uint64(8)
    return (((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)),
            ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)))



@contextmanager
def _slp_vectorizer():
    """numba's SLP vectoriser (off by default) for the kernels compiled in this block; config restored after."""
    before = numba_config.SLP_VECTORIZE
    numba_config.SLP_VECTORIZE = True
    try:
        yield
    finally:
        numba_config.SLP_VECTORIZE = before


def summation_plan(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy's recursive split of a row of n values as (block starts, block lengths, postfix program).

    Program entries k >= 0 push the sum of block k, -1 pops two sums and pushes (first + second). (The
    kernels run this program instead of recursing: numba's on-disk cache cannot reload recursive functions.)"""
    starts: list[int] = []
    lens: list[int] = []
    program: list[int] = []

    def split(s: int, m: int) -> None:
        if m <= PW_BLOCKSIZE:
            program.append(len(starts))
            starts.append(s)
            lens.append(m)
            return
        m2 = m // 2
        m2 -= m2 % 8
        split(s, m2)
        split(s + m2, m - m2)
        program.append(-1)

    split(0, int(n))
    return np.array(starts, np.int64), np.array(lens, np.int64), np.array(program, np.int64)


@njit(cache=True, fastmath=False, nogil=True)
def _row_dot(a, b, starts, lens, program, stack):
    """np.sum(a * b) for two contiguous float64 rows by the plan of `summation_plan(len(a))`."""
    top = 0
    for op in program:
        if op >= 0:
            stack[top] = _block_sum(a, b, starts[op], lens[op])
            top += 1
        else:
            stack[top - 2] = stack[top - 2] + stack[top - 1]
            top -= 1
    return 0.0 + stack[0]


def numpy_row_dot(a: np.ndarray, b: np.ndarray) -> float:
    """np.sum(a * b) for two float64 vectors, bit for bit (see the module docstring)."""
    a = np.ascontiguousarray(a, np.float64)
    b = np.ascontiguousarray(b, np.float64)
    starts, lens, program = summation_plan(a.shape[0])
    with _slp_vectorizer():
        return float(_row_dot(a, b, starts, lens, program, np.empty(program.size)))


@njit(cache=True, nogil=True)
def _group_by_first_row(i1, group_rows, n_groups):
    """Pair positions ordered by group of their first row (i1 // group_rows), stable; and the group bounds."""
    n = i1.shape[0]
    bounds = np.zeros(n_groups + 1, np.int64)
    for p in range(n):
        bounds[i1[p] // group_rows + 1] += 1
    for g in range(n_groups):
        bounds[g + 1] += bounds[g]
    fill = bounds[:-1].copy()
    order = np.empty(n, np.int64)
    for p in range(n):
        g = i1[p] // group_rows
        order[fill[g]] = p
        fill[g] += 1
    return order, bounds


@njit(cache=True, nogil=True)
def _index_summary(i1, i2):
    """(smallest index, largest index over both arrays, whether i1 is non-decreasing) in one pass."""
    lo = min(i1[0], i2[0])
    hi = max(i1[0], i2[0])
    ascending = True
    prev = i1[0]
    for p in range(i1.shape[0]):
        a = i1[p]
        b = i2[p]
        lo = min(lo, min(a, b))
        hi = max(hi, max(a, b))
        if a < prev:
            ascending = False
        prev = a
    return np.int64(lo), np.int64(hi), ascending


@njit(cache=True, fastmath=False, nogil=True, parallel=True)
def _pair_dots(feats, i1, i2, out, n_rows, order, items, starts, lens, program):
    """Scores of the pairs at order[k] for k in the items' ranges; an empty `order` stands for the identity (pairs
    already grouped by first row: i1 sorted)."""
    d = feats.shape[1]
    identity = order.shape[0] == 0
    for it in prange(items.shape[0]):
        s = items[it, 0]
        e = items[it, 1]
        stack = np.empty(program.shape[0])
        # counting sort of the item's pairs by their second row: each second row is fetched once per item and
        # used by all its pairs in a row, while the item's few first rows stay in cache
        count = np.zeros(n_rows + 1, np.int64)
        for k in range(s, e):
            count[i2[k if identity else order[k]] + 1] += 1
        for r in range(n_rows):
            count[r + 1] += count[r]
        # the pairs' positions and rows copied in that order, so that the loop below reads them in sequence
        # (positions as offsets in the item, int32: an item holds at most 2^30 pairs; rows in the
        # indices' own dtype: half the bytes of int64 for IJB's int32 positions)
        sub_p = np.empty(e - s, np.int32)
        sub_1 = np.empty(e - s, i1.dtype)
        sub_2 = np.empty(e - s, i2.dtype)
        for k in range(s, e):
            p = k if identity else order[k]
            r = i2[p]
            c = count[r]
            sub_p[c] = k - s
            sub_1[c] = i1[p]
            sub_2[c] = r
            count[r] = c + 1
        k = 0
        n_item = e - s
        while k < n_item:
            p = s + sub_p[k] if identity else order[s + sub_p[k]]
            a = feats[sub_1[k]]
            b = feats[sub_2[k]]
            if (d == 512 or d == 256) and k + 1 < n_item and sub_2[k + 1] == sub_2[k]:
                # two pairs with one second row (the common case in this order): b loaded once for both
                a2 = feats[sub_1[k + 1]]
                p2 = s + sub_p[k + 1] if identity else order[s + sub_p[k + 1]]
                x0, y0 = _block_sum_pair(a, a2, b, 0)
                x1, y1 = _block_sum_pair(a, a2, b, 128)
                if d == 512:
                    x2, y2 = _block_sum_pair(a, a2, b, 256)
                    x3, y3 = _block_sum_pair(a, a2, b, 384)
                    out[p] = 0.0 + ((x0 + x1) + (x2 + x3))
                    out[p2] = 0.0 + ((y0 + y1) + (y2 + y3))
                else:
                    out[p] = 0.0 + (x0 + x1)
                    out[p2] = 0.0 + (y0 + y1)
                k += 2
                continue
            if d == 512:    # the common widths, with numpy's tree written out (constant block lengths)
                out[p] = 0.0 + ((_block_sum(a, b, 0, 128) + _block_sum(a, b, 128, 128))
                                + (_block_sum(a, b, 256, 128) + _block_sum(a, b, 384, 128)))
            elif d == 256:
                out[p] = 0.0 + (_block_sum(a, b, 0, 128) + _block_sum(a, b, 128, 128))
            elif d == 128:
                out[p] = 0.0 + _block_sum(a, b, 0, 128)
            else:
                out[p] = _row_dot(a, b, starts, lens, program, stack)
            k += 1


def _work_items(bounds: np.ndarray, most: int) -> np.ndarray:
    """(start, stop) ranges of the grouped order, at most `most` pairs each: a group is its own item (cut into
    equal pieces when longer than `most`), except that consecutive groups of fewer than most // 8 pairs share one, up to that
    size (so the number of items, each with its own per-row counts, stays ~ pairs / (most // 8) at most)."""
    small = max(1, most // 8)
    items = []
    open_start = None
    for g0, e in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        if e == g0:
            continue
        if e - g0 < small:                                   # a small group: into the open item
            if open_start is None:
                open_start = g0
            elif e - open_start > small:
                items.append((open_start, g0))
                open_start = g0
            continue
        if open_start is not None:
            items.append((open_start, g0))
            open_start = None
        parts = -(-(e - g0) // most)                         # a long group: cut into equal pieces
        cuts = [g0 + (e - g0) * k // parts for k in range(parts + 1)]
        items.extend(zip(cuts[:-1], cuts[1:]))
    if open_start is not None:
        items.append((open_start, int(bounds[-1])))
    return np.array(items, np.int64).reshape(-1, 2)


def pair_dots(feats: np.ndarray, i1: np.ndarray, i2: np.ndarray, out: np.ndarray | None = None,
              threads: int | None = None, block: int = PAIR_BLOCK) -> np.ndarray:
    """out[p] = np.sum(feats[i1[p]] * feats[i2[p]], -1) for every pair p, bit for bit, in parallel.

    `feats`: (rows, d) float64 (made C-contiguous if it is not), d <= MAX_DIM; `i1`, `i2`: row indices,
    checked to lie in range. `threads`: numba threads for this call (default numba's setting)."""
    feats = np.ascontiguousarray(feats, np.float64)
    if feats.ndim != 2:
        raise ValueError(f"features must be a 2-D array, got {feats.ndim} dimension(s)")
    if feats.shape[1] > MAX_DIM:
        raise ValueError(f"rows of {feats.shape[1]} values: numpy's summation order is reproduced up to {MAX_DIM}")
    # int32 or int64 indices are read as they are (IJB's template positions are int32: no copies of 15M entries)
    i1 = np.ascontiguousarray(i1)
    i2 = np.ascontiguousarray(i2)
    if i1.dtype != i2.dtype or i1.dtype not in (np.int32, np.int64):
        i1, i2 = i1.astype(np.int64), i2.astype(np.int64)
    if i1.shape != i2.shape or i1.ndim != 1:
        raise ValueError(f"pair index arrays of shapes {i1.shape} and {i2.shape}: expected two equal 1-D arrays")
    n_rows = feats.shape[0]
    lo, hi, ascending = _index_summary(i1, i2) if i1.size else (0, 0, True)
    if lo < 0 or hi >= n_rows:
        raise ValueError(f"pair indices out of range of the {n_rows} feature rows")
    if out is None:
        out = np.empty(i1.size, np.float64)
    elif out.shape != i1.shape or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError("out must be a contiguous float64 array with one entry per pair")
    if i1.size == 0:
        return out
    before = get_num_threads()
    chunk_before = get_parallel_chunksize()
    if threads is not None:
        set_num_threads(max(1, min(int(threads), before)))
    try:
        # pairs grouped by their first row (groups of rows filling `cache_bytes()`), cut into work items of at most
        # `block` pairs and at least 4 items per thread (balance)
        group_rows = max(1, cache_bytes() // (8 * max(1, feats.shape[1])))
        n_groups = -(-n_rows // group_rows)
        if ascending:       # already grouped (IJB pair lists are sorted by first template): bounds by bisection
            order = np.empty(0, np.int64)
            edges = np.minimum(np.arange(n_groups + 1, dtype=np.int64) * group_rows, n_rows)
            bounds = np.searchsorted(i1, edges.astype(i1.dtype))   # i1's dtype: no widened copy of i1
        else:
            order, bounds = _group_by_first_row(i1, group_rows, n_groups)
        most = max(1024, min(int(block), 1 << 30, -(-i1.size // (4 * get_num_threads()))))   # int32 offsets in an item
        # work items handed out one at a time (dynamic schedule): a thread slowed by other work takes fewer
        set_parallel_chunksize(1)
        with _slp_vectorizer():
            _pair_dots(feats, i1, i2, out, n_rows, order, _work_items(bounds, most), *summation_plan(feats.shape[1]))
    finally:
        set_parallel_chunksize(chunk_before)
        set_num_threads(before)
    return out
