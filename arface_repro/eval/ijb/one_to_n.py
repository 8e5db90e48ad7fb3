"""IJB-B / IJB-C 1:N identification (template-based), with the arithmetic of insightface's `ijb_1n.py`.

Template features as in 1:1 (`ijb.py`: float32 image and media stages, float64 templates), normalised by
`x / sqrt(sum(x**2))` as `ijb_1n.py` does; probe-by-gallery similarities are float64 products
(`np.dot`, as the reference) in probe blocks of a fixed grid. A float64 BLAS product is reproducible for
a fixed block shape and thread count only (its last bit depends on both), so insightface's own scores
move in the ~1e-16 place between machines; ranks and rates change only where two scores tie that closely.

Two rules, labelled in records:

* **'open-set'** (the IJB-C protocol, Maze et al. 2018): galleries G1 and G2 are searched separately
  with the mixed probe templates; a probe is *mated* when its subject has a template in that gallery,
  otherwise *non-mated*. Mated probes give CMC (rank of the mated gallery template: 1 + the number of
  other gallery templates scoring ≥ the mated one, i.e. ties count against the probe). Non-mated probes
  give FPIR(τ) = share whose top gallery score is > τ; TPIR(τ) = share of mated probes at rank 1 with
  mated score > τ. For a target FPIR f the threshold is the (⌊f·N_nonmated⌋+1)-th largest non-mated top
  score (the most permissive τ with FPIR ≤ f). Reported per gallery and as the mean of G1 and G2.
* **'insightface'** (`ijb_1n.py` of insightface; the default): one gallery = G1 ∪ G2 (so every probe is
  mated); rank-1/5/10 as above; for FAR f, threshold = the ⌈f·N_probes⌉-th largest of *all* non-mated
  probe–gallery scores, TPIR = share of probes whose mated score > threshold (regardless of rank).
  Audit: the reference ranks by `np.argsort(-similarity)` (not stable), so a gallery template scoring
  exactly the mated score may land before or after it; here ties count against the probe.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from arface_repro.errors import FormatError, MissingDataError
from arface_repro.eval.chunked import Backend, DistContext, TopK, budget_bytes, chunk_grid
from arface_repro.eval.ijb import meta as ijb_meta
from arface_repro.eval.ijb.meta import IJBMeta
from arface_repro.eval.ijb.metric import CombineOptions, store_rows, template_features, template_index
from arface_repro.eval.metric_keys import rate_key
from arface_repro.io.feature_store import check_flip_sum

RANKS = (1, 5, 10)
FPIRS = (1e-2, 1e-1)


def _rank_and_mated(s: np.ndarray, mate_col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows with a mate (col ≥ 0): (rank, mated score); rank 0 / -inf for rows without one."""
    rows = np.flatnonzero(mate_col >= 0)
    rank = np.zeros(s.shape[0], np.int64)
    mated = np.full(s.shape[0], -np.inf, s.dtype)
    if rows.size:
        m = s[rows, mate_col[rows]]
        mated[rows] = m
        rank[rows] = (s[rows] >= m[:, None]).sum(axis=1)  # includes the mate itself -> 1-based rank
    return rank, mated


def search(probe_feats: np.ndarray, gallery_feats: np.ndarray, mate_col: np.ndarray, *,
           backend: Backend | None = None, ctx: DistContext | None = None, max_memory_gb: float | None = None,
           negatives_k: int = 0):
    """Probe-by-gallery search in probe chunks: (rank, mated score, top score, top-k of non-mated scores).

    `mate_col[i]` = gallery column of probe i's subject, or -1. Ranks are exact counts; the optional
    running top-k keeps the `negatives_k` largest non-mated probe–gallery scores.
    """
    backend = backend or Backend()
    ctx = ctx or DistContext()
    probe_feats = np.ascontiguousarray(probe_feats, np.float64)
    gallery_feats = np.ascontiguousarray(gallery_feats, np.float64)
    n, g = probe_feats.shape[0], gallery_feats.shape[0]
    rows = max(64, budget_bytes(max_memory_gb) // 4 // (max(g, 1) * 8 * 3))
    if backend.kind == "torch":
        import torch  # noqa: PLC0415

        gal_t = torch.from_numpy(gallery_feats).to(backend.device)

        def block(s, e):
            return (torch.from_numpy(probe_feats[s:e]).to(backend.device) @ gal_t.T).cpu().numpy()
    else:
        def block(s, e):
            return np.dot(probe_feats[s:e], gallery_feats.T)
    rank = np.zeros(n, np.int64)
    mated = np.full(n, -np.inf, np.float64)
    top = np.full(n, -np.inf, np.float64)
    neg = TopK(negatives_k, dtype=np.float64) if negatives_k else None
    mine = np.zeros(n, bool)
    for s, e in ctx.mine(chunk_grid(n, rows)):
        blk = block(s, e)
        r, m = _rank_and_mated(blk, mate_col[s:e])
        rank[s:e], mated[s:e] = r, m
        mc = mate_col[s:e]
        has = np.flatnonzero(mc >= 0)
        if neg is not None:
            blk[has, mc[has]] = -np.inf  # the mated entry is not a negative
            neg.push(blk[blk > neg.tau] if np.isfinite(neg.tau) else blk[np.isfinite(blk)], n_seen=blk.size - has.size)
            blk[has, mc[has]] = m[has]
        # top score among non-mated gallery entries isn't needed for non-mated probes (all entries are non-mated)
        top[s:e] = blk.max(axis=1)
        mine[s:e] = True
    if ctx.active:
        sel = np.flatnonzero(mine)
        idx = np.concatenate(ctx.all_gather(sel))
        rank[idx] = np.concatenate(ctx.all_gather(rank[sel]))
        mated[idx] = np.concatenate(ctx.all_gather(mated[sel]))
        top[idx] = np.concatenate(ctx.all_gather(top[sel]))
    negs = neg.gather(ctx) if neg is not None else None
    return rank, mated, top, negs


def mate_columns(probe_subjects: np.ndarray, gallery_subjects: np.ndarray, unique_mates: bool = True) -> np.ndarray:
    """Gallery column per probe whose subject is in the gallery, else -1 (a subject may appear once only)."""
    gs, first, cnt = np.unique(gallery_subjects, return_index=True, return_counts=True)
    if unique_mates and (cnt > 1).any():
        raise FormatError(f"gallery has {int((cnt > 1).sum())} subject(s) with more than one template "
                          f"(e.g. subject {gs[cnt > 1][0]}); the 1:N protocol expects one per subject")
    pos = np.clip(np.searchsorted(gs, probe_subjects), 0, gs.size - 1)
    hit = gs[pos] == probe_subjects
    return np.where(hit, first[pos], -1).astype(np.int64)


def open_set_metrics(rank: np.ndarray, mated: np.ndarray, top: np.ndarray, mate_col: np.ndarray,
                     ranks: Sequence[int] = RANKS, fpirs: Sequence[float] = FPIRS) -> dict:
    """CMC over mated probes and TPIR at FPIR (strict threshold from non-mated probes' top scores)."""
    is_m = mate_col >= 0
    if not is_m.any():
        raise FormatError("no probe is mated in this gallery")
    r = rank[is_m]
    out = {f"Rank-{k}": float(np.mean(r <= k)) for k in ranks}
    nm_top = -np.sort(-top[~is_m])
    hit1 = np.where(r == 1, mated[is_m], -np.inf)
    for f in fpirs:
        if nm_top.size == 0:
            out[rate_key("TPIR@FPIR", f)] = float("nan")
            continue
        k = int(math.floor(f * nm_top.size + 1e-9 * max(1.0, f * nm_top.size)))
        v = nm_top[k] if k < nm_top.size else -np.inf
        out[rate_key("TPIR@FPIR", f)] = float(np.mean(hit1 > v))
    out["n_mated"] = int(is_m.sum())
    out["n_nonmated"] = int((~is_m).sum())
    return out


def insightface_metrics(rank: np.ndarray, mated: np.ndarray, negs: np.ndarray, n_probe: int,
                        ranks: Sequence[int] = RANKS, fars: Sequence[float] = FPIRS) -> dict:
    out = {f"Rank-{k}": float(np.mean(rank <= k)) for k in ranks}
    for f in fars:
        k = math.ceil(n_probe * f)
        th = negs[k - 1]
        out[rate_key("TPIR@FPIR", f)] = float(np.sum(mated > th)) / n_probe
    return out


def evaluate_1n(features: np.ndarray, flip_features: np.ndarray | None, meta: IJBMeta,
                galleries: dict[str, tuple[np.ndarray, np.ndarray]], probes: tuple[np.ndarray, np.ndarray], *,
                rule: str = "insightface", opts: CombineOptions = CombineOptions(), backend: Backend | None = None,
                ctx: DistContext | None = None, max_memory_gb: float | None = None, rows: np.ndarray | None = None) -> dict:
    """1:N from image features in meta order (or at `rows`). `galleries` = {'G1': (template ids, subjects), ...}.

    Returns {'metrics': {...}, 'per_gallery': {...}} with fractions.
    """
    tids, tf = template_features(features, flip_features, meta.faceness, meta.templates, meta.medias, opts,
                                 max_memory_gb, rows=rows, norm="sum")
    p_t, p_s = probes
    pf = tf[template_index(tids, p_t, "1:N probe list")]
    if rule == "open-set":
        per = {}
        for name, (g_t, g_s) in galleries.items():
            gf = tf[template_index(tids, g_t, f"1:N gallery {name}")]
            mc = mate_columns(p_s, g_s)
            rank, mated, top, _ = search(pf, gf, mc, backend=backend, ctx=ctx, max_memory_gb=max_memory_gb)
            per[name] = open_set_metrics(rank, mated, top, mc)
        keys = [k for k in next(iter(per.values())) if not k.startswith("n_")]
        mean = {k: float(np.mean([per[g][k] for g in per])) for k in keys}
        return {"metrics": mean, "per_gallery": per}
    if rule == "insightface":
        g_t = np.concatenate([galleries[g][0] for g in galleries])
        g_s = np.concatenate([galleries[g][1] for g in galleries])
        gf = tf[template_index(tids, g_t, "1:N gallery")]
        mc = mate_columns(p_s, g_s)
        if (mc < 0).any():
            bad = int(p_s[np.argmax(mc < 0)])
            raise FormatError(f"insightface 1:N rule: probe subject {bad} has no gallery template in G1 ∪ G2")
        kneg = max(math.ceil(pf.shape[0] * f) for f in FPIRS)
        rank, mated, top, negs = search(pf, gf, mc, backend=backend, ctx=ctx, max_memory_gb=max_memory_gb, negatives_k=kneg)
        return {"metrics": insightface_metrics(rank, mated, negs, pf.shape[0]), "per_gallery": {}}
    raise FormatError(f"unknown IJB 1:N rule {rule!r} (expected open-set or insightface)")


def load_1n_lists(meta_dir: str | os.PathLike, dataset: str):
    """(galleries dict, probes tuple, file paths) from the *_1N_*.csv files (G1/G2 or S1/S2 names)."""

    gal, files = {}, {}
    for g, alt in (("G1", "S1"), ("G2", "S2")):
        try:
            p = ijb_meta.find_meta(meta_dir, dataset, f"1N_gallery_{g}.csv")
        except MissingDataError:
            p = ijb_meta.find_meta(meta_dir, dataset, f"1N_gallery_{alt}.csv")
        gal[g] = ijb_meta.read_1n_csv(p)
        files[g] = str(p)
    pp = ijb_meta.find_meta(meta_dir, dataset, "1N_probe_mixed.csv")
    files["probe"] = str(pp)
    return gal, ijb_meta.read_1n_csv(pp), files


def evaluate_1n_store(store, meta: IJBMeta, galleries, probes, **kw) -> dict:
    rows = store_rows(store, meta.images)
    opts = kw.get("opts", CombineOptions())
    flip = store.flip_features if opts.flip != "none" else None
    if opts.flip == "add":
        check_flip_sum(store, rows)
    return evaluate_1n(store.features, flip, meta, galleries, probes, rows=rows, **kw)
