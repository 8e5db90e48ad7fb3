"""BLUFR (Liao et al. 2014): an exact port of the official MATLAB `EvalROC.m` and `OpenSetROC.m`.

Verification: genuine/impostor = all distinct pairs of a trial's test set; thresholds are order statistics
of the impostor scores at k = MATLAB round(FAR * Nimp) (half away from zero), with the official special
cases at k = 0 (midpoint between the top impostor and the lowest genuine score above it, or the top
impostor + sqrt(eps) when none is above) and k = Nimp (min(lowest impostor, lowest genuine) − sqrt(eps)).
Open-set identification: each impostor probe's detection score is its best gallery score; a genuine probe
has its best mated score and that entry's rank in a stable descending sort.

Speed without changing a number: a trial has ~53 M impostor pairs, and sorting them (what the MATLAB code
does) dominates. Here the scores of all image pairs are computed once, blockwise in float32, and kept as
uint16 bin indices; each trial histograms its own impostor pairs into the 65,535 bins, and for
each needed order statistic only the impostors in its bin and the bin either side are rescored exactly in
float64 and sorted. Because a bin (3.05e-5) is wider than twice the float32 scoring error (≤ 1.2e-5 for
unit vectors of 192 dims in the worst case), the selected value is the exact float64 order statistic (see
`_exact_kth_largest` for the argument). Genuine scores are always computed in float64.
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
        members = order[starts[sizes == size][:, None] + np.arange(size)[None, :]]   # (classes, size)
        i, j = members[:, a].ravel(), members[:, b].ravel()
        ii.append(np.maximum(i, j))
        jj.append(np.minimum(i, j))
    if not ii:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(ii), np.concatenate(jj)


def _rowdot(x: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = 1 << 14) -> np.ndarray:
    """float64 scores x[i] . x[j]. Genuine and impostor scores both come from here, so identical
    feature vectors give bit-identical scores, as with the single matrix product of the MATLAB code."""
    out = np.empty(i.size)
    for s in range(0, i.size, chunk):
        out[s:s + chunk] = np.einsum("ij,ij->i", x[i[s:s + chunk]], x[j[s:s + chunk]])
    return out


class QuantizedGram:
    """The strict lower triangle of the float32 score matrix of all images, as uint16 bin indices.

    Computed once and shared by the trials (each trial's test set is a subset of the images), which
    cuts the matrix-product work of 10 trials about six-fold.
    """

    def __init__(self, x64: np.ndarray, block: int = 1024):
        self.x64 = x64
        n, d = x64.shape
        # The affine map score -> bin position is folded into the matrix product by one extra column:
        # [a*x, a + 0.5] . [y, 1] = a*(x.y) + a + 0.5, which for x.y in [-1, 1] lies in [0.5, 2a + 0.5]
        # and truncates to the bin index directly (bin width 1/a in score units).
        a = (N_BINS - 2) / 2.0
        left = np.empty((n, d + 1), dtype=np.float32)
        left[:, :d] = x64 * a
        left[:, d] = a + 0.5
        right = np.empty((n, d + 1), dtype=np.float32)
        right[:, :d] = x64
        right[:, d] = 1.0
        self.q = np.zeros((n, n), dtype=np.uint16)   # only q[i, j], j < i, is used
        for r0 in range(0, n, block):
            r1 = min(n, r0 + block)
            self.q[r0:r1, :r1] = (left[r0:r1] @ right[:r1].T).astype(np.uint16)


class _ImpostorBins:
    """The impostor pairs of one test set (global indices `idx`): their bins, histogram and exact order
    statistics. Genuine pairs, the diagonal and the upper triangle go to a dump bin."""

    def __init__(self, gram: QuantizedGram, idx: np.ndarray, gen_i: np.ndarray, gen_j: np.ndarray,
                 block: int = 1024):
        self.x64 = gram.x64
        self.idx = idx
        n = idx.size
        self.blocks: list[tuple[int, int, np.ndarray]] = []
        hist = np.zeros(N_BINS + 1, dtype=np.int64)
        order = np.argsort(gen_i, kind="stable")
        gi, gj = gen_i[order], gen_j[order]
        for r0 in range(0, n, block):
            r1 = min(n, r0 + block)
            q = np.take(gram.q[idx[r0:r1]], idx[:r1], axis=1)   # C-contiguous result
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

    Bin j holds float32 scores in [e_j, e_j + w); exact scores differ by at most err < w / 2. For k, let
    b be the bin with cum[b] >= k > cum[b+1] (cum[j] = impostors in bins >= j), A = cum[b+2], and C the
    impostors of bins b-1, b, b+1; v = the (k − A)-th largest exact score in C. Since k − A > n(b+1), v is
    at most the largest exact score of bins b-1..b, which is < e_{b+1} + err < e_{b+2} − err, below every
    exact score of bins >= b+2. Since k − A <= n(b+1) + n(b), v is at least the smallest exact score of
    bins b..b+1, > e_b − err > e_{b-1} + err, above every exact score of bins <= b-2. So exactly A
    impostors outside C lie above v and none below it is needed: v is the exact k-th largest.
    """
    cum = bins.cum_desc
    # b_k = largest b with cum[b] >= k  (cum is non-increasing)
    b_k = np.searchsorted(-cum, -ks, side="right") - 1
    lut = np.zeros(N_BINS + 1, dtype=bool)
    for b in np.unique(b_k):
        lut[max(0, b - 1):min(N_BINS, b + 2)] = True
    cand_i, cand_j, cand_bin = [], [], []
    for r0, r1, q in bins.blocks:
        rr, cc = np.nonzero(lut[q])
        cand_i.append(rr + r0)
        cand_j.append(cc)
        cand_bin.append(q[rr, cc])
    ci, cj, cb = np.concatenate(cand_i), np.concatenate(cand_j), np.concatenate(cand_bin).astype(np.int64)
    exact = _rowdot(bins.x64, bins.idx[ci], bins.idx[cj])   # in row order: cache-friendly gathers
    order = np.argsort(cb, kind="stable")
    exact, cb = exact[order], cb[order]
    out = np.empty(ks.size)
    for t, (k, b) in enumerate(zip(ks, b_k)):
        above = int(cum[b + 2]) if b + 2 < N_BINS else 0
        lo, hi = np.searchsorted(cb, [b - 1, b + 2])
        sel = np.sort(exact[lo:hi])[::-1]
        out[t] = sel[k - above - 1]
    return out


def eval_roc(x: np.ndarray, labels: np.ndarray, far_points=VERIFY_FARS, block: int = 1024,
             gram: QuantizedGram | None = None, idx: np.ndarray | None = None):
    """EvalROC on one test set: (VR, FAR, thresholds).

    Either `x` holds the test set's features (rows L2-normalised, float64) and `labels` its labels, or
    `gram` is a QuantizedGram of all images, `idx` the test set's indices into it and `labels` their labels.
    """
    if gram is None:
        gram, idx = QuantizedGram(np.asarray(x, dtype=np.float64), block), np.arange(len(labels))
    order = np.argsort(idx, kind="stable")        # ascending global order keeps every pair in the lower triangle
    idx, labels = np.asarray(idx)[order], np.asarray(labels)[order]
    gi, gj = _genuine_pairs(labels)
    gen = np.sort(_rowdot(gram.x64, idx[gi], idx[gj]))
    bins = _ImpostorBins(gram, idx, gi, gj, block)
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


_SHARED: dict = {}   # what forked trial workers read (the score bins are shared copy-on-write, not pickled)


def _run_trial(t: int) -> tuple[int, np.ndarray, np.ndarray]:
    x, config, gram = _SHARED["x"], _SHARED["config"], _SHARED["gram"]
    labels = config.labels
    ti = config.test_index[t]
    vr, _, _ = eval_roc(None, labels[ti], gram=gram, idx=ti)
    gal, prob = config.gal_index[t], config.prob_index[t]
    d, _, _ = open_set_roc(x[gal] @ x[prob].T, labels[gal], labels[prob])
    return t, vr, d


def _default_workers(n_trials: int) -> int:
    import multiprocessing as mp
    import os

    if "fork" not in mp.get_all_start_methods():
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, n_trials))


def evaluate_blufr(features: np.ndarray, config: BlufrConfig, trials: list[int] | None = None,
                   progress=None, workers: int | None = None) -> BlufrResult:
    """All (or the given 0-based) trials on features aligned with `config.image_list` (row k = image k).

    Trials run in `workers` forked processes (default: one per CPU; 1 = in this process). The result does
    not depend on the number of workers.
    """
    x = l2_normalize(np.asarray(features, dtype=np.float64))
    trials = list(range(config.n_trials)) if trials is None else list(trials)
    workers = _default_workers(len(trials)) if workers is None else max(1, int(workers))
    _SHARED.update(x=x, config=config, gram=QuantizedGram(x))
    results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    try:
        if workers == 1:
            outcomes = map(_run_trial, trials)
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"))
            outcomes = pool.map(_run_trial, trials)
        for t, vr, d in outcomes:
            results[t] = (vr, d)
            if progress is not None:
                progress(t)
        if workers > 1:
            pool.shutdown()
    finally:
        _SHARED.clear()
    vr = np.array([results[t][0] for t in trials])
    dir_ = np.array([results[t][1] for t in trials])
    vi, oi = _far_index(VERIFY_FARS, REPORT_VERIFY_FAR), _far_index(OSI_FARS, REPORT_OSI_FAR)
    ri = int(np.flatnonzero(RANKS == REPORT_RANK)[0])
    metrics = {"VR@FAR=0.1%": _mean_minus_std(vr[:, vi]), "DIR@FAR=1%": _mean_minus_std(dir_[:, ri, oi]),
               "VR@FAR=0.1%.mean": float(vr[:, vi].mean() * 100), "DIR@FAR=1%.mean": float(dir_[:, ri, oi].mean() * 100)}
    per_trial = {"trial": [t + 1 for t in trials], "VR@FAR=0.1%": (vr[:, vi] * 100).tolist(),
                 "DIR@FAR=1%": (dir_[:, ri, oi] * 100).tolist()}
    return BlufrResult(vr, VERIFY_FARS.copy(), dir_, OSI_FARS.copy(), metrics, per_trial)
