#!/usr/bin/env python
"""Benchmarks of the large-scale protocols on synthetic features of full size, generated in-process.

  python scripts/bench_large.py ijbc        # 469,375 images x 512, 23,124 templates, 15,658,489 pairs -> table
  python scripts/bench_large.py megaface    # 3,530 probes x 1,000,000 distractors (x 512), CMC + Ver
  python scripts/bench_large.py trillion    # throughput (pairs/s) at three sizes
  python scripts/bench_large.py all

Flags choose sizes (--ijb-scale, --distractors, --fraction, --trillion-sizes, --dim) and the working
memory (--max-memory-gb). Prints wall times, the peak RSS of the process (VmHWM), and the peak of the
evaluation phase alone (VmHWM is reset before it, where the kernel allows). A MegaFace run with
--fraction < 1 scores that share of the distractors and extrapolates linearly (printed as such).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import make_synthetic_large as synth  # noqa: E402


def _status(key: str) -> float:
    """A /proc/self/status memory field in GB (0 where unavailable)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def mem_line(phase_reset: bool) -> str:
    hwm, rss = _status("VmHWM"), _status("VmRSS")
    what = "peak RSS of the evaluation phase (inputs included)" if phase_reset else "peak RSS of the process"
    return f"{what}: {hwm:.2f} GB (current {rss:.2f} GB)"


def bench_ijbc(a) -> None:
    from arface_repro.eval import ijb
    from arface_repro.eval.chunked import make_backend

    sz = {k: max(4, int(v * a.ijb_scale)) for k, v in synth.IJBC.items()}
    t0 = time.perf_counter()
    data = synth.synth_ijb(**sz, seed=0)
    f, g = synth.ijb_features(data, a.dim or 512, seed=1)
    meta = ijb.IJBMeta(data.images, data.templates, data.medias, data.faceness, None, data.t1, data.t2, data.labels, {})
    print(f"[ijbc] generated {data.images.size:,} images x {f.shape[1]} (+flip), {np.unique(data.templates).size:,} "
          f"templates, {data.t1.size:,} pairs ({int(data.labels.sum()):,} genuine) in {time.perf_counter() - t0:.1f} s")
    del data
    reset_ok = reset_peak()
    backend = make_backend(a.device)
    t = {}
    t0 = time.perf_counter()
    tids, tf = ijb.template_features(f, g, meta.faceness, meta.templates, meta.medias, ijb.CombineOptions(), a.max_memory_gb)
    t["templates"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    i1 = ijb.template_index(tids, meta.t1)
    i2 = ijb.template_index(tids, meta.t2)
    scores = ijb.pair_scores(tf, i1, i2, backend=backend, max_memory_gb=a.max_memory_gb)
    t["pair scores"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    tab, curve = ijb.tar_table(scores, meta.labels, ijb.FARS, ("nearest", "strict"))
    t["TAR tables + ROC curve"] = time.perf_counter() - t2
    total = time.perf_counter() - t0
    for k, v in t.items():
        print(f"[ijbc]   {k:<26s} {v:7.2f} s")
    print(f"[ijbc] features -> table (template pooling, {scores.size:,} scores, both rules, curve): {total:.2f} s")
    for r in tab:
        print(f"[ijbc]   {r:8s} " + "  ".join(f"{ijb.far_key(k)[4:]}={100 * v:.2f}" for k, v in tab[r].items()))
    print(f"[ijbc] {mem_line(reset_ok)}; the inputs alone (features + flip) take {2 * f.nbytes / 2**30:.2f} GB")


def bench_megaface(a) -> None:
    from arface_repro.eval import megaface as mf
    from arface_repro.eval.chunked import make_backend

    dim = a.dim or 512
    n_dis = int(a.distractors * a.fraction)
    x, ids = synth.identity_probes(80, 3530, dim, seed=0, sigma=2.0)
    dis = synth.LazyGaussianRows(n_dis, dim, seed=7)
    sizes = [s for s in mf.DEFAULT_SIZES if s <= n_dis] or [n_dis]
    # generation cost of the lazy distractors (paid inside the scoring loop), measured on its own
    t0 = time.perf_counter()
    for s in range(0, min(n_dis, 4 * dis.block), dis.block):
        dis[s:s + dis.block]
    gen_per_row = (time.perf_counter() - t0) / min(n_dis, 4 * dis.block)
    reset_ok = reset_peak()
    t0 = time.perf_counter()
    res = mf.evaluate(x, ids, dis, sets=mf.default_sets(n_dis, sizes), noise_rule="none", backend=make_backend(a.device),
                      max_memory_gb=a.max_memory_gb, progress=not a.quiet)
    wall = time.perf_counter() - t0
    gen = gen_per_row * n_dis
    print(f"[megaface] 3,530 probes x {n_dis:,} distractors x {dim}: {wall:.1f} s wall "
          f"({gen:.1f} s of it generating the synthetic distractors; scoring {wall - gen:.1f} s)")
    if a.fraction < 1:
        est = (wall - gen) / a.fraction
        print(f"[megaface] EXTRAPOLATED linearly to {a.distractors:,} distractors: ~{est:.0f} s of scoring "
              f"(measured on a {a.fraction:g} fraction)")
    print(f"[megaface] rank-1 by set size: " + ", ".join(f"{mf.size_key(s)}={100 * c[0]:.2f}" for s, c in res["cmc"].items())
          + f"; Ver@FAR=1e-6 = {100 * res['ver']:.2f}")
    print(f"[megaface] {mem_line(reset_ok)}")


def bench_trillion(a) -> None:
    from arface_repro.eval import trillion_pairs as tp
    from arface_repro.eval.chunked import make_backend

    dim = a.dim or 256
    sizes = [tuple(int(float(v)) for v in s.split("x")) for s in a.trillion_sizes.split(",")]
    walls, pair_counts = [], []
    for n_p, n_d in sizes:
        x, ids = synth.identity_probes(max(2, n_p // 48), n_p, dim, seed=0, sigma=1.5)
        dis = synth.LazyGaussianRows(n_d, dim, seed=5).materialize()
        t0 = time.perf_counter()
        res = tp.evaluate(x, ids, dis, backend=make_backend(a.device), max_memory_gb=a.max_memory_gb)
        wall = time.perf_counter() - t0
        pairs = n_p * n_d + n_p * (n_p - 1) // 2
        walls.append(wall)
        pair_counts.append(pairs)
        print(f"[trillion] {n_p:,} probes x {n_d:,} distractors x {dim}: {pairs:.3e} pairs in {wall:.1f} s = "
              f"{pairs / wall:.3e} pairs/s (Ver@FPR=1e-9 {100 * res['ver']:.2f}, Id@FPR=1e-3 {100 * res['id']:.2f})")
    if len(walls) >= 2:
        slope, fixed = np.polyfit(np.array(pair_counts, float), np.array(walls), 1)
        print(f"[trillion] least-squares fit wall = {fixed:.2f} s + pairs / {1 / slope:.3e} pairs/s "
              f"(fixed part: probe x probe pairs, enrolment, start-up; the rest is linear in the pairs)")
    print(f"[trillion] {mem_line(False)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("ijbc", "megaface", "trillion", "all"))
    ap.add_argument("--ijb-scale", type=float, default=1.0, help="IJB-C counts multiplier (default 1 = full size)")
    ap.add_argument("--distractors", type=int, default=1_000_000)
    ap.add_argument("--fraction", type=float, default=1.0, help="MegaFace: score this share of the distractors and extrapolate")
    ap.add_argument("--trillion-sizes", default="5000x40000,5000x80000,5000x160000", help="probes x distractors, comma separated")
    ap.add_argument("--dim", type=int, default=None, help="feature dimension (IJB/MegaFace 512, Trillion 256)")
    ap.add_argument("--max-memory-gb", type=float, default=1.0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    print(f"[bench] {os.cpu_count()} CPUs visible; numpy {np.__version__}")
    for what in (("ijbc", "megaface", "trillion") if a.what == "all" else (a.what,)):
        {"ijbc": bench_ijbc, "megaface": bench_megaface, "trillion": bench_trillion}[what](a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
