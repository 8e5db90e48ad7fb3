"""The ROC's counts per distinct score, from sorted impostor and genuine scores, in one compiled pass (numba).

Walking both sorted arrays from the top, each distinct value v (descending) gives one ROC point: fps = how
many impostor scores are >= v, tps = how many genuine scores are >= v — the integers
`sklearn.metrics.roc_curve` accumulates (its thresholds are the distinct scores, descending). The point
(0, 0) comes first, as sklearn adds it. sklearn keeps, with drop_intermediate=True,
both ends, and every inner point where fps or tps changes slope (its second difference is not zero).
Integer work only: no rounding is involved. `kept_roc_counts` does this walk and returns only the points
sklearn keeps (no array as long as the scores), and `strict_counts` the full curve's point that the
'strict' rule reads, from the sorted arrays alone (tests/test_roc_table.py holds the full walk in numpy as
their reference).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _merge_kept(imp, gen):
    """The walk's points filtered as sklearn's drop_intermediate keeps them, decided on the fly: point m
    (1 <= m < last) is kept when m is 1 or the step into point m + 1 differs from the step into point m (a
    non-zero second difference)."""
    ni = imp.shape[0]
    ng = gen.shape[0]
    fps = np.empty(ni + ng + 1, np.int64)    # the worst case; only the kept prefix is touched and returned
    tps = np.empty(ni + ng + 1, np.int64)
    fps[0] = 0
    tps[0] = 0
    n_kept = 1
    i = ni - 1
    j = ng - 1
    m = 0            # index of the last point produced
    cf = 0           # its counts
    ct = 0
    df = 0           # the step into it
    dt = 0
    while i >= 0 or j >= 0:
        if j < 0 or (i >= 0 and imp[i] >= gen[j]):
            v = imp[i]
        else:
            v = gen[j]
        nf = cf
        nt = ct
        while i >= 0 and imp[i] == v:
            nf += 1
            i -= 1
        while j >= 0 and gen[j] == v:
            nt += 1
            j -= 1
        # point m + 1 = (nf, nt): now point m's fate is known
        if m == 1 or (m >= 2 and (nf - cf != df or nt - ct != dt)):
            fps[n_kept] = cf
            tps[n_kept] = ct
            n_kept += 1
        df = nf - cf
        dt = nt - ct
        cf = nf
        ct = nt
        m += 1
    if m >= 1:       # the last point is always kept
        fps[n_kept] = cf
        tps[n_kept] = ct
        n_kept += 1
    return fps[:n_kept].copy(), tps[:n_kept].copy()


@njit(cache=True, nogil=True)
def _split(scores, labels):
    n_gen = 0
    finite = True
    for k in range(scores.shape[0]):
        if labels[k]:
            n_gen += 1
        if not np.isfinite(scores[k]):
            finite = False
    imp = np.empty(scores.shape[0] - n_gen, scores.dtype)
    gen = np.empty(n_gen, scores.dtype)
    i = 0
    j = 0
    for k in range(scores.shape[0]):
        if labels[k]:
            gen[j] = scores[k]
            j += 1
        else:
            imp[i] = scores[k]
            i += 1
    return imp, gen, finite


def split_scores(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(impostor scores, genuine scores, all finite) in one compiled pass: `scores[labels == 0]`,
    `scores[labels != 0]` in their order, and `np.isfinite(scores).all()`."""
    return _split(np.ascontiguousarray(scores), np.ascontiguousarray(labels))


def kept_roc_counts(impostor_sorted: np.ndarray, genuine_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fps, tps) of the points sklearn keeps with drop_intermediate=True, with the leading (0, 0) point:
    the full curve's fps[keep], tps[keep], without its full-length arrays."""
    return _merge_kept(np.ascontiguousarray(impostor_sorted),
                       np.ascontiguousarray(genuine_sorted, impostor_sorted.dtype))


def strict_counts(impostor_sorted: np.ndarray, genuine_sorted: np.ndarray, fars) -> list[int | None]:
    """Per target FAR, the genuine count (tps) at the last point of the full ROC whose FPR = fps / n_impostors
    (float64 division, as the curve's) does not exceed it — the point the 'strict' rule reads — or None where
    no point qualifies (a negative target).

    FPR is non-decreasing along the curve, so the qualifying points are those with fps <= K, K the largest
    count with K / n <= far; they are the distinct values above the (K + 1)-th largest impostor score v, and
    the last of them has every genuine score above v counted: tps = #(genuine > v) (all of them when K = n)."""
    n_imp = int(impostor_sorted.size)
    n_gen = int(genuine_sorted.size)
    out: list[int | None] = []
    for far in fars:
        far = float(far)
        if math.isnan(far) or far == math.inf:              # numpy's searchsorted puts NaN after every FPR
            out.append(n_gen)
            continue
        k = min(n_imp, max(-1, int(far * n_imp))) if far > -math.inf else -1   # a first guess, corrected below
        while k + 1 <= n_imp and (k + 1) / n_imp <= far:
            k += 1
        while k >= 0 and k / n_imp > far:
            k -= 1
        if k < 0:
            out.append(None)
        elif k >= n_imp:
            out.append(n_gen)
        else:
            v = impostor_sorted[n_imp - 1 - k]
            out.append(n_gen - int(np.searchsorted(genuine_sorted, v, side="right")))
    return out
