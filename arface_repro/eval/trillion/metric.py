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

Both tasks come from two streaming passes (`topk_scan.scan_top`): probes × distractors (each probe's
best distractor score and the global top-k of those impostors) and probes × probes (genuine scores by
identity; impostor candidates above the first pass's k-th value merged into the same top-k). Column
chunks are shared among torch.distributed ranks on a fixed grid and merged, giving the single-process
numbers exactly.

Audit: DeepGlint evaluated submissions on its server and published no scoring code, so both metrics are
this package's definitions (labelled `own` in protocols/trillion.yaml); the counts of genuine and
impostor pairs follow the challenge's description (every probe × distractor pair and every probe × probe
pair, 0.4 trillion in all).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from arface_repro.errors import FormatError
from arface_repro.eval.chunked import (
    Backend,
    DistContext,
    TopK,
    budget_bytes,
    chunk_grid,
    l2n,
    strict_k,
    tar_at_far_from_top,
)
from arface_repro.eval.metric_keys import rate_key
from arface_repro.eval.topk_scan import scan_top


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
             threads: int | None = None, progress: bool = False) -> dict:
    """Both tasks; returns fractions and counts. `probes`, `distractors`: N×D array-likes (memmaps are
    read chunk by chunk and normalised per chunk)."""
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
    if m == 0:  # identification needs distractors to rank against; verification would have no distractor pairs
        raise FormatError("the distractor matrix has no rows: Trillion-Pairs scores probes against distractors")
    n_imp = n * m + n * (n - 1) // 2 - n_gen
    k_ver = strict_k(ver_fpr, n_imp) + 1
    p = l2n(np.asarray(probes, np.float32))
    kw = dict(backend=backend, ctx=ctx, max_memory_gb=max_memory_gb, threads=threads, progress=progress)
    pd = scan_top(p, lambda c0, c1: l2n(np.asarray(distractors[c0:c1], np.float32)), m, k_row=1, k_global=k_ver,
                  desc="Trillion-Pairs distractors", **kw)
    dmax = pd.row_top[m][:, 0]
    floor = float(pd.global_top[-1]) if pd.global_top.size >= k_ver else -np.inf

    def exclude(rows, c0, c1):  # lower triangle, diagonal and same-identity pairs are not impostors
        cols = np.arange(c0, c1)
        return (cols[None, :] <= rows[:, None]) | (id_inv[rows][:, None] == id_inv[c0:c1][None, :])

    pp = scan_top(p, lambda c0, c1: p[c0:c1], n, k_row=0, k_global=k_ver, exclude=exclude, floor=floor,
                  desc="Trillion-Pairs probe pairs", **kw)
    top = TopK(k_ver)
    top.push(np.concatenate([pd.global_top, pp.global_top]), n_seen=0)
    imp = top.values()
    # genuine scores: each identity's F @ F.T, upper triangle
    order = np.argsort(id_inv, kind="stable")
    starts = np.flatnonzero(np.concatenate([[True], id_inv[order][1:] != id_inv[order][:-1]]))
    bounds = np.append(starts, n)
    gen = np.concatenate([_upper(p[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:]) if b - a > 1])
    if gen.size != n_gen:  # pragma: no cover - internal consistency
        raise RuntimeError(f"collected {gen.size} genuine scores, expected {n_gen}")
    ver, ver_thr = tar_at_far_from_top(gen, imp, n_imp, ver_fpr)

    # identification: queries against the enrolled images (small), plus the distractor maxima above
    enrolled, queries, own = enrolment(ids)
    pf_e = p[enrolled]
    q_rows = max(256, budget_bytes(max_memory_gb) // 16 // max(1, enrolled.size * 4))
    mated = np.empty(queries.size, np.float32)
    nonmated = np.empty(queries.size, np.float32)
    for a, b in chunk_grid(queries.size, q_rows):
        s = p[queries[a:b]] @ pf_e.T
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


def _upper(x: np.ndarray) -> np.ndarray:
    s = x @ x.T
    return s[np.triu_indices(x.shape[0], 1)]


def metrics_from(result: dict) -> dict[str, float]:
    return {rate_key("Ver@FPR", result["ver_fpr"]): 100.0 * result["ver"],
            rate_key("Id@FPR", result["id_fpr"]): 100.0 * result["id"]}
