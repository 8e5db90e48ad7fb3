#!/usr/bin/env python
"""Benchmark the evaluation core: BLUFR (10 trials of 13,233 × D features) and LFW 10-fold scoring.

Prints seconds and peak memory. Features are synthetic (identity centres + noise, the shape of real
embeddings); the BLUFR config is the official one from the shared folder (or --config).
Reference: the official BLUFR MATLAB code takes about 160 s for this under GNU Octave on 2 cores.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from arface_repro.eval.blufr import evaluate_blufr
from arface_repro.eval.kfold import contiguous_folds, kfold_accuracy, l2_normalize, squared_l2
from arface_repro.io.blufr_config import load_blufr_config
from arface_repro.shared_data import shared_path


def peak_rss_gb() -> float:
    """Peak resident memory of this process and of its largest (trial worker) child, in GB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, child) / 1024 ** 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=shared_path("data", "blufr", "blufr_lfw_config.mat"))
    ap.add_argument("--dim", type=int, default=192)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workers", type=int, default=None, help="trial worker processes (default one per CPU)")
    args = ap.parse_args()
    if args.config is None:
        raise SystemExit("no BLUFR config: pass --config blufr_lfw_config.mat")
    cfg = load_blufr_config(args.config)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((int(cfg.labels.max()) + 1, args.dim))
    feats = (centres[cfg.labels] + 1.2 * rng.standard_normal((len(cfg.labels), args.dim))).astype(np.float32)

    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = evaluate_blufr(feats, cfg, trials=list(range(args.trials)), workers=args.workers)
        dt = time.perf_counter() - t0
        print(f"BLUFR {args.trials} trials, {len(cfg.labels)} x {args.dim}: {dt:.2f} s "
              f"(VR@FAR=0.1% {res.metrics['VR@FAR=0.1%']:.4f}, DIR@FAR=1% {res.metrics['DIR@FAR=1%']:.4f}); "
              f"vs ~160 s for the official code under Octave: {160 / dt:.1f}x")

    n = 6000
    issame = np.tile(np.r_[np.ones(300, bool), np.zeros(300, bool)], 10)
    a = l2_normalize(rng.standard_normal((n, 512)).astype(np.float32))
    b = l2_normalize(np.where(issame[:, None], a + 0.08 * rng.standard_normal((n, 512)).astype(np.float32),
                              rng.standard_normal((n, 512)).astype(np.float32)))
    t0 = time.perf_counter()
    for _ in range(20):
        r = kfold_accuracy(squared_l2(a, b), issame, contiguous_folds(n), target_far=1e-3)
    dt = (time.perf_counter() - t0) / 20
    print(f"LFW-style 10-fold scoring, 6000 pairs x 512-d: {dt * 1000:.1f} ms per evaluation (acc {r.mean:.4f})")
    print(f"peak RSS (largest process): {peak_rss_gb():.2f} GB")


if __name__ == "__main__":
    main()
