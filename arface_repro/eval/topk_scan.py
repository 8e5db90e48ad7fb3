"""One streaming pass of probes × columns: per-row top-k snapshots and a global top-k, never the full matrix.

MegaFace's CMC up to rank k needs each probe's top-k distractor scores, its Ver@FAR=1e-6 only the global
top ⌊1e-6·N_imp⌋+1 impostor scores; Trillion-Pairs needs each probe's best distractor score and a global
top-k. `scan_top` computes all of them in one pass over column chunks:

* **Nested sets in one pass.** The columns are scanned in order; the running per-row top-k is copied
  ("snapshot") when the scan has covered the first S columns, for every requested S, so the distractor
  sets 10, 100, …, 1e6 (prefixes) cost one pass. Chunks are split at the snapshot sizes.
* **Cheap filters.** Each score block is reduced to its row maxima first (one vectorised pass); only
  rows whose maximum beats their current k-th best (or the global threshold) are looked at again, and
  only their candidate entries are merged. After the first chunks almost no row qualifies, so the cost
  beyond the float32 matrix product is about one pass over the block while it is in cache.
* **Threads.** Row groups of a chunk are scored in parallel threads, each running a single-threaded BLAS
  product on its rows and reducing its own block (numpy releases the GIL), which keeps every core busy
  with both the products and the reductions.
* **Exactness.** Values are kept as exact multisets; float32 products of a row group × chunk equal the
  corresponding entries of one whole-matrix product for this BLAS (tested; blocks never have a
  dimension of 1, see `chunked.chunk_grid`). Column chunks are shared among torch.distributed ranks on a
  fixed grid and merged, so any number of processes gives the same values.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from arface_repro.eval.chunked import Backend, DistContext, TopK, _row_topk_np, budget_bytes, chunk_grid
from arface_repro.utils.cpus import usable_cpus

ROW_GROUP = 512
SUB_BLOCK = 2048   # columns per product inside a task: a row group x 2048 float32 block stays in cache


@dataclass
class ScanResult:
    row_top: dict[int, np.ndarray]      # snapshot size -> (n, k_row) float32, descending, -inf padded
    global_top: np.ndarray | None       # top k_global values over the first `global_end` columns, descending
    n_cols: int


def default_threads() -> int:
    return usable_cpus(8)


def column_grid(n_cols: int, width: int, cuts: Sequence[int]) -> list[tuple[int, int]]:
    """Chunks of at most `width` columns, split at every cut (so each cut is a chunk boundary)."""
    bounds = sorted({0, n_cols, *[int(c) for c in cuts if 0 < c < n_cols]})
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        out += [(a + s, a + e) for s, e in chunk_grid(b - a, width)]
    return out


def _merge_rows(cur: np.ndarray, sub: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """New top-k of rows whose current top-k is `cur` (h×k) and who gained the block rows `sub` (h×w)."""
    k = cur.shape[1]
    if k == 1:
        return np.maximum(cur, sub.max(axis=1, keepdims=True))
    mask = sub > tau[:, None]
    cnt = np.count_nonzero(mask, axis=1)
    out = np.empty_like(cur)
    many = cnt > 4 * k
    if many.any():
        m = np.flatnonzero(many)
        out[m] = _row_topk_np(np.concatenate([cur[m], _row_topk_np(sub[m], k)], axis=1), k)
    few = np.flatnonzero(~many)
    if few.size:
        r, c = np.nonzero(mask[few])
        width = max(1, int(cnt[few].max()))
        pad = np.full((few.size, width), -np.inf, np.float32)
        start = np.concatenate([[0], np.cumsum(cnt[few])[:-1]])
        pad[r, np.arange(r.size) - start[r]] = sub[few[r], c]
        out[few] = _row_topk_np(np.concatenate([cur[few], pad], axis=1), k)
    return out


def scan_top(probes: np.ndarray, columns: Callable[[int, int], np.ndarray], n_cols: int, *, k_row: int,
             snapshots: Sequence[int] = (), k_global: int = 0, global_end: int | None = None,
             push_out: np.ndarray | None = None, exclude: Callable | None = None, floor: float = -math.inf,
             backend: Backend | None = None, ctx: DistContext | None = None,
             max_memory_gb: float | None = None, threads: int | None = None, progress: bool = False,
             desc: str = "columns") -> ScanResult:
    """Scores = probes (n×d float32, rows normalised) · columns(c0, c1).T (float32 rows, normalised).

    Returns the per-row top-`k_row` over the first S columns for every S in `snapshots` (and `n_cols`;
    `k_row` = 0: none), and the global top-`k_global` over the first `global_end` columns (default all).
    `push_out`: bool per column; those columns score -inf (they cannot rank or be accepted, but the caller
    still counts them). `exclude(rows, c0, c1)` -> bool (len(rows) × (c1-c0)): entries kept out of the
    global top-k only (e.g. the lower triangle and same-identity pairs of a probe × probe scan). `floor`:
    global candidates must exceed it (a value known to be at most the final k-th largest; values equal
    to it cannot change the sorted top-k).
    """
    backend = backend or Backend()
    ctx = ctx or DistContext()
    probes = np.ascontiguousarray(probes, np.float32)
    n, d = probes.shape
    sizes = sorted({int(s) for s in snapshots if 0 < s <= n_cols} | {n_cols})
    global_end = n_cols if global_end is None else int(global_end)
    threads = default_threads() if threads is None else max(1, int(threads))
    if backend.kind != "numpy":
        threads = 1
    groups = max(1, threads * math.ceil(n / (threads * ROW_GROUP)))
    rg = max(2, math.ceil(n / groups))
    row_grid = chunk_grid(n, rg)
    # a chunk's columns (w×d) plus, per thread, a block and a copy of its hit rows (2 × rg×w) fit the budget
    width = int(max(256, min(1 << 15, budget_bytes(max_memory_gb) // (4 * (d + 2 * rg * threads)))))
    grid = column_grid(n_cols, width, sizes + [global_end])
    mine = ctx.mine(grid)
    rows = np.full((n, max(1, k_row)), -np.inf, np.float32)
    track_rows = k_row > 0
    gtops = [TopK(k_global) for _ in row_grid] if k_global else []
    snaps: dict[int, np.ndarray] = {}
    pending = list(sizes)
    po_all = None if push_out is None else np.asarray(push_out, bool)

    bufs = [np.empty((e - s) * SUB_BLOCK, np.float32) for s, e in row_grid] if backend.kind == "numpy" else []

    def task(gi: int, c0: int, c1: int, cols: np.ndarray, po_mask: np.ndarray | None) -> None:
        r0, r1 = row_grid[gi]
        p = probes[r0:r1]
        cur = rows[r0:r1]
        top = gtops[gi] if gtops and c1 <= global_end else None
        buf = bufs[gi]
        for j0, j1 in chunk_grid(c1 - c0, SUB_BLOCK):  # blocks small enough to stay in cache while reduced
            w = j1 - j0
            s = np.matmul(p, cols[j0:j1].T, out=buf[: p.shape[0] * w].reshape(p.shape[0], w)) if w <= SUB_BLOCK \
                else p @ cols[j0:j1].T
            if po_mask is not None:
                po = np.flatnonzero(po_mask[j0:j1])
                if po.size:
                    s[:, po] = -np.inf
            rm = s.max(axis=1)
            if track_rows:
                tau = cur[:, -1]
                hit = np.flatnonzero(rm > tau)
                if hit.size == rm.size:
                    cur[:] = _merge_rows(cur, s, tau)
                elif hit.size:
                    if k_row == 1:
                        cur[hit, 0] = rm[hit]
                    else:
                        cur[hit] = _merge_rows(cur[hit], s[hit], tau[hit])
            if top is not None:
                tau = max(top.tau, floor)
                gh = np.flatnonzero(rm > tau)
                if gh.size:
                    sub = s[gh]
                    if exclude is not None:
                        sub[exclude(r0 + gh, c0 + j0, c0 + j1)] = -np.inf
                    top.push(sub[sub > tau] if math.isfinite(tau) else sub[np.isfinite(sub)], n_seen=0)

    it = mine
    if progress:

        it = progress(mine, desc=desc, unit="chunk")
    pool = limiter = None
    if threads > 1:
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

        from threadpoolctl import threadpool_limits  # noqa: PLC0415

        pool = ThreadPoolExecutor(threads)
        limiter = threadpool_limits(limits=1, user_api="blas")
    p_dev = backend.put(probes) if backend.kind != "numpy" else None
    try:
        for c0, c1 in it:
            while pending and c0 >= pending[0]:
                snaps[pending.pop(0)] = rows.copy()
            cols = np.ascontiguousarray(columns(c0, c1), np.float32)
            po_mask = None if po_all is None or not po_all[c0:c1].any() else po_all[c0:c1]
            po = np.empty(0, np.int64) if po_mask is None else np.flatnonzero(po_mask)
            if backend.kind != "numpy":
                _torch_block(backend, p_dev, cols, po, rows, k_row, gtops[0] if gtops else None,
                             bool(gtops) and c1 <= global_end, exclude, floor, c0, c1)
            elif pool is None:
                for gi in range(len(row_grid)):
                    task(gi, c0, c1, cols, po_mask)
            else:
                list(pool.map(functools.partial(task, c0=c0, c1=c1, cols=cols, po_mask=po_mask), range(len(row_grid))))
    finally:
        if pool is not None:
            pool.shutdown()
            limiter.restore_original_limits()
    for s in pending:
        snaps[s] = rows.copy()
    row_top = {}
    for s in (sizes if track_rows else []):
        v = snaps[s]
        if ctx.active:
            parts = ctx.all_gather(v[None])
            v = _row_topk_np(np.concatenate([p[0] for p in parts], axis=1), v.shape[1])
        row_top[s] = v
    gtop = None
    if gtops:
        merged = TopK(k_global)
        for t in gtops:
            merged.push(t.values(), n_seen=0)
        gtop = merged.gather(ctx)
    return ScanResult(row_top, gtop, n_cols)


def _torch_block(backend: Backend, p_dev, cols, po, rows, k_row, gtop, do_global, exclude, floor, c0, c1) -> None:
    """The same reductions with torch on the backend's device (one block of all rows)."""
    import torch  # noqa: PLC0415

    dev = backend.device
    s = p_dev @ torch.from_numpy(cols).to(dev).T
    if po.size:
        s[:, torch.from_numpy(po).to(dev)] = -math.inf
    if k_row == 1:
        np.maximum(rows[:, 0], s.max(dim=1).values.cpu().numpy(), out=rows[:, 0])
    elif k_row > 1:
        kk = min(k_row, s.shape[1])
        top = torch.topk(s, kk, dim=1).values.cpu().numpy()
        rows[:] = _row_topk_np(np.concatenate([rows, top], axis=1), k_row)
    if do_global:
        if exclude is not None:
            s[torch.from_numpy(exclude(np.arange(s.shape[0]), c0, c1)).to(dev)] = -math.inf
        tau = max(gtop.tau, floor)
        vals = s[s > tau] if math.isfinite(tau) else s[torch.isfinite(s)]
        gtop.push(vals.cpu().numpy(), n_seen=0)
