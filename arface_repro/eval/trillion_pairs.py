"""Trillion-Pairs (DeepGlint) verification and identification, exact and streaming.

Inputs: probe features P (n × d, with an identity per row) and distractor features D (m × d); rows are
L2-normalised (re-normalised here chunk by chunk, which is a no-op for conforming files); score = dot
product.

Verification (TPR@FPR = 1e-9 by default): genuine pairs = unordered probe pairs of the same identity;
impostor pairs = every probe × distractor pair plus every unordered probe pair of different
identities (N_imp = n·m + n(n−1)/2 − N_gen). Strict rule: K = ⌊FPR·N_imp⌋, v = the (K+1)-th largest
impostor score, a pair is accepted iff score > v (so at most K impostors are accepted); TPR = share of
genuine scores > v. Only the K+1 largest impostor scores are needed: they are kept by an exact running
top-k over score blocks, never storing the ~10^11 scores.

Identification (TPR@FPR = 1e-3 by default) — this package's definition, as DeepGlint did not publish
its scoring code: for each identity with ≥ 2 probe images, the first image (in file order) is enrolled;
the gallery is all enrolled images plus all distractors; every other probe image of those identities
is a query. For query q of identity c: mated score m_q = score(q, enrolled image of c); non-mated score
n_q = max over the gallery without c's image (distractors and other identities' enrolled images).
With Q queries, K = ⌊FPR·Q⌋ and v = the (K+1)-th largest n_q (the most permissive threshold at which
at most a share FPR of queries raises a false alarm), TPR = share of queries with m_q > v and m_q > n_q
(correct at rank 1 and above the threshold; ties count as failures).

Blocks lie on a fixed 2-D grid (probe rows × distractor/probe columns) independent of the number of
processes; under torch.distributed each rank takes every world-th block and the top-k, maxima and
genuine scores are merged, giving the single-process numbers exactly.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from arface_repro.errors import FormatError
from arface_repro.eval.chunked import (Backend, DistContext, RowTopK, TopK, block_columns, budget_bytes,
                                       chunk_grid, strict_k, tar_at_far_from_top)
from arface_repro.eval.megaface import l2n


def _blocks(n_rows: int, n_cols: int, max_memory_gb: float | None, row_cap: int = 8192) -> tuple[int, int]:
    rows = min(max(1, n_rows), row_cap)
    cols = block_columns(rows, max_memory_gb)
    return rows, cols


def enrolment(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(enrolled rows, query rows, query -> enrolled-position) for identities with ≥ 2 images."""
    uid, first, inv, cnt = np.unique(ids, return_index=True, return_inverse=True, return_counts=True)
    ok = cnt >= 2
    enrolled = np.sort(first[ok])
    pos_of_id = np.full(uid.size, -1, np.int64)
    pos_of_id[np.flatnonzero(ok)] = np.searchsorted(enrolled, first[ok])
    is_first = np.zeros(ids.size, bool)
    is_first[first] = True
    queries = np.flatnonzero(ok[inv] & ~is_first)
    return enrolled, queries, pos_of_id[inv[queries]]


def evaluate(probes, probe_ids: Sequence, distractors, *, ver_fpr: float = 1e-9, id_fpr: float = 1e-3,
             backend: Backend | None = None, ctx: DistContext | None = None, max_memory_gb: float | None = None,
             progress: bool = False) -> dict:
    """Both tasks in one pass over the probe × distractor blocks; returns fractions and counts."""
    backend = backend or Backend()
    ctx = ctx or DistContext()
    ids = np.asarray(probe_ids)
    n, m = int(probes.shape[0]), int(distractors.shape[0])
    if ids.size != n:
        raise FormatError(f"{ids.size} probe labels for {n} probe feature rows")
    if probes.shape[1] != distractors.shape[1]:
        raise FormatError(f"probe dimension {probes.shape[1]} != distractor dimension {distractors.shape[1]}")
    _, id_inv, id_cnt = np.unique(ids, return_inverse=True, return_counts=True)
    n_gen = int((id_cnt * (id_cnt - 1) // 2).sum())
    if n_gen == 0:
        raise FormatError("no identity has two probe images: no genuine pairs")
    n_imp = n * m + n * (n - 1) // 2 - n_gen
    ver_top = TopK(strict_k(ver_fpr, n_imp) + 1)
    row_max = RowTopK(n, 1)  # per probe: max distractor score
    rows, cols = _blocks(n, m, max_memory_gb)
    blocks = [("d", r0, r1, c0, c1) for r0, r1 in chunk_grid(n, rows) for c0, c1 in chunk_grid(m, cols)]
    blocks += [("p", r0, r1, c0, c1) for r0, r1 in chunk_grid(n, rows) for c0, c1 in chunk_grid(n, min(cols, rows * 4))
               if c1 > r0 + 1]
    genuine = []
    it = ctx.mine(blocks)
    if progress:
        from tqdm import tqdm  # noqa: PLC0415
        it = tqdm(it, desc="Trillion-Pairs blocks", unit="block")
    cached_rows = (None, None)
    for kind, r0, r1, c0, c1 in it:
        if cached_rows[0] != (r0, r1):
            cached_rows = ((r0, r1), backend.put(l2n(np.asarray(probes[r0:r1], np.float32))))
        pr = cached_rows[1]
        if kind == "d":
            blk = backend.scores(pr, backend.put(l2n(np.asarray(distractors[c0:c1], np.float32))))
            ver_top.push_block(backend, blk)
            row_max.push_block(backend, blk, row_offset=r0)
            continue
        s = backend.numpy(backend.scores(pr, backend.put(l2n(np.asarray(probes[c0:c1], np.float32)))))
        gi = np.arange(r0, r1)[:, None]
        gj = np.arange(c0, c1)[None, :]
        upper = gj > gi
        same = id_inv[r0:r1][:, None] == id_inv[c0:c1][None, :]
        genuine.append(s[upper & same])
        ver_top.push(s[upper & ~same & (s > ver_top.tau)], n_seen=0)
    gen = np.concatenate(genuine) if genuine else np.empty(0, np.float32)
    gen = ctx.all_gather_cat(gen)
    imp = ver_top.gather(ctx)
    dmax = row_max.gather(ctx)[:, 0]
    if gen.size != n_gen:  # pragma: no cover - internal consistency
        raise RuntimeError(f"collected {gen.size} genuine scores, expected {n_gen}")
    ver, ver_thr = tar_at_far_from_top(gen, imp, n_imp, ver_fpr)

    # identification: queries against the enrolled images (small), plus the distractor maxima above
    enrolled, queries, own = enrolment(ids)
    pf_e = l2n(np.asarray(probes[enrolled], np.float32))
    q_rows = max(256, budget_bytes(max_memory_gb) // 16 // max(1, enrolled.size * 4))
    mated = np.empty(queries.size, np.float32)
    nonmated = np.empty(queries.size, np.float32)
    for a, b in chunk_grid(queries.size, q_rows):
        q = l2n(np.asarray(probes[queries[a:b]], np.float32))
        s = q @ pf_e.T
        r = np.arange(b - a)
        mated[a:b] = s[r, own[a:b]]
        s[r, own[a:b]] = -np.inf
        nonmated[a:b] = np.maximum(s.max(axis=1) if s.shape[1] else -np.inf, dmax[queries[a:b]])
    k = strict_k(id_fpr, queries.size)
    srt = -np.sort(-nonmated)
    v = srt[k] if k < srt.size else -np.inf
    ident = float(np.mean((mated > v) & (mated > nonmated))) if queries.size else float("nan")
    return {"ver": ver, "ver_threshold": ver_thr, "ver_fpr": ver_fpr, "n_genuine": n_gen, "n_impostor": n_imp,
            "id": ident, "id_threshold": float(v), "id_fpr": id_fpr, "n_queries": int(queries.size),
            "n_enrolled": int(enrolled.size), "n_probe": n, "n_distractor": m}


def metrics_from(result: dict) -> dict[str, float]:
    return {f"Ver@FPR={result['ver_fpr']:.0e}".replace("e-0", "e-"): 100.0 * result["ver"],
            f"Id@FPR={result['id_fpr']:.0e}".replace("e-0", "e-"): 100.0 * result["id"]}


def brute_force(probes: np.ndarray, probe_ids: Sequence, distractors: np.ndarray, ver_fpr: float, id_fpr: float) -> dict:
    """Reference by full score matrices and full sorts (small inputs only; used by tests)."""
    p, d = l2n(probes), l2n(distractors)
    ids = np.asarray(probe_ids)
    pp = p @ p.T
    iu = np.triu_indices(p.shape[0], 1)
    same = ids[iu[0]] == ids[iu[1]]
    gen = pp[iu][same]
    imp = np.concatenate([(p @ d.T).ravel(), pp[iu][~same]])
    imp_sorted = -np.sort(-imp)
    k = strict_k(ver_fpr, imp.size)
    ver = float(np.mean(gen > imp_sorted[k])) if k < imp.size else 1.0
    enrolled, queries, own = enrolment(ids)
    gal = np.vstack([p[enrolled], d])
    s = p[queries] @ gal.T
    r = np.arange(queries.size)
    mated = s[r, own]
    s[r, own] = -np.inf
    nonm = s.max(axis=1)
    k2 = strict_k(id_fpr, queries.size)
    v = -np.sort(-nonm)[k2] if k2 < queries.size else -np.inf
    return {"ver": ver, "id": float(np.mean((mated > v) & (mated > nonm))), "imp_sorted": imp_sorted, "gen": gen}
