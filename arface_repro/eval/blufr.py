"""BLUFR (Liao et al. 2014): an exact port of the official MATLAB `EvalROC.m` and `OpenSetROC.m`.

Verification: genuine/impostor = all distinct pairs of a trial's test set; thresholds are order statistics
of the impostor scores at k = MATLAB round(FAR * Nimp) (half away from zero), with the official special
cases at k = 0 (midpoint between the top impostor and the lowest genuine score above it, or the top
impostor + sqrt(eps) when none is above) and k = Nimp (min(lowest impostor, lowest genuine) − sqrt(eps)).
Open-set identification: each impostor probe's detection score is its best gallery score; a genuine probe
has its best mated score and that entry's rank in a stable descending sort.

Speed without changing a number: a trial has ~53 M impostor pairs, and sorting them (what the MATLAB code
does) dominates. Here the scores are computed blockwise in float32 and histogrammed into 65,535 bins; for
each needed order statistic only the impostors in its bin and the two bins either side are rescored
exactly in float64 and sorted. Because a bin (3.05e-5) is wider than twice the float32 scoring error
(≤ 1.1e-5 for unit vectors of 192 dims in the worst case), impostors two bins away are correctly ordered,
and the selected value is the exact float64 order statistic (see `_exact_kth_largest`). Genuine scores are
always computed in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from arface_repro.eval.kfold import l2_normalize
from arface_repro.io.blufr_config import BlufrConfig

SQRT_EPS = float(np.sqrt(np.finfo(np.float64).eps))
VERIFY_FARS = np.concatenate([[0.0], np.kron(10.0 ** np.arange(-8, 0), np.arange(1, 10)), [1.0]])
OSI_FARS = np.concatenate([[0.0], np.kron(10.0 ** np.arange(-4, 0), np.arange(1, 10)), [1.0]])
RANKS = np.concatenate([np.arange(1, 11), np.arange(20, 101, 10)])
REPORT_VERIFY_FAR = 1e-3   # VR @ FAR = 0.1 %
REPORT_OSI_FAR = 1e-2      # DIR @ FAR = 1 %, rank 1
REPORT_RANK = 1
N_BINS = 65535
_DUMP = N_BINS             # bin id for pairs that are not impostors (upper triangle, diagonal, genuine)


def matlab_round(x: np.ndarray) -> np.ndarray:
    """MATLAB's round: half away from zero (numpy's rounds half to even)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _far_index(grid: np.ndarray, far: float) -> int:
    idx = np.flatnonzero(np.isclose(grid, far, rtol=1e-12, atol=0))
    return int(idx[0])


def thresholds_from_impostors(far_points: np.ndarray, n_imp: int, kth_largest,
                              gen_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The official threshold rule. `kth_largest(ks)` returns the impostor scores of 1-based descending
    ranks `ks`; it is called once, with every rank needed (including 1 and n_imp)."""
    false_alarms = matlab_round(np.asarray(far_points) * n_imp).astype(np.int64)
    zero = false_alarms == 0
    one = false_alarms == n_imp
    mid = ~zero & ~one
    values = kth_largest(np.concatenate([false_alarms[mid], [1, n_imp]]))
    thr = np.zeros(len(far_points))
    thr[mid] = values[:-2]
    top, min_imp = float(values[-2]), float(values[-1])
    high = gen_scores[gen_scores > top]
    thr[zero] = (top + high.min()) / 2 if high.size else top + SQRT_EPS
    thr[one] = min(min_imp, float(gen_scores.min())) - SQRT_EPS
    return thr, false_alarms / n_imp


def _share_at_least(sorted_values: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """Fraction of values >= each threshold (values sorted ascending)."""
    return (sorted_values.size - np.searchsorted(sorted_values, thr, side="left")) / sorted_values.size


def eval_roc_reference(scores: np.ndarray, labels: np.ndarray, far_points=VERIFY_FARS):
    """Direct transcription of EvalROC for a small square score matrix (tests cross-check the fast path)."""
    n = len(labels)
    tri = np.tril(np.ones((n, n), dtype=bool), -1)
    same = labels[:, None] == labels[None, :]
    gen = scores[tri & same]
    imp = np.sort(scores[tri & ~same])[::-1]
    thr, far = thresholds_from_impostors(far_points, imp.size, lambda ks: imp[ks - 1], gen)
    vr = np.array([np.mean(gen >= t) for t in thr])
    return vr, far, thr


def _genuine_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j), i > j, with labels[i] == labels[j], vectorised per class size."""
    order = np.argsort(labels, kind="stable")
    sl = labels[order]
    starts = np.flatnonzero(np.r_[True, sl[1:] != sl[:-1]])
    sizes = np.diff(np.r_[starts, sl.size])
    ii, jj = [], []
    for size in np.unique(sizes[sizes > 1]):
        a, b = np.tril_indices(size, -1)
        st = starts[sizes == size]
        ii.append((st[:, None] + a[None, :]).ravel())
        jj.append((st[:, None] + b[None, :]).ravel())
    if not ii:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    i, j = order[np.concatenate(ii)], order[np.concatenate(jj)]
    return np.maximum(i, j), np.minimum(i, j)


def _rowdot(x: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = 1 << 14) -> np.ndarray:
    out = np.empty(i.size)
    for s in range(0, i.size, chunk):
        out[s:s + chunk] = np.einsum("ij,ij->i", x[i[s:s + chunk]], x[j[s:s + chunk]])
    return out


class _ImpostorBins:
    """Blockwise float32 scoring of the strict lower triangle, quantised to uint16 bins; genuine pairs,
    the diagonal and the upper triangle go to a dump bin so that only impostors are counted."""

    def __init__(self, x64: np.ndarray, gen_i: np.ndarray, gen_j: np.ndarray, block: int = 2048):
        self.x64 = x64
        n, d = x64.shape
        # The affine map score -> bin position is folded into the matrix product by one extra column:
        # [a*x, a + 0.5] . [y, 1] = a*(x.y) + a + 0.5, which for x.y in [-1, 1] lies in [0.5, 2a + 0.5]
        # and truncates to the bin index directly (bin width 1/a in score units).
        a = (N_BINS - 2) / 2.0
        self.scale = a
        left = np.empty((n, d + 1), dtype=np.float32)
        left[:, :d] = x64 * a
        left[:, d] = a + 0.5
        right = np.empty((n, d + 1), dtype=np.float32)
        right[:, :d] = x64
        right[:, d] = 1.0
        self.blocks: list[tuple[int, int, np.ndarray]] = []
        hist = np.zeros(N_BINS + 1, dtype=np.int64)
        order = np.argsort(gen_i, kind="stable")
        gi, gj = gen_i[order], gen_j[order]
        for r0 in range(0, n, block):
            r1 = min(n, r0 + block)
            q = (left[r0:r1] @ right[:r1].T).astype(np.uint16)
            q[:, r0:r1][np.triu(np.ones((r1 - r0, r1 - r0), dtype=bool))] = _DUMP
            lo, hi = np.searchsorted(gi, [r0, r1])
            q[gi[lo:hi] - r0, gj[lo:hi]] = _DUMP
            hist += np.bincount(q.ravel(), minlength=N_BINS + 1)
            self.blocks.append((r0, r1, q))
        self.hist = hist[:N_BINS]
        self.n_imp = int(self.hist.sum())
        self.cum_desc = np.cumsum(self.hist[::-1])[::-1]   # impostors in bins >= b

    def kth_largest(self, ks: np.ndarray) -> np.ndarray:
        return _exact_kth_largest(self, np.asarray(ks, dtype=np.int64))


def _exact_kth_largest(bins: _ImpostorBins, ks: np.ndarray) -> np.ndarray:
    """Exact float64 k-th largest impostor scores (1-based k) from the float32 histogram.

    For k, let b be the bin holding the k-th largest float32 score and A the number of impostors in bins
    >= b+3. Every impostor in bins >= b+3 is exactly above, and every one in bins <= b-3 exactly below,
    all impostors of bins b-2..b+2 (one whole bin separates them and the float32 error is under half a
    bin), so the exact k-th largest is the (k − A)-th largest exact score among bins b-2..b+2.
    """
    cum = bins.cum_desc
    # b_k = largest b with cum[b] >= k  (cum is non-increasing)
    b_k = np.searchsorted(-cum, -ks, side="right") - 1
    lut = np.zeros(N_BINS + 1, dtype=bool)
    for b in np.unique(b_k):
        lut[max(0, b - 2):min(N_BINS, b + 3)] = True
    cand_i, cand_j, cand_bin = [], [], []
    for r0, r1, q in bins.blocks:
        rr, cc = np.nonzero(lut[q])
        cand_i.append(rr + r0)
        cand_j.append(cc)
        cand_bin.append(q[rr, cc])
    ci, cj, cb = np.concatenate(cand_i), np.concatenate(cand_j), np.concatenate(cand_bin).astype(np.int64)
    order = np.argsort(cb, kind="stable")
    ci, cj, cb = ci[order], cj[order], cb[order]
    exact = _rowdot(bins.x64, ci, cj)
    out = np.empty(ks.size)
    for t, (k, b) in enumerate(zip(ks, b_k)):
        above = int(cum[b + 3]) if b + 3 < N_BINS else 0
        lo, hi = np.searchsorted(cb, [b - 2, b + 3])
        sel = np.sort(exact[lo:hi])[::-1]
        out[t] = sel[k - above - 1]
    return out


def eval_roc(x: np.ndarray, labels: np.ndarray, far_points=VERIFY_FARS, block: int = 2048):
    """EvalROC on features `x` (rows L2-normalised, float64) of one test set: (VR, FAR, thresholds)."""
    gi, gj = _genuine_pairs(labels)
    gen = np.sort(_rowdot(x, gi, gj))
    bins = _ImpostorBins(x, gi, gj, block)
    if bins.n_imp == 0 or gen.size == 0:
        raise ValueError("BLUFR verification needs both genuine and impostor pairs in the test set")
    thr, far = thresholds_from_impostors(far_points, bins.n_imp, bins.kth_largest, gen)
    return _share_at_least(gen, thr), far, thr


def open_set_roc(score: np.ndarray, gal_labels: np.ndarray, prob_labels: np.ndarray,
                 far_points=OSI_FARS, rank_points=RANKS):
    """OpenSetROC on a gallery × probe score matrix: (DIR[rank, far], FAR, thresholds)."""
    mated = gal_labels[:, None] == prob_labels[None, :]
    is_gen = mated.any(axis=0)
    imp = np.sort(score[:, ~is_gen].max(axis=0))[::-1]
    s_gen = score[:, is_gen]
    m_gen = mated[:, is_gen]
    masked = np.where(m_gen, s_gen, -np.inf)
    best = np.argmax(masked, axis=0)                      # first best mated entry
    cols = np.arange(s_gen.shape[1])
    gen_score = s_gen[best, cols]
    # rank in a stable descending sort: entries strictly greater, plus equal ones that come earlier
    greater = (s_gen > gen_score[None, :]).sum(axis=0)
    equal_before = ((s_gen == gen_score[None, :]) & (np.arange(s_gen.shape[0])[:, None] < best[None, :])).sum(axis=0)
    gen_rank = greater + equal_before + 1
    n_imp = imp.size
    if n_imp == 0:
        raise ValueError("open-set identification needs impostor probes (classes absent from the gallery)")
    thr, far = thresholds_from_impostors(np.asarray(far_points), n_imp, lambda ks: imp[ks - 1], gen_score)
    dir_ = np.array([[np.mean((gen_score >= t) & (gen_rank <= r)) for t in thr] for r in rank_points])
    return dir_, far, thr


@dataclass
class BlufrResult:
    vr: np.ndarray        # (trials, len(VERIFY_FARS))
    veri_far: np.ndarray
    dir: np.ndarray       # (trials, len(RANKS), len(OSI_FARS))
    osi_far: np.ndarray
    metrics: dict = field(default_factory=dict)
    per_trial: dict = field(default_factory=dict)


def _mean_minus_std(v: np.ndarray) -> float:
    return float((np.mean(v) - (np.std(v, ddof=1) if v.size > 1 else 0.0)) * 100.0)


def evaluate_blufr(features: np.ndarray, config: BlufrConfig, trials: list[int] | None = None,
                   progress=None) -> BlufrResult:
    """All (or the given 0-based) trials on features aligned with `config.image_list` (row k = image k)."""
    x = l2_normalize(np.asarray(features, dtype=np.float64))
    labels = config.labels
    trials = list(range(config.n_trials)) if trials is None else list(trials)
    vrs, dirs, vfar, ofar = [], [], None, None
    for t in trials:
        ti = config.test_index[t]
        vr, vfar, _ = eval_roc(x[ti], labels[ti])
        gal, prob = config.gal_index[t], config.prob_index[t]
        score = x[gal] @ x[prob].T
        d, ofar, _ = open_set_roc(score, labels[gal], labels[prob])
        vrs.append(vr)
        dirs.append(d)
        if progress is not None:
            progress(t)
    vr = np.array(vrs)
    dir_ = np.array(dirs)
    vi, oi, ri = _far_index(VERIFY_FARS, REPORT_VERIFY_FAR), _far_index(OSI_FARS, REPORT_OSI_FAR), int(np.flatnonzero(RANKS == REPORT_RANK)[0])
    metrics = {"VR@FAR=0.1%": _mean_minus_std(vr[:, vi]), "DIR@FAR=1%": _mean_minus_std(dir_[:, ri, oi]),
               "VR@FAR=0.1%.mean": float(vr[:, vi].mean() * 100), "DIR@FAR=1%.mean": float(dir_[:, ri, oi].mean() * 100)}
    per_trial = {"trial": [t + 1 for t in trials], "VR@FAR=0.1%": (vr[:, vi] * 100).tolist(),
                 "DIR@FAR=1%": (dir_[:, ri, oi] * 100).tolist()}
    return BlufrResult(vr, vfar, dir_, ofar, metrics, per_trial)
