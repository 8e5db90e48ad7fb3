"""RMFRD (Real-World Masked Face Recognition Dataset, Wang et al. 2020): masked probes vs unmasked gallery.

The dataset ships two folders of identity sub-folders — unmasked `AFDB_face_dataset/<person>/*.jpg`
and masked `AFDB_masked_face_dataset/<person>/*.jpg` — and no official protocol file. The ARFace paper
describes the task as recognising masked faces against unmasked ones; **this package defines the
protocol** as follows (label 'arface-rmfrd/1' in records):

* Identities: persons with at least one masked and one unmasked image (others are ignored, and
  counted in the record). Features are L2-normalised (after flip combination); score = cosine.
* Verification: every (masked image, unmasked image) pair over those identities; genuine = same
  person. TAR at FAR = 1e-3 and 1e-4 by the strict rule (threshold = the (⌊FAR·N_imp⌋+1)-th largest
  impostor score, accept iff score > threshold), exact from a running top-k of impostor scores.
* Identification, closed set: each masked image is a probe. 'Rank-1' = share of probes whose highest
  scoring gallery identity is their own, the gallery holding one template per identity (L2-normalised
  mean of its normalised unmasked features); ties count against the probe. 'Rank-1-NN' = the same
  with every unmasked image as a gallery entry (nearest neighbour; among exactly equal best scores the
  image first in store order decides).
"""

from __future__ import annotations

import numpy as np

from arface_repro.errors import FormatError, MissingDataError
from arface_repro.eval.chunked import (
    Backend,
    DistContext,
    TopK,
    block_columns,
    chunk_grid,
    l2n,
    strict_k,
    tar_at_far_from_top,
)
from arface_repro.eval.metric_keys import rate_key

PROTOCOL_LABEL = "arface-rmfrd/1"
FARS = (1e-3, 1e-4)
UNMASKED_DIR = "AFDB_face_dataset"
MASKED_DIR = "AFDB_masked_face_dataset"


def split_store(paths: np.ndarray, unmasked_dir: str = UNMASKED_DIR, masked_dir: str = MASKED_DIR):
    """(masked rows, masked ids, unmasked rows, unmasked ids, n persons dropped) from store paths
    `<dir>/<person>/<file>` (an optional leading folder before <dir> is allowed)."""
    m_rows, m_ids, u_rows, u_ids = [], [], [], []
    for i, p in enumerate(np.asarray(paths).tolist()):
        parts = p.split("/")
        for j in range(len(parts) - 2):
            if parts[j] == masked_dir:
                m_rows.append(i)
                m_ids.append(parts[j + 1])
                break
            if parts[j] == unmasked_dir:
                u_rows.append(i)
                u_ids.append(parts[j + 1])
                break
    if not m_rows or not u_rows:
        raise MissingDataError(f"RMFRD needs store paths under {masked_dir}/<person>/ and {unmasked_dir}/<person>/; "
                               f"found {len(m_rows)} masked and {len(u_rows)} unmasked images")
    m_ids, u_ids = np.asarray(m_ids), np.asarray(u_ids)
    both = np.intersect1d(m_ids, u_ids)
    if both.size == 0:
        raise FormatError("RMFRD: no person has both masked and unmasked images")
    km, ku = np.isin(m_ids, both), np.isin(u_ids, both)
    dropped = np.union1d(m_ids, u_ids).size - both.size
    return np.asarray(m_rows)[km], m_ids[km], np.asarray(u_rows)[ku], u_ids[ku], int(dropped)


def evaluate_arrays(masked: np.ndarray, masked_ids: np.ndarray, unmasked: np.ndarray, unmasked_ids: np.ndarray, *,
                    fars=FARS, backend: Backend | None = None, ctx: DistContext | None = None,
                    max_memory_gb: float | None = None) -> dict:
    backend = backend or Backend()
    ctx = ctx or DistContext()
    q = l2n(masked)
    ids, inv = np.unique(np.concatenate([masked_ids, unmasked_ids]), return_inverse=True)
    qi, gi = inv[: len(masked_ids)], inv[len(masked_ids):]
    n_q, n_g = q.shape[0], unmasked.shape[0]
    n_gen = int(sum(np.count_nonzero(qi == c) * np.count_nonzero(gi == c) for c in np.unique(qi)))
    n_imp = n_q * n_g - n_gen
    top = TopK(max(strict_k(f, n_imp) for f in fars) + 1)
    best = np.full(n_q, -np.inf, np.float32)
    best_col = np.full(n_q, n_g, np.int64)
    genuine = []
    q_dev = backend.put(q)
    for c0, c1 in ctx.mine(chunk_grid(n_g, block_columns(n_q, max_memory_gb))):
        s = backend.numpy(backend.scores(q_dev, backend.put(l2n(unmasked[c0:c1]))))
        same = qi[:, None] == gi[None, c0:c1]
        genuine.append(s[same])
        imp = s[~same]
        top.push(imp[imp > top.tau] if np.isfinite(top.tau) else imp, n_seen=imp.size)
        am = np.argmax(s, axis=1)  # first maximum = lowest column among ties
        mx = s[np.arange(n_q), am]
        better = mx > best
        best[better], best_col[better] = mx[better], c0 + am[better]
    gen = ctx.all_gather_cat(np.concatenate(genuine) if genuine else np.empty(0, np.float32))
    imp_top = top.gather(ctx)
    if ctx.active:
        bs = np.stack(ctx.all_gather(best))
        bc = np.stack(ctx.all_gather(best_col))
        # max score; among equal scores the lowest column (= what one process finds)
        mx = bs.max(axis=0)
        bc = np.where(bs == mx[None], bc, n_g).min(axis=0)
        best, best_col = mx, bc
    tars = {f: tar_at_far_from_top(gen, imp_top, n_imp, f)[0] for f in fars}
    # NN rank-1: the best-scoring unmasked image (the first in store order among exact ties) is mated
    nn_ok = gi[best_col] == qi
    # template gallery
    g = l2n(unmasked)
    ug = np.unique(gi)
    tmpl = np.stack([g[gi == c].astype(np.float64).mean(axis=0) for c in ug])
    tmpl = l2n(tmpl.astype(np.float32))
    st = q @ tmpl.T
    own = np.searchsorted(ug, qi)
    mated = st[np.arange(n_q), own]
    rank1 = (st >= mated[:, None]).sum(axis=1) == 1
    return {"tar": tars, "rank1": float(rank1.mean()), "rank1_nn": float(nn_ok.mean()), "n_probe": n_q,
            "n_gallery_images": n_g, "n_identities": int(ug.size), "n_genuine": n_gen, "n_impostor": n_imp}


def evaluate(store, flip: str = "add", unmasked_dir: str = UNMASKED_DIR, masked_dir: str = MASKED_DIR, **kw) -> dict:
    m_rows, m_ids, u_rows, u_ids, dropped = split_store(store.paths, unmasked_dir, masked_dir)
    feats = store.combined(flip)
    out = evaluate_arrays(feats[m_rows], m_ids, feats[u_rows], u_ids, **kw)
    out["n_persons_dropped"] = dropped
    return out


def metrics_from(result: dict) -> dict[str, float]:
    out = {rate_key("TAR@FAR", f): 100.0 * v for f, v in result["tar"].items()}
    out["Rank-1"] = 100.0 * result["rank1"]
    out["Rank-1-NN"] = 100.0 * result["rank1_nn"]
    return out
