#!/usr/bin/env python
"""Benchmark the evaluation core: BLUFR end to end through the CLI, the BLUFR core, and LFW 10-fold scoring.

BLUFR end to end = `python -m arface_repro evaluate --protocol blufr --features STORE --config CFG` as a fresh
process (start-up, imports, reading the store and the config, 10 trials, writing the record), on a synthetic
13,233 × 192 store with LFW paths. Anchor: the official BLUFR MATLAB code under GNU Octave; with
`--octave-toolkit DIR` (the toolkit's folder, holding EvalROC.m and OpenSetROC.m) and `octave` on the PATH it
is run on the same features in this run; otherwise the figure measured on this kind of machine (about 160 s,
Octave 7.3, ../shared/README.md) is printed and labelled as not measured here. Goal: >= 30x.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from arface_repro.eval.blufr.config import load_blufr_config
from arface_repro.eval.blufr.metric import evaluate_blufr
from arface_repro.eval.kfold import contiguous_folds, kfold_accuracy, l2_normalize, squared_l2
from arface_repro.shared_data import shared_path
from arface_repro.utils.machine import machine_line


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
    ap.add_argument("--repeat", type=int, default=3, help="runs of each BLUFR measurement; the best is reported")
    ap.add_argument("--workers", type=int, default=None, help="trial worker processes (default one per CPU)")
    ap.add_argument("--octave-toolkit", help="folder of the official BLUFR toolkit (EvalROC.m, OpenSetROC.m)")
    args = ap.parse_args()
    if args.config is None:
        raise SystemExit("no BLUFR config: pass --config blufr_lfw_config.mat")
    print(machine_line())
    cfg = load_blufr_config(args.config)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((int(cfg.labels.max()) + 1, args.dim))
    feats = (centres[cfg.labels] + 1.2 * rng.standard_normal((len(cfg.labels), args.dim))).astype(np.float32)

    clis = blufr_cli_seconds(cfg, feats, args.config, args.repeat)
    cli = min(clis)
    anchor, how = octave_seconds(args.octave_toolkit, feats, args.config)
    print(f"BLUFR end to end through the CLI (fresh process, 10 trials, {len(cfg.labels)} x {args.dim}): best of "
          f"{len(clis)} {cli:.2f} s (all: {', '.join(f'{c:.2f}' for c in clis)}; goal <= 5 s on an idle 2-core machine); "
          f"official MATLAB under Octave: {anchor:.1f} s ({how}) -> {anchor / cli:.1f}x (goal >= 30x)")

    dts = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = evaluate_blufr(feats, cfg, trials=list(range(args.trials)), workers=args.workers)
        dts.append(time.perf_counter() - t0)
    dt = min(dts)
    print(f"BLUFR {args.trials} trials in this process, {len(cfg.labels)} x {args.dim}: best of {len(dts)} {dt:.2f} s "
          f"(VR@FAR=0.1% {res.metrics['VR@FAR=0.1%']:.4f}, DIR@FAR=1% {res.metrics['DIR@FAR=1%']:.4f}); "
          f"vs the official code under Octave ({how}): {anchor / dt:.1f}x")

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


def blufr_cli_seconds(cfg, feats, config, repeat: int = 1) -> list[float]:
    """Wall times of `arface evaluate --protocol blufr` as a new process on a store of `feats` (LFW paths)."""
    from arface_repro.io.feature_store import save_feature_store

    with tempfile.TemporaryDirectory() as d:
        store = Path(d) / "lfw.npz"
        save_feature_store(store, feats, [f"{n.rsplit('_', 1)[0]}/{n}" for n in cfg.image_list])
        cmd = [sys.executable, "-m", "arface_repro", "evaluate", "--protocol", "blufr", "--features", str(store),
               "--config", str(config), "--out", str(Path(d) / "rec.json"), "--quiet"]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        times = []
        for _ in range(max(1, repeat)):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - t0)
        return times


OCTAVE_DRIVER = """
load('{cfg}'); X = load('{feats}'); X = X.X; X = X ./ repmat(sqrt(sum(X.^2, 2)), 1, size(X, 2));
veriFarPoints = [0, kron(10.^(-8:-1), 1:9), 1]; osiFarPoints = [0, kron(10.^(-4:-1), 1:9), 1];
rankPoints = [1:10, 20:10:100];
for t = 1 : numel(testIndex)
  X1 = X(testIndex{{t}}, :); score = X1 * X1'; [VR, veriFAR] = EvalROC(score, labels(testIndex{{t}}), [], veriFarPoints);
  score = X(galIndex{{t}}, :) * X(probIndex{{t}}, :)';
  [DIR, osiFAR] = OpenSetROC(score, labels(galIndex{{t}}), labels(probIndex{{t}}), osiFarPoints);
end
"""


def octave_seconds(toolkit, feats, config) -> tuple[float, str]:
    """The official code's time on the same features (if available), else the documented figure."""
    if not toolkit or shutil.which("octave") is None:
        return 160.0, "about 160 s on this kind of machine, Octave 7.3, from ../shared/README.md: NOT measured in this run"
    import scipy.io

    with tempfile.TemporaryDirectory() as d:
        scipy.io.savemat(Path(d) / "feats.mat", {"X": feats.astype(np.float64)})
        script = Path(d) / "run_blufr.m"
        script.write_text(OCTAVE_DRIVER.format(cfg=config, feats=Path(d) / "feats.mat"))
        t0 = time.perf_counter()
        subprocess.run(["octave", "--no-gui", "--quiet", "--eval", f"addpath('{toolkit}'); run('{script}')"],
                       check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0, "measured in this run"


if __name__ == "__main__":
    main()
