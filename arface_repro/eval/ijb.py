"""IJB-B / IJB-C 1:1 verification (template-based), as insightface's `ijb_11.py` computes it.

Image features -> template features -> pair scores -> TAR@FAR table:

1. Per image (`image_features`): combine the network outputs of the image and of its horizontal flip
   ('add' = sum, default; 'concat'; 'none' = no flip), optionally L2-normalise each image (off by
   default: the norm acts as a quality weight), optionally multiply by the detector's faceness score
   (on by default).
2. Per template (`template_features`): average the images that share a media id, sum the media
   averages, L2-normalise. This equals one weighted sum per template (weight = 1 / images in that
   media), which is computed as a sparse-matrix product in image chunks (float64 accumulation).
3. Pair scores (`pair_scores`): dot products of template features. Pairs are grouped by their first
   template; for a block of first templates the dense block of dot products with the second templates
   they meet is one BLAS matmul, from which the pairs are gathered (no Python loop over pairs). Blocks
   lie on a fixed grid, so sharding them over processes gives bit-identical scores.
4. Table (`tar_table`): TAR at FAR 1e-6 … 1e-1 by the 'nearest' rule (insightface: sklearn roc_curve,
   TPR at the ROC point whose FPR is nearest to the target; on equal distance the point later in
   sklearn's order, i.e. the larger TPR — insightface flips the arrays and takes the first minimum) or
   the 'strict' rule (TAR at the most permissive threshold whose FAR ≤ target).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from arface_repro.errors import ConfigError, FormatError, MissingDataError
from arface_repro.eval.chunked import Backend, DistContext, budget_bytes, chunk_grid

FARS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
FLIP_MODES = ("add", "concat", "none")


def far_key(far: float) -> str:
    """'TAR@FAR=1e-6' style record key."""
    return f"TAR@FAR=1e-{round(-math.log10(far))}" if far < 1 else f"TAR@FAR={far:g}"


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
    """Combined per-image features (float64) of the selected rows."""
    f = np.asarray(features[rows], np.float64)
    if opts.flip != "none":
        if flip_features is None:
            raise MissingDataError(f"flip mode {opts.flip!r} needs flip features; the feature store has none (use --flip none)")
        g = np.asarray(flip_features[rows], np.float64)
        f = f + g if opts.flip == "add" else np.concatenate([f, g], axis=1)
    if opts.normalize:
        f /= np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-30)
    if opts.faceness:
        if faceness is None:
            raise MissingDataError("faceness weighting needs the *_name_5pts_score.txt scores")
        f *= np.asarray(faceness[rows], np.float64)[:, None]
    return f


def pooling_weights(templates: np.ndarray, medias: np.ndarray):
    """(template ids sorted, sparse T×N matrix of weights 1/|images of the image's media in its template|)."""
    from scipy import sparse  # noqa: PLC0415

    templates = np.asarray(templates, np.int64)
    medias = np.asarray(medias, np.int64)
    n = templates.size
    tids, t_inv = np.unique(templates, return_inverse=True)
    # (template, media) groups and their sizes
    key = t_inv.astype(np.int64) * (int(medias.max() - medias.min()) + 1) + (medias - medias.min())
    _, g_inv, g_cnt = np.unique(key, return_inverse=True, return_counts=True)
    w = 1.0 / g_cnt[g_inv]
    mat = sparse.csr_matrix((w, (t_inv, np.arange(n))), shape=(tids.size, n))
    return tids, mat


def template_features(features: np.ndarray, flip_features: np.ndarray | None, faceness: np.ndarray | None,
                      templates: np.ndarray, medias: np.ndarray, opts: CombineOptions = CombineOptions(),
                      max_memory_gb: float | None = None, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(template ids, L2-normalised template features float32), images processed in memory-bounded chunks.

    Image i (with `templates[i]`, `medias[i]`, `faceness[i]`) has features `features[rows[i]]` (and
    `flip_features[rows[i]]`); `rows` defaults to 0..N-1, and lets a feature store in any order be used
    without copying it. Template = Σ_media mean(images of that media), then L2-normalised.
    """
    n = len(templates)
    if len(medias) != n or (rows is None and features.shape[0] != n) or (rows is not None and len(rows) != n):
        raise FormatError(f"{features.shape[0] if rows is None else len(rows)} feature rows for {n} template/media entries")
    tids, w = pooling_weights(templates, medias)
    d = features.shape[1] * (2 if opts.flip == "concat" else 1)
    out = np.zeros((tids.size, d), np.float64)
    step = max(1024, budget_bytes(max_memory_gb) // 8 // (d * 8 * 3))
    wc = w.tocsc()
    for s, e in chunk_grid(n, step):
        sel = slice(s, e) if rows is None else np.asarray(rows[s:e])
        x = image_features(features, flip_features, None, CombineOptions(opts.flip, opts.normalize, False), sel)
        if opts.faceness:
            if faceness is None:
                raise MissingDataError("faceness weighting needs the *_name_5pts_score.txt scores")
            x *= np.asarray(faceness[s:e], np.float64)[:, None]
        out += wc[:, s:e] @ x
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        raise FormatError(f"template {tids[zero[0]]} has an all-zero feature (zero faceness?); cannot normalise")
    return tids, (out / norms).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# pair scores


def template_index(tids: np.ndarray, query: np.ndarray, what: str = "pair list") -> np.ndarray:
    """Positions (int32) of `query` template ids in the sorted `tids`; unknown ids are an error naming them.

    Non-negative ids up to 2^27 use a lookup table (linear time on 15M pairs), others a binary search.
    """
    query = np.asarray(query)
    if tids.size and tids[0] >= 0 and tids[-1] < (1 << 27) and query.size > 4 * tids.size:
        lut = np.full(int(tids[-1]) + 2, -1, np.int32)
        lut[tids] = np.arange(tids.size, dtype=np.int32)
        q = np.clip(query, -1, tids[-1] + 1)
        pos = lut[q]
        pos[q < 0] = -1
        bad = np.flatnonzero(pos < 0)
    else:
        pos = np.minimum(np.searchsorted(tids, query), max(0, tids.size - 1)).astype(np.int32)
        bad = np.flatnonzero(tids[pos] != query) if tids.size else np.arange(query.size)
    if bad.size:
        shown = ", ".join(str(int(query[b])) for b in bad[:5])
        raise MissingDataError(f"{what}: {bad.size} entr(ies) name templates with no images "
                               f"(line {bad[0] + 1} first): template id(s) {shown}")
    return pos


def pair_scores(feats: np.ndarray, i1: np.ndarray, i2: np.ndarray, *, backend: Backend | None = None,
                ctx: DistContext | None = None, max_memory_gb: float | None = None,
                rows_per_block: int | None = None) -> np.ndarray:
    """score[p] = feats[i1[p]] · feats[i2[p]] for every pair, float32, in pair order (all ranks get all).

    Pairs are grouped by i1 (no sort when the list already is, as IJB lists are); blocks of
    `rows_per_block` distinct i1 values take one matmul against the distinct i2 values they pair with,
    from which the pairs are gathered (or a row-wise dot product when that block is too sparse).
    Distinct values and inverse indices come from lookup tables, not sorts.
    """
    backend = backend or Backend()
    ctx = ctx or DistContext()
    n_t = feats.shape[0]
    i1 = np.asarray(i1)
    i2 = np.asarray(i2)
    if i1.size and (i1.min() < 0 or i1.max() >= n_t or i2.min() < 0 or i2.max() >= n_t):
        raise ValueError("pair indices out of range of the template features")
    order = None if i1.size < 2 or bool(np.all(i1[1:] >= i1[:-1])) else np.argsort(i1, kind="stable")
    s1 = i1 if order is None else i1[order]
    starts = np.flatnonzero(np.concatenate([[True], s1[1:] != s1[:-1]])) if s1.size else np.empty(0, np.int64)
    u1 = s1[starts]
    bounds = np.append(starts, s1.size)
    budget = budget_bytes(max_memory_gb) // 4
    if rows_per_block is None:  # a dense block of rows × all templates stays within the budget
        rows_per_block = int(min(256, max(8, budget // (8 * max(1, n_t)))))
    scores = np.empty(i1.size, np.float32)
    mine_idx: list[np.ndarray] = []
    host = np.ascontiguousarray(feats, np.float32)
    dev_feats = backend.put(host) if backend.kind == "torch" else host
    present = np.zeros(n_t, bool)
    lut = np.empty(n_t, np.int64)
    for b0, b1 in ctx.mine(chunk_grid(u1.size, rows_per_block)):
        p0, p1 = int(bounds[b0]), int(bounds[b1])
        idx = np.arange(p0, p1) if order is None else order[p0:p1]
        cols = i2[p0:p1] if order is None else i2[idx]
        present[cols] = True
        ucols = np.flatnonzero(present)
        present[ucols] = False
        lut[ucols] = np.arange(ucols.size)
        cinv = lut[cols]
        ur = u1[b0:b1]
        rinv = np.repeat(np.arange(ur.size), np.diff(bounds[b0:b1 + 1]))
        dense = ur.size * ucols.size
        if dense <= 16 * cinv.size and dense * 4 * 2 <= budget:
            flat = rinv * ucols.size + cinv
            if backend.kind == "numpy":
                blk = dev_feats[ur] @ dev_feats[ucols].T
                sc = np.take(blk.ravel(), flat)
            else:
                import torch  # noqa: PLC0415
                dev = backend.device
                blk = dev_feats[torch.from_numpy(ur).to(dev)] @ dev_feats[torch.from_numpy(ucols).to(dev)].T
                sc = backend.numpy(blk.reshape(-1)[torch.from_numpy(flat).to(dev)])
        else:
            rows = s1[p0:p1]
            sc = np.empty(cinv.size, np.float32)
            step = max(1, budget // (host.shape[1] * 4 * 2))
            for a, e in chunk_grid(cinv.size, step):
                sc[a:e] = np.einsum("ij,ij->i", host[rows[a:e]], host[cols[a:e]])
        scores[idx] = sc
        if ctx.active:
            mine_idx.append(idx)
    if ctx.active:
        idx_all = np.concatenate(mine_idx) if mine_idx else np.empty(0, np.int64)
        got_idx = ctx.all_gather(idx_all)
        got_sc = ctx.all_gather(scores[idx_all])
        for gi, gs in zip(got_idx, got_sc):
            scores[gi] = gs
        if sum(g.size for g in got_idx) != i1.size:  # pragma: no cover - internal consistency
            raise RuntimeError("pair_scores lost pairs while merging blocks")
    return scores


# --------------------------------------------------------------------------------------------------
# TAR@FAR rules


def _local_tar_at_far(scores: np.ndarray, labels: np.ndarray, fars: Sequence[float], rule: str) -> dict[float, float]:
    """Both rules on full score arrays (used until/unless arface_repro.eval.roc provides them)."""
    from sklearn.metrics import roc_curve  # noqa: PLC0415

    scores = np.asarray(scores)
    labels = np.asarray(labels).astype(np.int64)
    if rule == "nearest":
        fpr, tpr, _ = roc_curve(labels, scores)
        out = {}
        for far in fars:
            d = np.abs(fpr - far)
            hits = np.flatnonzero(d == d.min())
            out[far] = float(tpr[hits[-1]])
        return out
    if rule == "strict":
        gen = np.sort(scores[labels == 1])
        imp = -np.sort(-scores[labels == 0])
        out = {}
        for far in fars:
            k = int(math.floor(far * imp.size + 1e-9 * max(1.0, far * imp.size)))
            if k >= imp.size:
                out[far] = 1.0
                continue
            v = imp[k]
            out[far] = float(gen.size - np.searchsorted(gen, v, side="right")) / max(1, gen.size)
        return out
    raise ConfigError(f"unknown TAR@FAR rule {rule!r} (expected nearest or strict)")


def fast_roc(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, keep): the full ROC exactly as `sklearn.metrics.roc_curve(labels, scores,
    drop_intermediate=False)` returns it, and the mask of the points sklearn keeps with its default
    drop_intermediate=True.

    Faster than sklearn on 15M scores: only the impostor scores are sorted (float32, no argsort); the
    few genuine scores are merged in by binary search. Per distinct score value (descending) tps/fps are
    the numbers of genuine/impostor scores ≥ it — the same integers sklearn accumulates — and the rates
    are the same float64 divisions.
    """
    scores = np.asarray(scores, np.float32).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    if not np.isfinite(scores).all():
        raise FormatError("scores contain NaN or inf")
    imp = np.sort(scores[~labels])
    gen = np.sort(scores[labels])
    if imp.size == 0 or gen.size == 0:
        raise FormatError("a ROC needs both genuine and impostor scores")

    def runs(x):
        start = np.flatnonzero(np.concatenate([[True], x[1:] != x[:-1]]))
        return x[start], np.diff(np.append(start, x.size))

    iu, ic = runs(imp)
    del imp
    gu, gc = runs(gen)
    pos = np.searchsorted(iu, gu)
    present = np.zeros(gu.size, bool)
    inside = pos < iu.size
    present[inside] = iu[pos[inside]] == gu[inside]
    allu = np.insert(iu, pos[~present], gu[~present])
    ic_all = np.insert(ic, pos[~present], 0)
    del iu, ic
    gc_all = np.zeros(allu.size, np.int64)
    gc_all[np.searchsorted(allu, gu)] = gc
    fps = np.cumsum(ic_all[::-1], dtype=np.int64).astype(np.float64)
    tps = np.cumsum(gc_all[::-1], dtype=np.int64).astype(np.float64)
    del ic_all, gc_all, allu
    keep = np.ones(fps.size, bool)
    if fps.size > 2:
        keep[1:-1] = np.logical_or(np.diff(fps, 2), np.diff(tps, 2))
    fps = np.concatenate([[0.0], fps])
    tps = np.concatenate([[0.0], tps])
    keep = np.concatenate([[True], keep])
    return fps / fps[-1], tps / tps[-1], keep


def tar_table(scores: np.ndarray, labels: np.ndarray, fars: Sequence[float] = FARS,
              rules: Sequence[str] = ("nearest", "strict"), max_points: int = 2000) -> tuple[dict, dict | None]:
    """({rule: {far: TAR}}, downsampled ROC) from one sort; the rules are the project's
    (arface_repro.eval.roc.tar_at_far_from_roc: 'nearest' on sklearn's drop_intermediate curve,
    'strict' on the full curve), applied to `fast_roc`'s exact sklearn-equal curve."""
    fpr, tpr, keep = fast_roc(scores, labels)
    try:
        from arface_repro.eval.roc import downsample_curve, tar_at_far_from_roc  # noqa: PLC0415
    except ImportError:  # pragma: no cover - the project module exists
        tar_at_far_from_roc = downsample_curve = None
    out = {}
    for rule in rules:
        f, t = (fpr[keep], tpr[keep]) if rule == "nearest" else (fpr, tpr)
        if tar_at_far_from_roc is not None:
            out[rule] = {float(k): float(v) for k, v in tar_at_far_from_roc(f, t, list(fars), rule).items()}
        else:
            out[rule] = _rules_from_roc(f, t, fars, rule)
    curve = None
    if max_points:
        f, t = fpr[keep], tpr[keep]
        curve = downsample_curve(f, t, max_points) if downsample_curve is not None else {"fpr": f.tolist(), "tpr": t.tolist()}
    return out, curve


def _rules_from_roc(fpr, tpr, fars, rule):
    out = {}
    for far in fars:
        if rule == "nearest":
            d = np.abs(fpr - far)
            out[float(far)] = float(tpr[np.flatnonzero(d == d.min())[-1]])
        elif rule == "strict":
            ok = fpr <= far
            out[float(far)] = float(tpr[ok].max()) if ok.any() else 0.0
        else:
            raise ConfigError(f"unknown TAR@FAR rule {rule!r} (expected nearest or strict)")
    return out


def tar_at_far(scores: np.ndarray, labels: np.ndarray, fars: Sequence[float] = FARS,
               rule: str = "nearest") -> dict[float, float]:
    """TAR (fraction) per FAR; uses the project's arface_repro.eval.roc when present, else the local rules."""
    try:
        from arface_repro.eval import roc  # noqa: PLC0415
        fn = roc.tar_at_far
    except (ImportError, AttributeError):
        fn = None
    if fn is not None:
        return {float(k): float(v) for k, v in fn(scores, labels, list(fars), rule=rule).items()}
    return _local_tar_at_far(scores, labels, fars, rule)


def roc_points(scores: np.ndarray, labels: np.ndarray, max_points: int = 2000) -> dict:
    """Downsampled ROC (fpr, tpr lists) for records and plots."""
    return tar_table(scores, labels, (), (), max_points)[1]


# --------------------------------------------------------------------------------------------------
# the whole protocol


@dataclass
class IJBMeta:
    images: np.ndarray
    templates: np.ndarray
    medias: np.ndarray
    faceness: np.ndarray | None
    landmarks: np.ndarray | None
    t1: np.ndarray
    t2: np.ndarray
    labels: np.ndarray
    files: dict


def load_ijb_meta(meta_dir: str | os.PathLike, dataset: str, need_pairs: bool = True) -> IJBMeta:
    """Read face_tid_mid, name_5pts_score and (optionally) template_pair_label; check they agree."""
    from arface_repro.io import ijb_meta  # noqa: PLC0415

    f_tm = ijb_meta.find_meta(meta_dir, dataset, "face_tid_mid.txt")
    tm = ijb_meta.read_face_tid_mid(f_tm)
    files = {"face_tid_mid": str(f_tm)}
    faceness = landmarks = None
    try:
        f_5 = ijb_meta.find_meta(meta_dir, dataset, "name_5pts_score.txt")
    except MissingDataError:
        f_5 = None
    if f_5 is not None:
        fp = ijb_meta.read_name_5pts_score(f_5)
        if fp.images.size != tm.images.size or not np.array_equal(fp.images, tm.images):
            mism = np.flatnonzero(fp.images[: tm.images.size] != tm.images[: fp.images.size])
            where = f"line {mism[0] + 1}" if mism.size else "length"
            raise FormatError(f"{f_5}: image list differs from {f_tm} ({where}); both must list the same images in order")
        faceness, landmarks = fp.faceness, fp.landmarks
        files["name_5pts_score"] = str(f_5)
    t1 = t2 = labels = np.empty(0, np.int64)
    if need_pairs:
        f_p = ijb_meta.find_meta(meta_dir, dataset, "template_pair_label.txt")
        t1, t2, labels = ijb_meta.read_template_pairs(f_p)
        files["template_pair_label"] = str(f_p)
    return IJBMeta(tm.images, tm.templates, tm.medias, faceness, landmarks, t1, t2, labels, files)


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
    tar, curve = tar_table(scores, meta.labels, fars, rules, max_curve_points)
    return {"tar": tar, "roc": curve, "scores": scores, "n_templates": int(tids.size), "n_pairs": int(scores.size),
            "n_genuine": n_gen, "options": opts.label}


def metrics_from(result: dict, rule: str) -> dict[str, float]:
    """Record metrics (percent) for one rule."""
    return {far_key(f): 100.0 * v for f, v in result["tar"][rule].items()}


# --------------------------------------------------------------------------------------------------
# from images


def extract_ijb_features(embed: Callable[[np.ndarray], np.ndarray], meta: IJBMeta, image_root: str | os.PathLike,
                         *, batch_size: int = 64, flip: bool = True, progress: bool = True):
    """Align every IJB image from its 5 landmarks and embed it (and its flip): returns (features, flip_features).

    `embed` maps a uint8 RGB batch (B×112×112×3) to features (B×D); images are read from
    `image_root/loose_crop/<name>` (or `image_root/<name>`). Alignment: arface_repro.data.alignment.align_face.
    """
    import cv2  # noqa: PLC0415
    from arface_repro.data.alignment import align_face  # noqa: PLC0415  (written by another developer)

    if meta.landmarks is None:
        raise MissingDataError("extracting IJB features needs the *_name_5pts_score.txt landmarks")
    root = Path(image_root)
    base = root / "loose_crop" if (root / "loose_crop").is_dir() else root
    feats, flips = [], []
    it = range(0, meta.images.size, batch_size)
    if progress:
        from tqdm import tqdm  # noqa: PLC0415
        it = tqdm(it, desc="IJB images", unit="batch")
    for s in it:
        batch = []
        for name, lm in zip(meta.images[s:s + batch_size], meta.landmarks[s:s + batch_size]):
            p = base / str(name)
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is None:
                raise MissingDataError(f"{p}: cannot read IJB image")
            batch.append(align_face(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), lm)[0])
        x = np.stack(batch)
        feats.append(np.asarray(embed(x), np.float32))
        if flip:
            flips.append(np.asarray(embed(np.ascontiguousarray(x[:, :, ::-1])), np.float32))
    return np.concatenate(feats), (np.concatenate(flips) if flip else None)
