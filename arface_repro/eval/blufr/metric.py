"""BLUFR (Liao et al. 2014): an exact port of the official MATLAB `EvalROC.m` and `OpenSetROC.m`.

Verification: genuine/impostor = all distinct pairs of a trial's test set; thresholds are order statistics
of the impostor scores at k = MATLAB round(FAR * Nimp) (half away from zero), with the official special
cases at k = 0 (midpoint between the top impostor and the lowest genuine score above it, or the top
impostor + sqrt(eps) when none is above) and k = Nimp (min(lowest impostor, lowest genuine) − sqrt(eps)).
Open-set identification: each impostor probe's detection score is its best gallery score; a genuine probe
has its best mated score and that entry's rank in a stable descending sort.

Speed without changing a number: a trial has ~53 M impostor pairs, and sorting them (what the MATLAB code
does) dominates. Here the scores of all image pairs are computed once, blockwise in float32, and kept as
uint16 bin indices; one compiled pass over those pairs histograms them for every trial at once
(`blufr_passes`: each pair's trial-membership bits say which trials count it), the few genuine pairs are
subtracted, and for each needed
order statistic of each trial only the impostors in its bin and the bin either side are rescored exactly
in float64 (once for all trials) and selected. Because a bin (3.05e-5) is wider than twice the float32 scoring error (≤ 1.2e-5 for
unit vectors of 192 dims in the worst case), the selected value is the exact float64 order statistic (see
`_kth_from_candidates` for the argument). Genuine scores are always computed in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from arface_repro.eval.blufr.config import BlufrConfig
from arface_repro.eval.blufr.passes import MAX_SETS, candidate_pairs, set_histograms
from arface_repro.eval.kfold import l2_normalize
from arface_repro.utils.cpus import usable_cpus

SQRT_EPS = float(np.sqrt(np.finfo(np.float64).eps))
VERIFY_FARS = np.concatenate([[0.0], np.kron(10.0 ** np.arange(-8, 0), np.arange(1, 10)), [1.0]])
OSI_FARS = np.concatenate([[0.0], np.kron(10.0 ** np.arange(-4, 0), np.arange(1, 10)), [1.0]])
RANKS = np.concatenate([np.arange(1, 11), np.arange(20, 101, 10)])
REPORT_VERIFY_FAR = 1e-3   # VR @ FAR = 0.1 %
REPORT_OSI_FAR = 1e-2      # DIR @ FAR = 1 %, rank 1
REPORT_RANK = 1
N_BINS = 65535


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


def _workers() -> int:
    return usable_cpus(4)


def _in_threads(fn, items) -> list:
    """fn over items in a thread pool (numpy releases the GIL in the heavy calls); results in item order."""
    items = list(items)
    if _workers() == 1 or len(items) < 2:
        return [fn(it) for it in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(_workers()) as pool:
        return list(pool.map(fn, items))


def _rowdot(x: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = 1 << 14) -> np.ndarray:
    """float64 scores x[i] . x[j]. Genuine and impostor scores both come from here, so identical
    feature vectors give bit-identical scores, as with the single matrix product of the MATLAB code."""
    out = np.empty(i.size)

    def part(s):
        out[s:s + chunk] = np.einsum("ij,ij->i", x[i[s:s + chunk]], x[j[s:s + chunk]])

    _in_threads(part, range(0, i.size, chunk))
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

        def fill(r0):
            r1 = min(n, r0 + block)
            self.q[r0:r1, :r1] = (left[r0:r1] @ right[:r1].T).astype(np.uint16)

        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="blas"):   # one BLAS thread per block, blocks in parallel threads
            _in_threads(fill, range(0, n, block))


def _membership(n: int, sets: list[np.ndarray]) -> np.ndarray:
    """Bit t of masks[i] says image i is in set t."""
    masks = np.zeros(n, np.uint32)
    for t, idx in enumerate(sets):
        masks[idx] |= np.uint32(1 << t)
    return masks


def _set_histograms(gram: QuantizedGram, sets: list[np.ndarray]) -> np.ndarray:
    """Per set, the histogram over bins of ALL its pairs (genuine included), from one compiled pass over the
    lower triangle that serves every set (`blufr_passes.set_histograms`)."""
    masks = _membership(gram.q.shape[0], sets)
    return set_histograms(gram.q, masks, len(sets), N_BINS + 1)


def eval_roc_sets(gram: QuantizedGram, sets: list[np.ndarray], labels_all: np.ndarray, far_points=VERIFY_FARS,
                  block: int = 1024) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """EvalROC on several test sets (global indices into the gram's images) at once: [(VR, FAR, thr)].

    The bins of every set come from shared passes over the pairs (`_set_histograms`), the genuine pairs'
    bins are subtracted, and the exact order statistics are rescored once for the candidates of all sets
    (see `_kth_from_candidates` for why the neighbouring bins suffice)."""
    if len(sets) > MAX_SETS:   # membership bits are a uint32: more sets go in groups
        return [r for g in range(0, len(sets), MAX_SETS)
                for r in eval_roc_sets(gram, sets[g:g + MAX_SETS], labels_all, far_points, block)]
    n = gram.q.shape[0]
    labels_all = np.asarray(labels_all)
    sets = [np.sort(np.asarray(s)) for s in sets]
    hist = _set_histograms(gram, sets)
    union = np.unique(np.concatenate(sets))
    ui, uj = _genuine_pairs(labels_all[union])            # every same-label pair of any set, scored once
    ui, uj = union[ui], union[uj]                         # ui > uj: lower triangle
    u_scores = _rowdot(gram.x64, ui, uj)
    u_bins = gram.q[ui, uj]
    masks = _membership(n, sets)
    u_masks = masks[ui] & masks[uj]
    gens, cums, n_imps, needs = [], [], [], []
    for t in range(len(sets)):
        mine = ((u_masks >> np.uint32(t)) & 1).astype(bool)
        hist[t] -= np.bincount(u_bins[mine], minlength=N_BINS + 1)
        h = hist[t, :N_BINS]
        n_imp = int(h.sum())
        gen = np.sort(u_scores[mine])
        if n_imp == 0 or gen.size == 0:
            raise ValueError("BLUFR verification needs both genuine and impostor pairs in the test set")
        cum = np.cumsum(h[::-1])[::-1]
        false_alarms = matlab_round(np.asarray(far_points) * n_imp).astype(np.int64)
        ks = np.unique(np.concatenate([false_alarms[(false_alarms > 0) & (false_alarms < n_imp)], [1, n_imp]]))
        gens.append(gen), cums.append(cum), n_imps.append(n_imp), needs.append(ks)
    # one pass collects the candidates of every (set, order statistic): pairs in bins b-1 .. b+1
    want = np.zeros(N_BINS + 1, dtype=bool)
    bk = []
    for cum, ks in zip(cums, needs):
        b = np.searchsorted(-cum, -ks, side="right") - 1
        bk.append(b)
        for v in np.unique(b):
            want[max(0, v - 1):min(N_BINS, v + 2)] = True
    ci, cj = candidate_pairs(gram.q, masks, want)
    cb = gram.q[ci, cj].astype(np.int64)
    exact = _rowdot(gram.x64, ci, cj)                     # candidates in row order: cache-friendly gathers
    order = np.argsort(cb, kind="stable")
    ci, cj, cb, exact = ci[order], cj[order], cb[order], exact[order]
    cmask = masks[ci] & masks[cj]
    impostor = labels_all[ci] != labels_all[cj]
    out = []
    for t in range(len(sets)):
        mine = ((cmask >> np.uint32(t)) & 1).astype(bool) & impostor
        lookup = dict(zip(needs[t].tolist(), _kth_from_candidates(cums[t], needs[t], bk[t], cb, exact, mine)))
        thr, far = thresholds_from_impostors(far_points, n_imps[t], lambda ks, lookup=lookup: np.array([lookup[int(k)] for k in ks]),
                                             gens[t])
        out.append((_share_at_least(gens[t], thr), far, thr))
    return out


def _kth_from_candidates(cum: np.ndarray, ks: np.ndarray, b_k: np.ndarray, cb: np.ndarray, exact: np.ndarray,
                         mine: np.ndarray) -> np.ndarray:
    """Exact float64 k-th largest impostor scores (1-based k) of one set from the bin histogram.

    Bin j holds float32 scores in [e_j, e_j + w); exact scores differ by at most err < w / 2. For k, let
    b be the bin with cum[b] >= k > cum[b+1] (cum[j] = impostors in bins >= j), A = cum[b+2], and C the
    impostors of bins b-1, b, b+1; v = the (k − A)-th largest exact score in C. Since k − A > n(b+1), v is
    at most the largest exact score of bins b-1..b, which is < e_{b+1} + err < e_{b+2} − err, below every
    exact score of bins >= b+2. Since k − A <= n(b+1) + n(b), v is at least the smallest exact score of
    bins b..b+1, > e_b − err > e_{b-1} + err, above every exact score of bins <= b-2. So exactly A
    impostors outside C lie above v and none below it is needed: v is the exact k-th largest.
    """
    out = np.empty(ks.size)
    for t, (k, b) in enumerate(zip(ks, b_k)):
        above = int(cum[b + 2]) if b + 2 < N_BINS else 0
        lo, hi = np.searchsorted(cb, [b - 1, b + 2])
        sel = exact[lo:hi][mine[lo:hi]]
        out[t] = -np.partition(-sel, k - above - 1)[k - above - 1]
    return out


def eval_roc(x: np.ndarray, labels: np.ndarray, far_points=VERIFY_FARS, block: int = 1024,
             gram: QuantizedGram | None = None, idx: np.ndarray | None = None):
    """EvalROC on one test set: (VR, FAR, thresholds).

    Either `x` holds the test set's features (rows L2-normalised, float64) and `labels` its labels, or
    `gram` is a QuantizedGram of all images, `idx` the test set's indices into it and `labels` their labels.
    """
    if gram is None:
        gram, idx = QuantizedGram(np.asarray(x, dtype=np.float64), block), np.arange(len(labels))
    idx = np.asarray(idx)
    labels_all = np.zeros(gram.q.shape[0], dtype=np.asarray(labels).dtype)
    labels_all[idx] = labels
    return eval_roc_sets(gram, [idx], labels_all, far_points, block)[0]


def open_set_roc(score: np.ndarray, gal_labels: np.ndarray, prob_labels: np.ndarray,
                 far_points=OSI_FARS, rank_points=RANKS):
    """OpenSetROC on a gallery × probe score matrix: (DIR[rank, far], FAR, thresholds).

    A probe is genuine when its label is in the gallery; its score is its best mated score (the first
    such gallery row on ties) and its rank that entry's position in a stable descending sort of its
    column. Mates are looked up by label (each probe has few), so the dense matrix is read three times:
    column maxima, entries above, entries equal."""
    gal_labels, prob_labels = np.asarray(gal_labels), np.asarray(prob_labels)
    order = np.argsort(gal_labels, kind="stable")
    sl = gal_labels[order]
    lo, hi = np.searchsorted(sl, prob_labels, "left"), np.searchsorted(sl, prob_labels, "right")
    cnt = hi - lo
    is_gen = cnt > 0
    imp = np.sort(score.max(axis=0)[~is_gen])[::-1]
    gcols = np.flatnonzero(is_gen)
    rep = np.repeat(gcols, cnt[gcols])
    starts = np.repeat(lo[gcols] - np.concatenate([[0], np.cumsum(cnt[gcols])[:-1]]), cnt[gcols])
    rows = order[np.arange(rep.size) + starts]
    vals = score[rows, rep]
    first = np.lexsort((rows, -vals, rep))          # per column: the largest value, then the lowest row
    head = first[np.concatenate([[True], rep[first][1:] != rep[first][:-1]])]
    gen_score, best = vals[head], rows[head]
    thr_col = np.full(score.shape[1], np.inf)
    thr_col[gcols] = gen_score
    greater = np.count_nonzero(score > thr_col[None, :], axis=0)[gcols]
    equal = np.count_nonzero(score == thr_col[None, :], axis=0)[gcols]
    equal_before = np.zeros(gcols.size, np.int64)
    for k in np.flatnonzero(equal > 1):              # exact ties with the best mated score: rare
        c = gcols[k]
        equal_before[k] = int(np.count_nonzero(score[: best[k], c] == gen_score[k]))
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


def _open_set_trial(x: np.ndarray, config: BlufrConfig, t: int) -> np.ndarray:
    gal, prob = config.gal_index[t], config.prob_index[t]
    d, _, _ = open_set_roc(x[gal] @ x[prob].T, config.labels[gal], config.labels[prob])
    return d


def _default_workers(n_trials: int) -> int:
    return max(1, usable_cpus(n_trials))


def evaluate_blufr(features: np.ndarray, config: BlufrConfig, trials: list[int] | None = None,
                   progress=None, workers: int | None = None) -> BlufrResult:
    """All (or the given 0-based) trials on features aligned with `config.image_list` (row k = image k).

    Verification of every trial comes from shared passes over one quantised score matrix; the open-set
    part runs per trial in `workers` threads (default one per CPU). The result does not depend on the
    number of workers.
    """
    x = l2_normalize(np.asarray(features, dtype=np.float64))
    trials = list(range(config.n_trials)) if trials is None else list(trials)
    workers = _default_workers(len(trials)) if workers is None else max(1, int(workers))
    gram = QuantizedGram(x)
    veri = eval_roc_sets(gram, [config.test_index[t] for t in trials], config.labels)
    del gram
    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            dirs = list(pool.map(lambda t: _open_set_trial(x, config, t), trials))
    else:
        dirs = [_open_set_trial(x, config, t) for t in trials]
    results = {}
    for t, (vr, _, _), d in zip(trials, veri, dirs):
        results[t] = (vr, d)
        if progress is not None:
            progress(t)
    vr = np.array([results[t][0] for t in trials])
    dir_ = np.array([results[t][1] for t in trials])
    vi, oi = _far_index(VERIFY_FARS, REPORT_VERIFY_FAR), _far_index(OSI_FARS, REPORT_OSI_FAR)
    ri = int(np.flatnonzero(RANKS == REPORT_RANK)[0])
    metrics = {"VR@FAR=0.1%": _mean_minus_std(vr[:, vi]), "DIR@FAR=1%": _mean_minus_std(dir_[:, ri, oi]),
               "VR@FAR=0.1%.mean": float(vr[:, vi].mean() * 100), "DIR@FAR=1%.mean": float(dir_[:, ri, oi].mean() * 100)}
    per_trial = {"trial": [t + 1 for t in trials], "VR@FAR=0.1%": (vr[:, vi] * 100).tolist(),
                 "DIR@FAR=1%": (dir_[:, ri, oi] * 100).tolist()}
    return BlufrResult(vr, VERIFY_FARS.copy(), dir_, OSI_FARS.copy(), metrics, per_trial)
