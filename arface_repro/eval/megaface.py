"""MegaFace Challenge 1 (FaceScrub probes, MegaFace distractors): identification CMC and verification.

Scores are cosine similarities of L2-normalised features (the devkit ranks by L2 distance, which on
normalised features orders pairs identically).

Identification (the devkit's rule): for every probe identity and every ordered pair (gallery image i,
probe image j ≠ i) of its images, the gallery is image i plus the distractor set; the pair succeeds at
rank N when at most N−1 distractors score ≥ the mated score s(i, j) against probe j (ties count against
the probe). CMC(N) = share of successful ordered pairs over all identities, for each distractor set
size (10 … 1e6). Only ranks ≤ `max_rank` are needed, so per probe image and per distractor set we keep
the sorted top-`max_rank` distractor scores (a running top-k over distractor chunks; the 3,530 × 1M
score matrix never exists) and count.

Verification: genuine = probe–probe pairs of the same identity (unordered), impostor = every
probe–distractor pair of the largest set; TAR at FAR = 1e-6 by the strict rule (threshold = the
(⌊FAR·N_imp⌋+1)-th largest impostor score, accept when score > threshold), from a running top-k.

Noise lists, labelled in records as `noise`:
* 'insightface': each noisy FaceScrub feature is replaced by the L2-normalised mean of the normalised
  clean features of its identity; noisy distractors are pushed out of reach (they stay in the set and
  in the impostor count, but never score above anything — insightface appends a 513th dimension of 100
  under L2 distance, which has the same effect on ranks).
* 'exclude': noisy FaceScrub images and noisy distractors are removed.
* 'none': lists ignored.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from arface_repro.errors import ConfigError, FormatError
from arface_repro.eval.chunked import (Backend, DistContext, RowTopK, TopK, block_columns, chunk_grid,
                                       strict_k, tar_at_far_from_top)

DEFAULT_SIZES = (10, 100, 1000, 10000, 100000, 1000000)
NOISE_RULES = ("insightface", "exclude", "none")


def l2n(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    if (n == 0).any():
        raise FormatError(f"feature row {int(np.argmax(n[:, 0] == 0))} is all zero; cannot normalise")
    return x / n


def size_key(size: int) -> str:
    """10 -> '1e1', 1000000 -> '1e6' (other sizes verbatim)."""
    e = int(round(np.log10(size))) if size > 0 else 0
    return f"1e{e}" if 10 ** e == size else str(size)


def clean_probes(probe_feats: np.ndarray, probe_ids: Sequence, noisy: np.ndarray | None, rule: str):
    """(features L2-normalised, ids, kept rows) after applying the FaceScrub noise rule."""
    f = l2n(probe_feats)
    ids = np.asarray(probe_ids)
    keep = np.arange(f.shape[0])
    if noisy is None or rule == "none" or not noisy.any():
        return f, ids, keep
    if rule == "exclude":
        keep = np.flatnonzero(~noisy)
        return f[keep], ids[keep], keep
    if rule == "insightface":
        f = f.copy()
        for ident in np.unique(ids[noisy]):
            members = ids == ident
            clean = members & ~noisy
            if not clean.any():
                raise FormatError(f"FaceScrub identity {ident}: every image is in the noise list; no clean mean to use")
            c = f[clean].astype(np.float64).mean(axis=0)
            f[members & noisy] = (c / np.linalg.norm(c)).astype(np.float32)
        return f, ids, keep
    raise ConfigError(f"unknown noise rule {rule!r} (expected {', '.join(NOISE_RULES)})")


def default_sets(n_distractors: int, sizes: Sequence[int] = DEFAULT_SIZES) -> dict[int, np.ndarray]:
    """Nested prefix sets {size: arange(size)} for the sizes not above the number of distractors."""
    out = {int(s): np.arange(s) for s in sizes if s <= n_distractors}
    if not out:
        raise ConfigError(f"{n_distractors} distractors: fewer than the smallest set size {min(sizes)}")
    return out


def evaluate(probe_feats: np.ndarray, probe_ids: Sequence, distractors, *, sets: dict[int, np.ndarray] | None = None,
             probe_noise: np.ndarray | None = None, distractor_noise: np.ndarray | None = None,
             noise_rule: str = "insightface", max_rank: int = 10, far: float = 1e-6,
             backend: Backend | None = None, ctx: DistContext | None = None, max_memory_gb: float | None = None,
             progress: bool = False) -> dict:
    """Identification CMC per distractor-set size and verification TAR@FAR.

    `distractors`: an N×D array-like supporting row slices (np.ndarray, np.memmap); rows are normalised
    chunk by chunk. `sets`: {size: sorted indices into distractors} (default: nested prefixes).
    Returns fractions: {'cmc': {size: [rank1..rankK]}, 'ver': TAR, 'ver_threshold', counts...}.
    """
    if noise_rule not in NOISE_RULES:
        raise ConfigError(f"unknown noise rule {noise_rule!r} (expected {', '.join(NOISE_RULES)})")
    backend = backend or Backend()
    ctx = ctx or DistContext()
    n_dis = int(distractors.shape[0])
    sets = default_sets(n_dis) if sets is None else {int(k): np.asarray(v, np.int64) for k, v in sets.items()}
    for size, idx in sets.items():
        if idx.size and (idx.min() < 0 or idx.max() >= n_dis or (np.diff(idx) <= 0).any()):
            raise FormatError(f"distractor set of size {size}: indices must be sorted, unique and < {n_dis}")
    pf, ids, _ = clean_probes(probe_feats, probe_ids, probe_noise, noise_rule)
    dnoise = np.zeros(n_dis, bool) if distractor_noise is None or noise_rule == "none" else np.asarray(distractor_noise, bool)
    if dnoise.size != n_dis:
        raise FormatError(f"distractor noise mask has {dnoise.size} entries for {n_dis} distractors")
    if noise_rule == "exclude" and dnoise.any():
        sets = {s: idx[~dnoise[idx]] for s, idx in sets.items()}
    push_out = dnoise if noise_rule == "insightface" else np.zeros(n_dis, bool)

    n = pf.shape[0]
    largest = max(sets)
    ver_set = sets[largest]
    n_imp = n * int(ver_set.size)
    ver_top = TopK(strict_k(far, n_imp) + 1)
    tops = {s: RowTopK(n, max_rank) for s in sets}
    p_dev = backend.put(pf)
    cols = block_columns(n, max_memory_gb)
    grid = chunk_grid(n_dis, cols)
    it = ctx.mine(grid)
    if progress:
        from tqdm import tqdm  # noqa: PLC0415
        it = tqdm(it, desc="MegaFace distractors", unit="chunk")
    for s, e in it:
        d = np.asarray(distractors[s:e], np.float32)
        blk = backend.scores(p_dev, backend.put(l2n(d)))
        po = np.flatnonzero(push_out[s:e])
        if po.size:
            blk[:, _index(backend, po)] = -np.inf
        for size, idx in sets.items():
            lo, hi = np.searchsorted(idx, [s, e])
            if hi == lo:
                continue
            sub = blk if hi - lo == e - s else blk[:, _index(backend, idx[lo:hi] - s)]
            tops[size].push_block(backend, sub)
            if size == largest:
                ver_top.push_block(backend, sub)
    top_vals = {size: t.gather(ctx) for size, t in tops.items()}
    imp = ver_top.gather(ctx)

    # mated scores and CMC by counting
    uid, inv = np.unique(ids, return_inverse=True)
    cmc_hits = {size: np.zeros(max_rank, np.int64) for size in sets}
    n_ordered = 0
    genuine = []
    for g in range(uid.size):
        m = np.flatnonzero(inv == g)
        if m.size < 2:
            continue
        sm = pf[m] @ pf[m].T  # sm[j, i] = score(probe j, gallery i)
        off = ~np.eye(m.size, dtype=bool)
        n_ordered += int(off.sum())
        genuine.append(sm[np.triu_indices(m.size, 1)])
        for size in sets:
            tv = top_vals[size][m]  # (m, K) per probe j
            cnt = (tv[:, None, :] >= sm[:, :, None]).sum(axis=2)  # distractors ≥ mated, per (j, i)
            cnt = cnt[off]
            for r in range(max_rank):
                cmc_hits[size][r] += int((cnt <= r).sum())
    if n_ordered == 0:
        raise FormatError("no probe identity has two or more images; MegaFace identification needs pairs")
    gen = np.concatenate(genuine)
    tar, thr = tar_at_far_from_top(gen, imp, n_imp, far)
    return {
        "cmc": {size: (cmc_hits[size] / n_ordered).tolist() for size in sorted(sets)},
        "ver": tar, "ver_threshold": thr, "far": far, "n_probe": n, "n_ordered_pairs": n_ordered,
        "n_genuine": int(gen.size), "n_impostor": n_imp, "set_sizes": {s: int(sets[s].size) for s in sorted(sets)},
        "noise": noise_rule,
    }


def _index(backend: Backend, idx: np.ndarray):
    if backend.kind == "numpy":
        return idx
    import torch  # noqa: PLC0415
    return torch.from_numpy(np.ascontiguousarray(idx)).to(backend.device)


def metrics_from(result: dict) -> dict[str, float]:
    """Record metrics (percent): 'Id@<largest size>' (rank-1) and 'Ver@FAR=1e-6'."""
    largest = max(result["cmc"])
    far = result["far"]
    out = {f"Id@{size_key(largest)}": 100.0 * result["cmc"][largest][0],
           f"Ver@FAR={far:.0e}".replace("e-0", "e-"): 100.0 * result["ver"]}
    for size in sorted(result["cmc"]):
        if size != largest:
            out[f"Id@{size_key(size)}"] = 100.0 * result["cmc"][size][0]
    return out


def brute_force_cmc(probe_feats: np.ndarray, probe_ids: Sequence, distractors: np.ndarray, max_rank: int = 10) -> list[float]:
    """Reference CMC by building every gallery explicitly (small inputs only; used by tests)."""
    pf, dis = l2n(probe_feats), l2n(distractors)
    ids = np.asarray(probe_ids)
    hits = np.zeros(max_rank, np.int64)
    total = 0
    for ident in np.unique(ids):
        m = np.flatnonzero(ids == ident)
        for i in m:
            for j in m:
                if i == j:
                    continue
                gallery = np.vstack([pf[i:i + 1], dis])
                sc = gallery @ pf[j]
                order = np.argsort(-sc, kind="stable")
                # ties against the probe: distractors equal to the mated score rank before it
                rank = 1 + int((sc[1:] >= sc[0]).sum())
                assert order.size == gallery.shape[0]
                total += 1
                for r in range(max_rank):
                    hits[r] += rank <= r + 1
    return (hits / total).tolist()
