"""The ROC's counts per distinct score, from sorted impostor and genuine scores, in one compiled pass (numba).

Walking both sorted arrays from the top, each distinct value v (descending) gives one ROC point: fps = how
many impostor scores are >= v, tps = how many genuine scores are >= v — the integers
`sklearn.metrics.roc_curve` accumulates (its thresholds are the distinct scores, descending). The point
(0, 0) comes first, as sklearn adds it. `keep` marks the points sklearn keeps with drop_intermediate=True:
both ends, and every inner point where fps or tps changes slope (its second difference is not zero).
Integer work only: no rounding is involved.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _merge(imp, gen):
    ni = imp.shape[0]
    ng = gen.shape[0]
    fps = np.empty(ni + ng + 1, np.int64)
    tps = np.empty(ni + ng + 1, np.int64)
    fps[0] = 0
    tps[0] = 0
    i = ni - 1
    j = ng - 1
    k = 1
    cf = 0
    ct = 0
    while i >= 0 or j >= 0:
        if j < 0 or (i >= 0 and imp[i] >= gen[j]):
            v = imp[i]
        else:
            v = gen[j]
        while i >= 0 and imp[i] == v:
            cf += 1
            i -= 1
        while j >= 0 and gen[j] == v:
            ct += 1
            j -= 1
        fps[k] = cf
        tps[k] = ct
        k += 1
    keep = np.ones(k, np.bool_)
    for m in range(2, k - 1):
        keep[m] = (fps[m + 1] - 2 * fps[m] + fps[m - 1] != 0) or (tps[m + 1] - 2 * tps[m] + tps[m - 1] != 0)
    return fps[:k], tps[:k], keep


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


def roc_counts(impostor_sorted: np.ndarray, genuine_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fps, tps, keep) with the leading (0, 0) point, from ascending impostor and genuine scores of one dtype."""
    return _merge(np.ascontiguousarray(impostor_sorted), np.ascontiguousarray(genuine_sorted, impostor_sorted.dtype))
