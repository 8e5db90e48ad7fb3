#!/usr/bin/env python
"""Seconds per training step and peak memory on CPU: plain AM-Softmax vs ARFace (same backbone, batch, data).

Each variant runs in its own subprocess (peak RSS = ru_maxrss of that process, which includes the
synthetic data set it holds; the data are the same for every variant). Prints a table and the ARFace
overhead ratios (median step time ARFace / plain).

    python scripts/bench_train.py --model mobilefacenet --batch 32 --steps 12
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

VARIANTS = {
    "plain": ["method.kind=plain"],
    "arface_input": ["method.kind=arface", "method.num_layers=0"],
    "arface_l3": ["method.kind=arface", "method.num_layers=3"],
}


def make_trainer(args, variant):
    from arface_repro.train.config import load_config
    from arface_repro.train.loop import Trainer

    ov = VARIANTS[variant] + [
        f"model.name={args.model}", f"train.batch_size={args.batch}", f"train.steps={args.warmup + args.steps}",
        "train.quiet=true", "data.synthetic.num_identities=20", "data.synthetic.images_per_identity=8",
        f"out_dir=/tmp/arface_bench_{variant}", "method.patch_radius=30",
    ]
    return Trainer(load_config(None, ov))


def peak_memory(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    tr = make_trainer(args, args.variant)
    for _ in range(args.warmup):
        tr.train_step()
    print(json.dumps({"variant": args.variant, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def interleaved_times(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    trainers = {v: make_trainer(args, v) for v in VARIANTS}
    times = {v: [] for v in VARIANTS}
    for i in range(args.warmup + args.steps):
        for v, tr in trainers.items():
            t = time.perf_counter()
            tr.train_step()
            if i >= args.warmup:
                times[v].append(time.perf_counter() - t)
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mobilefacenet")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--variant", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.variant:
        peak_memory(args)
        return 0
    mem = {}
    for v in VARIANTS:
        cmd = [sys.executable, __file__, "--variant", v, "--model", args.model, "--batch", str(args.batch),
               "--warmup", str(args.warmup), "--threads", str(args.threads)]
        mem[v] = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])["peak_rss_mib"]
    times = interleaved_times(args)
    print(f"model={args.model} batch={args.batch} steps={args.steps} (after {args.warmup} warm-up, interleaved) threads={args.threads}")
    print(f"{'variant':<14} {'median s/step':>14} {'mean s/step':>12} {'peak RSS MiB':>13}")
    med = {}
    for v in VARIANTS:
        med[v] = statistics.median(times[v])
        print(f"{v:<14} {med[v]:>14.4f} {statistics.mean(times[v]):>12.4f} {mem[v]:>13.0f}")
    for v in ("arface_input", "arface_l3"):
        print(f"overhead {v} / plain: {med[v] / med['plain']:.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
