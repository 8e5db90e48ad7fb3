"""MegaFace Challenge 1 (FaceScrub probes, MegaFace distractors): identification CMC and verification.

Features are L2-normalised (float32, `x / ||x||`; a no-op up to rounding for the normalised features
insightface writes); score = float32 dot product, as FaceX-Zoo's Python evaluator computes it (the
devkit ranks by L2 distance, which orders normalised features identically).

Identification (the devkit's rule, as FaceX-Zoo's `CommonMegaFaceEvaluator` ports it): for every probe
identity and every ordered pair (gallery image i, probe image j ≠ i) of its images, the gallery is image
i plus the distractor set; the mated score is `intra[i][j]` of the identity's `F @ F.T`. Rule
`facex-zoo` (default): the pair succeeds at rank N when the mated score is ≥ the N-th largest distractor
score of probe j (ties count for the probe). Rule `ties-against`: when fewer than N distractors score ≥
the mated score. CMC(N) = share of successful ordered pairs, per distractor-set size. Only ranks ≤
`max_rank` matter, so each probe's top-`max_rank` distractor scores are kept by one streaming pass
(`topk_scan.scan_top`) in which the nested set sizes 10 … 1e6 are snapshots; the 3,530 × 1M score matrix
never exists. Sets given as lists (the devkit's `megaface_features_list.json_<size>_<set>`) share the
pass too when each is contained in the next larger one (the columns are reordered so each set is a
prefix); other sets get a pass each.

Verification (this package's definition of reading the devkit's ROC at one point): genuine = probe–probe
pairs of the same identity (unordered), impostor = every probe–distractor pair of the largest set; TAR
at FAR = 1e-6 by the strict rule (threshold = the (⌊FAR·N_imp⌋+1)-th largest impostor score, accept when
score > threshold), from the same pass's global top-k.

Noise lists, labelled in records as `noise`:
* 'insightface' (`remove_noises.py`): each noisy FaceScrub feature is replaced by its identity's centre
  = the float32 sum of the identity's clean features in list order, L2-normalised in float32. The
  reference adds uniform(−0.001, 0.001) jitter per dimension from an unseeded generator before
  normalising; that makes its output irreproducible and is omitted here. Noisy distractors are pushed
  out of reach: they stay in the set and in the impostor count but never score above anything (the
  reference appends a 513th dimension of 100, under L2 distance, to the same effect).
* 'exclude': noisy FaceScrub images and noisy distractors are removed.
* 'none': lists ignored.

Audit against FaceX-Zoo's evaluator (tests/test_megaface_reference.py holds a structural copy): same
scores (float32 products; the mated scores by `np.dot(F, F.T)` on one array, which BLAS computes as a
symmetric product (syrk) whose last bit can differ from a general product's; FaceX-Zoo does not
re-normalise, so the copy is given the normalised features),
same rank rule; FaceX-Zoo takes one distractor list per run, scores the full probe × distractor matrix
and runs one `argpartition` per rank; the results here equal its CMC exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from arface_repro.errors import ConfigError, FormatError
from arface_repro.eval.chunked import Backend, DistContext, l2n, strict_k, tar_at_far_from_top
from arface_repro.eval.topk_scan import scan_top

DEFAULT_SIZES = (10, 100, 1000, 10000, 100000, 1000000)
NOISE_RULES = ("insightface", "exclude", "none")
RULES = ("facex-zoo", "ties-against")


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
            clean = np.flatnonzero(members & ~noisy)
            if not clean.size:
                raise FormatError(f"FaceScrub identity {ident}: every image is in the noise list; no clean mean to use")
            c = np.zeros(f.shape[1], np.float32)
            for r in clean:  # the reference's `fname2center[a] += feature`, in list order
                c += f[r]
            f[members & noisy] = c / np.linalg.norm(c)
        return f, ids, keep
    raise ConfigError(f"unknown noise rule {rule!r} (expected {', '.join(NOISE_RULES)})")


def default_sets(n_distractors: int, sizes: Sequence[int] = DEFAULT_SIZES) -> dict[int, np.ndarray]:
    """Nested prefix sets {size: arange(size)} for the sizes not above the number of distractors."""
    out = {int(s): np.arange(s) for s in sizes if s <= n_distractors}
    if not out:
        raise ConfigError(f"{n_distractors} distractors: fewer than the smallest set size {min(sizes)}")
    return out


def nested_passes(sets: dict[int, np.ndarray]) -> list[tuple[np.ndarray, dict[int, int]]]:
    """Group the sets into chains S1 ⊂ S2 ⊂ …; per chain (column order making every set a prefix,
    {size: prefix length}). One streaming pass per chain."""
    chains: list[list[int]] = []
    for k in sorted(sets, key=lambda k: (sets[k].size, k)):
        for ch in chains:
            if np.isin(sets[ch[-1]], sets[k]).all():
                ch.append(k)
                break
        else:
            chains.append([k])
    out = []
    for ch in chains:
        order, prev, prefix = [], np.empty(0, np.int64), {}
        for k in ch:
            order.append(np.setdiff1d(sets[k], prev, assume_unique=True))
            prefix[k] = int(sets[k].size)
            prev = sets[k]
        out.append((np.concatenate(order), prefix))
    return out


def evaluate(probe_feats: np.ndarray, probe_ids: Sequence, distractors, *, sets: dict[int, np.ndarray] | None = None,
             probe_noise: np.ndarray | None = None, distractor_noise: np.ndarray | None = None,
             noise_rule: str = "insightface", rule: str = "facex-zoo", max_rank: int = 10, far: float = 1e-6,
             backend: Backend | None = None, ctx: DistContext | None = None, max_memory_gb: float | None = None,
             threads: int | None = None, progress: bool = False) -> dict:
    """Identification CMC per distractor-set size and verification TAR@FAR.

    `distractors`: an N×D array-like supporting row slices and index arrays (np.ndarray, np.memmap);
    rows are normalised chunk by chunk. `sets`: {size: sorted indices into distractors} (default: nested
    prefixes). Returns fractions: {'cmc': {size: [rank1..rankK]}, 'ver': TAR, 'ver_threshold', counts...}.
    """
    if noise_rule not in NOISE_RULES:
        raise ConfigError(f"unknown noise rule {noise_rule!r} (expected {', '.join(NOISE_RULES)})")
    if rule not in RULES:
        raise ConfigError(f"unknown MegaFace rule {rule!r} (expected {', '.join(RULES)})")
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
    largest = max(sets, key=lambda k: (sets[k].size, k))
    n_imp = n * int(sets[largest].size)
    k_ver = strict_k(far, n_imp) + 1
    passes = nested_passes(sets)
    top_vals, imp = {}, None
    for order, prefix in passes:
        identity = order.size == n_dis and bool(np.all(order == np.arange(n_dis)))

        def columns(c0, c1, order=order, identity=identity):
            return l2n(np.asarray(distractors[c0:c1] if identity else distractors[order[c0:c1]], np.float32))

        ver_here = largest in prefix
        res = scan_top(pf, columns, int(order.size), k_row=max_rank, snapshots=list(prefix.values()),
                       k_global=k_ver if ver_here else 0, global_end=prefix.get(largest),
                       push_out=push_out[order], backend=backend, ctx=ctx, max_memory_gb=max_memory_gb,
                       threads=threads, progress=progress, desc="MegaFace distractors")
        for size, m in prefix.items():
            top_vals[size] = res.row_top[m]
        if ver_here:
            imp = res.global_top

    # mated scores (FaceX-Zoo: intra = F_id @ F_id.T, probe j's mated score from gallery i = intra[i][j])
    uid, inv = np.unique(ids, return_inverse=True)
    cmc_hits = {size: np.zeros(max_rank, np.int64) for size in sets}
    n_ordered = 0
    genuine = []
    for g in range(uid.size):
        m = np.flatnonzero(inv == g)
        if m.size < 2:
            continue
        x = pf[m]
        intra = np.dot(x, x.T)  # one operand twice: BLAS syrk, as FaceX-Zoo's np.dot(feature_list, feature_list.T)
        pos = intra.T  # pos[j, i] = intra[i][j]
        off = ~np.eye(m.size, dtype=bool)
        n_ordered += int(off.sum())
        genuine.append(intra[np.triu_indices(m.size, 1)])
        for size in sets:
            tv = top_vals[size][m]  # (m, K): probe j's top distractor scores
            if rule == "facex-zoo":
                cnt = (tv[:, None, :] > pos[:, :, None]).sum(axis=2)   # distractors strictly above
            else:
                cnt = (tv[:, None, :] >= pos[:, :, None]).sum(axis=2)  # ties count against the probe
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
        "noise": noise_rule, "rule": rule, "passes": len(passes),
    }


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
