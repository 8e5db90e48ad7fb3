"""IJB-B / IJB-C 1:1 verification (template-based), with the arithmetic of insightface's `ijb_11.py`.

Image features -> template features -> pair scores -> TAR@FAR table, each step in the precision and
order of operations of the reference, so that from the same image features the scores are bit-identical
and the table equal digit for digit (tests/test_ijb_reference.py holds a structural copy of the reference):

1. Per image (`image_features`, float32 like the network outputs): f(x) + f(flip x) ('add', default;
   'concat'; 'none'), optionally L2-normalised (`x / sqrt(sum(x**2))` in float32; off by default: the
   norm acts as a quality weight), then multiplied by the detector's faceness score (on by default).
2. Per template (`template_features`): within a template, the images of one media are averaged
   (`np.mean`, float32, images in file order) and the media averages summed (float32, media in ascending
   id order); the sum goes into a float64 matrix (insightface's `np.zeros` is float64) and is
   L2-normalised in float64 — by `sklearn.preprocessing.normalize` for 1:1 (`ijb_11.py`) or by
   `x / sqrt(sum(x**2))` for 1:N (`ijb_1n.py`). Segment sums (`segment_sums`) add the rows of a
   segment one after the other, as `np.sum(axis=0)` in the reference's per-template loop does.
3. Pair scores (`pair_scores`): the reference's own expression `np.sum(f1 * f2, -1)` in float64 (a BLAS
   product would sum in another order), computed by a compiled kernel that follows numpy's pairwise
   summation step by step (`numpy_order_dot`): bit-identical scores, template rows read in place, pairs in
   parallel; each score depends on its pair alone, so sharding over processes changes nothing.
4. Table (`arface_repro.eval.roc_table`, the package's one ROC/TAR path): the ROC exactly as `sklearn.metrics.roc_curve` computes it, on the float64
   scores; TAR at FAR 1e-6 … 1e-1 by the 'nearest' rule (insightface: TPR at the ROC point whose FPR is
   nearest to the target; on equal distance the point later in sklearn's order, i.e. the larger TPR —
   insightface flips the arrays and takes the first minimum) or the 'strict' rule (TAR at the most
   permissive threshold whose FAR ≤ target).

On CUDA (`--device cuda`) the pair scores are the same float64 expression in torch, whose reduction
order differs: scores agree with the CPU ones within 1e-15 (documented tolerance), and the table within
one pair at each FAR.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from arface_repro.errors import ConfigError, FormatError, MissingDataError
from arface_repro.eval.chunked import Backend, DistContext, budget_bytes, chunk_grid
from arface_repro.eval.id_positions import MAX_TABLE_ID, table_positions
from arface_repro.eval.ijb.meta import IJBMeta
from arface_repro.eval.ijb.templates import pool_templates
from arface_repro.eval.metric_keys import rate_key
from arface_repro.eval.numpy_order_dot import pair_dots
from arface_repro.eval.roc_table import roc_table
from arface_repro.io.feature_store import check_flip_sum
from arface_repro.utils.cpus import usable_cpus

FARS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
FLIP_MODES = ("add", "concat", "none")
TEMPLATE_NORMS = ("sklearn", "sum")   # ijb_11.py: sklearn.preprocessing.normalize; ijb_1n.py: x / sqrt(sum(x**2))
SCORE_TOLERANCE_CUDA = 1e-15


# --------------------------------------------------------------------------------------------------
# image and template features


@dataclass(frozen=True)
class CombineOptions:
    flip: str = "add"          # add | concat | none
    normalize: bool = False    # per-image L2 normalisation before faceness weighting
    faceness: bool = True      # multiply by the detector score

    def __post_init__(self):
        if self.flip not in FLIP_MODES:
            raise ConfigError(f"flip mode {self.flip!r}: expected one of {', '.join(FLIP_MODES)}")

    @property
    def label(self) -> str:
        return f"flip={self.flip},image_norm={'on' if self.normalize else 'off'},faceness={'on' if self.faceness else 'off'}"


def image_features(features: np.ndarray, flip_features: np.ndarray | None, faceness: np.ndarray | None,
                   opts: CombineOptions, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
    """Combined per-image features of the selected rows, float32 as insightface computes them.

    `faceness` is indexed like `features` (by `rows`)."""
    f = np.asarray(features[rows], np.float32)
    if opts.flip != "none":
        if flip_features is None:
            raise MissingDataError(f"flip mode {opts.flip!r} needs flip features; the feature store has none (use --flip none)")
        g = np.asarray(flip_features[rows], np.float32)
        f = f + g if opts.flip == "add" else np.concatenate([f, g], axis=1)
    if opts.normalize:
        f = f / np.sqrt(np.sum(f ** 2, -1, keepdims=True))
    if opts.faceness:
        if faceness is None:
            raise MissingDataError("faceness weighting needs the *_name_5pts_score.txt scores")
        f = f * np.asarray(faceness[rows], np.float32)[:, None]
    return f


def _runs(keys: np.ndarray) -> np.ndarray:
    """Start index of every run of equal consecutive values."""
    if keys.size == 0:
        return np.empty(0, np.int64)
    return np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))


def segment_sums(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Row sums of consecutive segments (segment k = rows starts[k] .. starts[k+1]-1), each a left fold
    ((x0 + x1) + x2) + … in x's dtype: the order in which `np.sum(a, axis=0)` adds the rows of a
    C-contiguous block (`np.add.reduceat` adds in another order). Vectorised across segments: step p adds
    the p-th row of every segment that has one."""
    n = x.shape[0]
    starts = np.asarray(starts, np.int64)
    lens = np.diff(np.append(starts, n))
    out = x[starts].copy()
    if lens.size == 0 or lens.max() <= 1:
        return out
    seg = np.repeat(np.arange(starts.size), lens)
    pos = np.arange(n) - np.repeat(starts, lens)
    order = np.argsort(pos, kind="stable")
    level = np.concatenate([[0], np.cumsum(np.bincount(pos))])
    for p in range(1, int(lens.max())):
        rows = order[level[p]:level[p + 1]]
        out[seg[rows]] += x[rows]
    return out


def normalize_templates(x: np.ndarray, norm: str = "sklearn", tids: np.ndarray | None = None,
                        out: np.ndarray | None = None) -> np.ndarray:
    """Row L2 normalisation in float64, as the reference script does it (see TEMPLATE_NORMS); into `out` when
    given (x itself: in place, no fresh 100 MB array to fault in at IJB-C size)."""
    if norm not in TEMPLATE_NORMS:
        raise ConfigError(f"template normalisation {norm!r}: expected one of {', '.join(TEMPLATE_NORMS)}")
    sq = np.einsum("ij,ij->i", x, x) if norm == "sklearn" else np.sum(x ** 2, -1)
    zero = np.flatnonzero(sq == 0)
    if zero.size:
        what = f"template {tids[zero[0]]}" if tids is not None else f"template row {zero[0]}"
        raise FormatError(f"{what} has an all-zero feature (zero faceness?); cannot normalise")
    if norm == "sklearn":
        # sklearn.preprocessing.normalize(x) for a dense float64 matrix, operation for operation: row_norms is
        # sqrt(einsum('ij,ij->i')), norms below 10 eps count as 1 (_handle_zeros_in_scale), then x /= norms[:, None]
        # (written out here: importing scikit-learn costs more than the whole normalisation)
        norms = np.sqrt(sq)
        norms[norms < 10 * np.finfo(norms.dtype).eps] = 1.0
        return np.divide(x, norms[:, None], out=out)
    return np.divide(x, np.sqrt(np.sum(x ** 2, -1, keepdims=True)), out=out)


def _poolable(features, flip_features, opts: CombineOptions) -> bool:
    """Whether `template_pooling` applies: 'add' or 'none' flip mode, no per-image normalisation, float32
    C-contiguous arrays (a store's own layout); other cases take the numpy path (same numbers, more memory)."""
    def ok(a):
        return isinstance(a, np.ndarray) and a.dtype == np.float32 and a.ndim == 2 and a.flags.c_contiguous

    if opts.normalize or opts.flip == "concat" or not ok(features):
        return False
    if opts.flip == "add":
        if flip_features is None:
            raise MissingDataError(f"flip mode {opts.flip!r} needs flip features; the feature store has none (use --flip none)")
        return ok(flip_features) and flip_features.shape == features.shape
    return True


def template_features(features: np.ndarray, flip_features: np.ndarray | None, faceness: np.ndarray | None,
                      templates: np.ndarray, medias: np.ndarray, opts: CombineOptions = CombineOptions(),
                      max_memory_gb: float | None = None, rows: np.ndarray | None = None,
                      norm: str = "sklearn", select: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(sorted template ids, L2-normalised float64 template features) by the reference's arithmetic.

    Image i (with `templates[i]`, `medias[i]`, `faceness[i]`) has features `features[rows[i]]` (and
    `flip_features[rows[i]]`); `rows` defaults to 0..N-1 and lets a feature store in any order be used
    without copying it. `select`: only these template ids (default all). Float32 features in the 'add' or
    'none' flip mode without per-image normalisation (the defaults) are pooled in one compiled pass
    (`template_pooling`); otherwise images are processed in template-aligned chunks that fit the memory
    budget. Both give the same bits.
    """
    templates = np.asarray(templates)
    medias = np.asarray(medias)
    n = templates.size
    if medias.size != n or (rows is None and features.shape[0] != n) or (rows is not None and len(rows) != n):
        raise FormatError(f"{features.shape[0] if rows is None else len(rows)} feature rows for {n} template/media entries")
    if faceness is not None and len(faceness) != n:
        raise FormatError(f"{len(faceness)} faceness scores for {n} images")
    idx = np.arange(n)
    if select is not None:
        idx = idx[np.isin(templates, select)]
    # the reference's order: templates ascending, media ascending within a template, images in file order
    order = idx[np.lexsort((idx, medias[idx], templates[idx]))]
    t_sorted, m_sorted = templates[order], medias[order]
    t_start = _runs(t_sorted)
    tids = t_sorted[t_start]
    if select is not None:
        missing = np.setdiff1d(np.asarray(select), tids)
        if missing.size:
            raise MissingDataError(f"{missing.size} template(s) have no images, e.g. {missing[0]}")
    fc = None if faceness is None else np.asarray(faceness, np.float32)
    if opts.faceness and fc is None:
        raise MissingDataError("faceness weighting needs the *_name_5pts_score.txt scores")
    if _poolable(features, flip_features, opts):   # the compiled pass: same float32 operations, no temporaries
        f = np.asarray(features)
        g = np.asarray(flip_features) if opts.flip == "add" else None
        m_start = np.flatnonzero(np.concatenate([[True], (t_sorted[1:] != t_sorted[:-1]) | (m_sorted[1:] != m_sorted[:-1])]))
        m_count = np.diff(np.append(m_start, order.size))
        out = pool_templates(f, g, fc[order] if opts.faceness else None, order if rows is None else np.asarray(rows)[order],
                             m_start, m_count, np.append(_runs(t_sorted[m_start]), m_start.size))
        return tids, normalize_templates(out, norm, tids, out=out)
    d = features.shape[1] * (2 if opts.flip == "concat" else 1)
    out = np.empty((tids.size, d), np.float64)
    step = max(1024, budget_bytes(max_memory_gb) // 8 // (d * 4 * 4))
    t_bounds = np.append(t_start, order.size)
    t0 = 0
    while t0 < tids.size:  # chunks of whole templates, about `step` images each
        t1 = int(np.searchsorted(t_bounds, t_bounds[t0] + step, side="right")) - 1
        t1 = min(tids.size, max(t1, t0 + 1))
        s, e = int(t_bounds[t0]), int(t_bounds[t1])
        sel = order[s:e]
        src = sel if rows is None else np.asarray(rows)[sel]
        x = image_features(features, flip_features, None, CombineOptions(opts.flip, opts.normalize, False), src)
        if opts.faceness:
            if fc is None:
                raise MissingDataError("faceness weighting needs the *_name_5pts_score.txt scores")
            x = x * fc[sel][:, None]
        key_t, key_m = t_sorted[s:e], m_sorted[s:e]
        m_start = np.flatnonzero(np.concatenate([[True], (key_t[1:] != key_t[:-1]) | (key_m[1:] != key_m[:-1])]))
        counts = np.diff(np.append(m_start, e - s))
        media = segment_sums(x, m_start)   # float32, rows added in order
        many = counts > 1
        media[many] = media[many] / counts[many, None]   # np.mean: float32 sum / count
        mt = key_t[m_start]
        tt_start = _runs(mt)
        out[t0:t1] = segment_sums(media, tt_start)   # media summed in order, float32 -> float64
        t0 = t1
    return tids, normalize_templates(out, norm, tids, out=out)


# --------------------------------------------------------------------------------------------------
# pair scores


def template_index(tids: np.ndarray, query: np.ndarray, what: str = "pair list") -> np.ndarray:
    """Positions (int32) of `query` template ids in the sorted `tids`; unknown ids are an error naming them.

    Non-negative ids up to 2^27 use a lookup table (linear time on 15M pairs), others a binary search.
    """
    query = np.asarray(query)
    if tids.size and tids[0] >= 0 and tids[-1] < MAX_TABLE_ID and query.size > 4 * tids.size:
        pos, bad = table_positions(tids, query)
    else:
        pos = np.minimum(np.searchsorted(tids, query), max(0, tids.size - 1)).astype(np.int32)
        bad = np.flatnonzero(tids[pos] != query) if tids.size else np.arange(query.size)
    if bad.size:
        shown = ", ".join(str(int(query[b])) for b in bad[:5])
        raise MissingDataError(f"{what}: {bad.size} entr(ies) name templates with no images "
                               f"(line {bad[0] + 1} first): template id(s) {shown}")
    return pos


PAIR_CHUNK = 16384   # pairs per chunk of the fixed grid (CUDA backend)


def _threads() -> int:
    return usable_cpus(4)


def pair_scores(feats: np.ndarray, i1: np.ndarray, i2: np.ndarray, *, backend: Backend | None = None,
                ctx: DistContext | None = None, max_memory_gb: float | None = None,
                chunk: int = PAIR_CHUNK) -> np.ndarray:
    """score[p] = np.sum(feats[i1[p]] * feats[i2[p]]) in float64, the reference's expression; all ranks
    get all scores.

    CPU: `numpy_order_dot.pair_dots`, numpy's own summation order in a compiled kernel, every score bit
    for bit the numpy expression's, with no temporaries (so no memory budget applies); each process takes
    one contiguous share of the pairs. CUDA: torch's float64 product and sum on chunks of `chunk` pairs
    on a fixed grid (within SCORE_TOLERANCE_CUDA of the CPU scores)."""
    backend = backend or Backend()
    ctx = ctx or DistContext()
    feats = np.ascontiguousarray(feats, np.float64)
    n_t, d = feats.shape
    i1 = np.asarray(i1)
    i2 = np.asarray(i2)
    if i1.size and (i1.min() < 0 or i1.max() >= n_t or i2.min() < 0 or i2.max() >= n_t):
        raise ValueError("pair indices out of range of the template features")
    scores = np.empty(i1.size, np.float64)

    if backend.kind == "torch":
        import torch  # noqa: PLC0415

        # two float64 operands of `chunk` rows must fit the budget
        chunk = int(max(256, min(chunk, budget_bytes(max_memory_gb) // (2 * 8 * d))))
        mine = ctx.mine(chunk_grid(i1.size, chunk))
        ft = torch.from_numpy(feats).to(backend.device)
        for s, e in mine:
            a = ft[torch.from_numpy(np.asarray(i1[s:e], np.int64)).to(backend.device)]
            b = ft[torch.from_numpy(np.asarray(i2[s:e], np.int64)).to(backend.device)]
            scores[s:e] = (a * b).sum(-1).cpu().numpy()
    else:
        mine = ctx.mine(chunk_grid(i1.size, max(1, -(-i1.size // max(1, ctx.world)))))
        for s, e in mine:
            pair_dots(feats, i1[s:e], i2[s:e], out=scores[s:e], threads=_threads())
    if ctx.active:
        idx_all = np.concatenate([np.arange(s, e) for s, e in mine]) if mine else np.empty(0, np.int64)
        got_idx = ctx.all_gather(idx_all)
        got_sc = ctx.all_gather(scores[idx_all])
        for gi, gs in zip(got_idx, got_sc):
            scores[gi] = gs
        if sum(g.size for g in got_idx) != i1.size:  # pragma: no cover - internal consistency
            raise RuntimeError("pair_scores lost pairs while merging chunks")
    return scores


# --------------------------------------------------------------------------------------------------
# the whole protocol


def store_rows(store, images: np.ndarray) -> np.ndarray:
    """Rows of the IJB images in a feature store whose paths are 'name.jpg' or 'loose_crop/name.jpg'."""
    idx = store.index
    first = str(images[0])
    prefix = "" if first in idx else "loose_crop/" if f"loose_crop/{first}" in idx else ""
    return store.indices([prefix + str(p) for p in images], what="IJB image list")


def evaluate_11(store, meta: IJBMeta, *, opts: CombineOptions = CombineOptions(), rules: Sequence[str] = ("nearest", "strict"),
                fars: Sequence[float] = FARS, backend: Backend | None = None, ctx: DistContext | None = None,
                max_memory_gb: float | None = None, max_curve_points: int = 2000) -> dict:
    """Full 1:1 protocol from a feature store; returns {'tar': {rule: {far: tar}}, 'roc': ..., 'scores', ...}."""
    rows = store_rows(store, meta.images)
    flip = store.flip_features if opts.flip != "none" else None
    if opts.flip == "add":
        check_flip_sum(store, rows)
    return evaluate_11_arrays(store.features, flip, meta, opts=opts, rules=rules, fars=fars, backend=backend, ctx=ctx,
                              max_memory_gb=max_memory_gb, max_curve_points=max_curve_points, rows=rows)


def evaluate_11_arrays(features: np.ndarray, flip_features: np.ndarray | None, meta: IJBMeta, *,
                       opts: CombineOptions = CombineOptions(), rules: Sequence[str] = ("nearest", "strict"),
                       fars: Sequence[float] = FARS, backend: Backend | None = None, ctx: DistContext | None = None,
                       max_memory_gb: float | None = None, max_curve_points: int = 2000,
                       rows: np.ndarray | None = None) -> dict:
    """Same as `evaluate_11`, with the image features given in meta-file order (or at `rows`)."""
    tids, tf = template_features(features, flip_features, meta.faceness, meta.templates, meta.medias, opts,
                                 max_memory_gb, rows=rows)
    i1 = template_index(tids, meta.t1, meta.files.get("template_pair_label", "pair list"))
    i2 = template_index(tids, meta.t2, meta.files.get("template_pair_label", "pair list"))
    scores = pair_scores(tf, i1, i2, backend=backend, ctx=ctx, max_memory_gb=max_memory_gb)
    n_gen = int(meta.labels.sum())
    if n_gen == 0 or n_gen == meta.labels.size:
        raise FormatError("the pair list needs both genuine (1) and impostor (0) pairs")
    tar, curve = roc_table(scores, meta.labels, fars, rules, max_curve_points)
    return {"tar": tar, "roc": curve, "scores": scores, "n_templates": int(tids.size), "n_pairs": int(scores.size),
            "n_genuine": n_gen, "options": opts.label}


def metrics_from(result: dict, rule: str) -> dict[str, float]:
    """Record metrics (percent) for one rule."""
    return {rate_key("TAR@FAR", f): 100.0 * v for f, v in result["tar"][rule].items()}
