#!/usr/bin/env python
"""Benchmark embedding extraction: images/s and peak RSS, PyTorch eager vs the same model exported to ONNX.

For each architecture (random weights with batch-statistics BN, which does not change the speed) and backend,
a fresh subprocess runs `extract_features` (cv2 reading in DataLoader workers, preprocessing, network; no flip)
over the first N LFW crops of ../shared (random images when the shared folder is absent), after one warm-up
batch, and reports images/s and peak resident memory of that process (resource.getrusage ru_maxrss; the
DataLoader worker is reported separately). Checkpoint saving and ONNX export happen in a separate process beforehand, so they count in neither figure.

    python scripts/bench_embed.py [--images 256] [--batch-size 64] [--archs mobilefacenet,iresnet50]
                                  [--backends torch,onnx] [--threads N] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _images(tmp: Path, n: int):
    import numpy as np

    from arface_repro.eval.embed import list_images
    from arface_repro.shared_data import shared_path

    root = shared_path("data", "lfw", "aligned-112x96")
    if root is not None:
        return root, list_images(root)[:n]
    import cv2  # synthetic images when the shared data is absent

    root = tmp / "imgs"
    root.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    paths = [f"img_{i:05d}.png" for i in range(n)]
    for p in paths:
        if not (root / p).exists():
            cv2.imwrite(str(root / p), rng.integers(0, 256, (112, 96, 3), dtype=np.uint8))
    return root, paths


def prepare(args) -> None:
    """Checkpoint (random weights, BN statistics from one batch) and its ONNX export, in `args.tmp`."""
    import torch

    from arface_repro.backbones.registry import create_model
    from arface_repro.models.onnx_export import export_onnx

    tmp = Path(args.tmp)
    torch.manual_seed(0)
    m = create_model(args.arch)
    for b in m.modules():
        if isinstance(b, torch.nn.modules.batchnorm._BatchNorm):
            b.momentum = None
    m.train()
    with torch.no_grad():
        m(torch.randn(4, 3, 112, 112))
    torch.save(m.eval().state_dict(), tmp / f"{args.arch}.pth")
    export_onnx(args.arch, str(tmp / f"{args.arch}.pth"), str(tmp / f"{args.arch}.onnx"))
    _images(tmp, args.images)


def one(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from arface_repro.eval.embed import extract_features
    from arface_repro.models.backends import load_model

    tmp = Path(args.tmp)
    root, paths = _images(tmp, args.images)
    if args.backend == "onnx":
        model = load_model(f"onnx:{tmp / (args.arch + '.onnx')}", device="cpu")
        if args.threads:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = args.threads
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            model.session = ort.InferenceSession(str(tmp / (args.arch + ".onnx")), opts,
                                                 providers=["CPUExecutionProvider"])
    else:
        model = load_model(f"torch:{args.arch}:{tmp / (args.arch + '.pth')}", device="cpu")
    extract_features(model, root, paths[: args.batch_size], batch_size=args.batch_size, flip=False,
                     workers=args.workers, quiet=True)  # warm-up
    t0 = time.perf_counter()
    store = extract_features(model, root, paths, batch_size=args.batch_size, flip=False, workers=args.workers,
                             quiet=True)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"arch": args.arch, "backend": args.backend, "images": len(store), "seconds": dt,
                      "img_per_s": len(store) / dt, "peak_rss_mb": rss, "worker_peak_rss_mb": child}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--archs", default="mobilefacenet,iresnet50")
    ap.add_argument("--backends", default="torch,onnx")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0 = library default)")
    ap.add_argument("--workers", type=int, default=1, help="DataLoader reader processes")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--arch", help=argparse.SUPPRESS)
    ap.add_argument("--backend", help=argparse.SUPPRESS)
    ap.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.prepare:
        prepare(args)
        return
    if args.one:
        one(args)
        return
    tmp = tempfile.mkdtemp(prefix="bench_embed_")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; {args.images} LFW crops, batch {args.batch_size}, no flip, "
          f"{args.workers} reader worker(s), threads={args.threads or 'default'}")
    print(f"{'arch':<14}{'backend':<9}{'img/s':>8}{'seconds':>9}{'peak RSS MB':>13}{'worker RSS MB':>15}")
    for arch in args.archs.split(","):
        common = ["--arch", arch, "--images", str(args.images), "--tmp", tmp]
        subprocess.run([sys.executable, __file__, "--prepare"] + common, check=True, capture_output=True)
        for backend in args.backends.split(","):
            cmd = [sys.executable, __file__, "--one", "--backend", backend, "--batch-size", str(args.batch_size),
                   "--threads", str(args.threads), "--workers", str(args.workers)] + common
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                print(f"{arch:<14}{backend:<9} FAILED: {res.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"{arch:<14}{backend:<9}{r['img_per_s']:>8.1f}{r['seconds']:>9.1f}{r['peak_rss_mb']:>13.0f}"
                  f"{r['worker_peak_rss_mb']:>15.0f}")


if __name__ == "__main__":
    main()
