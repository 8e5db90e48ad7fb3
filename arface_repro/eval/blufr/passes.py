"""The two passes of the BLUFR verification over the strict lower triangle of the quantised score matrix,
compiled with numba (arface_repro.eval.blufr.metric explains the method).

Both read q[i, j] (uint16 bin of the float32 score of images i > j) and the images' set-membership bits
(bit t of masks[i]: image i is in test set t); neither computes a score, so both are integer work whose
result does not depend on the order of the pairs or on the number of threads.

* `set_histograms`: per set, how many pairs of that set fall in each bin (genuine pairs included; the
  caller subtracts them). Work items take interleaved rows (row i holds i pairs, so every item gets about
  the same number) and count into their own (bins × sets) table, summed at the end; a pair adds its
  membership bits to one (bin) row of the table, without a branch per set.
* `candidate_pairs`: (i, j) of every pair that belongs to at least one set and whose bin is wanted, in
  row-major order (i ascending, then j), by a counting pass and a filling pass.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

MAX_SETS = 32                                     # membership bits in a uint32


@njit(cache=True, nogil=True, parallel=True)
def _histograms(q, masks, n_bins, n_sets, n_work):
    n = q.shape[0]
    parts = np.zeros((n_work, n_bins, n_sets), np.int64)
    for w in prange(n_work):
        h = parts[w]
        for i in range(w + 1, n, n_work):
            mi = masks[i]
            if mi == 0:
                continue
            qi = q[i]
            for j in range(i):
                m = mi & masks[j]
                if m == 0:
                    continue
                hb = h[qi[j]]
                for t in range(n_sets):   # branch-free: a pair is in ~half the sets, unpredictably
                    hb[t] += (m >> np.uint32(t)) & np.uint32(1)
    total = np.zeros((n_bins, n_sets), np.int64)
    for w in range(n_work):
        total += parts[w]
    return total


def set_histograms(q: np.ndarray, masks: np.ndarray, n_sets: int, n_bins: int) -> np.ndarray:
    """(n_sets, n_bins) int64: per set, its pairs (i > j, both images in the set) counted per bin of q."""
    if not 0 < n_sets <= MAX_SETS:
        raise ValueError(f"{n_sets} sets: between 1 and {MAX_SETS} are counted in one pass")
    n_work = 2 * max(1, get_num_threads())
    hist = _histograms(q, np.ascontiguousarray(masks, np.uint32), n_bins, n_sets, n_work)
    return np.ascontiguousarray(hist.T)


@njit(cache=True, nogil=True, parallel=True)
def _count_candidates(q, masks, want, n_work):
    n = q.shape[0]
    counts = np.zeros(n, np.int64)
    for w in prange(n_work):
        for i in range(w + 1, n, n_work):
            mi = masks[i]
            if mi == 0:
                continue
            qi = q[i]
            c = 0
            for j in range(i):
                if want[qi[j]] and (mi & masks[j]) != 0:
                    c += 1
            counts[i] = c
    return counts


@njit(cache=True, nogil=True, parallel=True)
def _fill_candidates(q, masks, want, offsets, ci, cj, n_work):
    n = q.shape[0]
    for w in prange(n_work):
        for i in range(w + 1, n, n_work):
            mi = masks[i]
            if mi == 0:
                continue
            qi = q[i]
            k = offsets[i]
            for j in range(i):
                if want[qi[j]] and (mi & masks[j]) != 0:
                    ci[k] = i
                    cj[k] = j
                    k += 1


def candidate_pairs(q: np.ndarray, masks: np.ndarray, want: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) int64 of the pairs i > j with masks[i] & masks[j] != 0 and want[q[i, j]], row-major."""
    masks = np.ascontiguousarray(masks, np.uint32)
    want = np.ascontiguousarray(want, np.bool_)
    n_work = 2 * max(1, get_num_threads())
    counts = _count_candidates(q, masks, want, n_work)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    ci = np.empty(int(offsets[-1]), np.int64)
    cj = np.empty(int(offsets[-1]), np.int64)
    _fill_candidates(q, masks, want, offsets, ci, cj, n_work)
    return ci, cj
