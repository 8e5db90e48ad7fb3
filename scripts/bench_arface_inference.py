#!/usr/bin/env python
"""Benchmark ARFace inference against its backbone alone, on CPU: time per image and the ratio (goal ≤ 1.10×).

For each Feature-Net (MobileFaceNet, the paper's IR-50) an `ARFaceInference` (arface_repro.method.arface_inference:
patch boxes from the 5 landmarks, Attention-Net, argmax mode, input mask, backbone) is built with random weights
(speed does not depend on them; the Attention-Net's classifier is random so that the argmax varies) and timed on
the same normalised batch as the backbone alone. Both are measured in the same run, alternating A/B per repetition;
the figure is the median over repetitions of (batch time / batch size). `--onnx` also times both exported to ONNX
(onnxruntime, CPU). Landmarks: the ArcFace 112×112 template jittered by 3 px.

    python scripts/bench_arface_inference.py [--batch-size 32] [--repeats 7] [--threads 1]
                                             [--archs mobilefacenet,ir50] [--onnx]

The load average is printed with the figures: on a shared machine they are timings "under load".
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path


def build(arch: str, seed: int = 0):
    import torch

    from arface_repro.backbones.registry import create_model
    from arface_repro.method.arface_inference import ARFaceInference
    from arface_repro.method.attention_net import AttentionNet

    torch.manual_seed(seed)
    backbone = create_model(arch).eval()
    attn = AttentionNet()
    torch.nn.init.normal_(attn.classifier.weight, std=0.1)
    return ARFaceInference(backbone, attn.eval(), patch_radius=30.0).eval()


def batch(n: int, seed: int = 0):
    import numpy as np
    import torch

    from arface_repro.data.alignment import ARCFACE_112

    rng = np.random.default_rng(seed)
    x = (rng.integers(0, 256, (n, 3, 112, 112)).astype(np.float32) - 128.0) / 128.0
    lm = (ARCFACE_112[None] + rng.normal(0, 3, (n, 5, 2))).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(lm)


def time_pair(run_a, run_b, n: int, repeats: int) -> tuple[float, float]:
    """Median ms/image of two callables, alternated per repetition after one warm-up each."""
    run_a(), run_b()
    ta, tb = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        run_a()
        ta.append((time.perf_counter() - t) * 1e3 / n)
        t = time.perf_counter()
        run_b()
        tb.append((time.perf_counter() - t) * 1e3 / n)
    return statistics.median(ta), statistics.median(tb)


def onnx_pair(net, x, lm, tmp: Path, threads: int):
    import warnings

    import onnxruntime as ort
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.backbone, (x,), str(tmp / "b.onnx"), input_names=["input"], output_names=["e"],
                          dynamic_axes={"input": {0: "n"}}, opset_version=17, dynamo=False)
        torch.onnx.export(net, (x, lm), str(tmp / "a.onnx"), input_names=["input", "landmarks"], output_names=["e"],
                          dynamic_axes={"input": {0: "n"}, "landmarks": {0: "n"}}, opset_version=17, dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sb = ort.InferenceSession(str(tmp / "b.onnx"), opts, providers=["CPUExecutionProvider"])
    sa = ort.InferenceSession(str(tmp / "a.onnx"), opts, providers=["CPUExecutionProvider"])
    xb, lb = x.numpy(), lm.numpy()
    return (lambda: sb.run(None, {"input": xb})), (lambda: sa.run(None, {"input": xb, "landmarks": lb}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", default="mobilefacenet,ir50")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--onnx", action="store_true", help="also time both exported to ONNX (onnxruntime)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    print(f"# ARFace inference vs backbone alone, CPU ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores), torch {torch.__version__}, {args.threads} thread(s), batch {args.batch_size}, "
          f"median of {args.repeats}")
    print(f"# load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
          + (" -> timings under load" if load[0] > 0.5 * (os.cpu_count() or 1) else ""))
    x, lm = batch(args.batch_size)
    print(f"{'Feature-Net':<14} {'runtime':<12} {'backbone ms/img':>16} {'ARFace ms/img':>14} {'ratio':>7}  goal <= 1.10")
    with tempfile.TemporaryDirectory() as tmp:
        for arch in [a.strip() for a in args.archs.split(",") if a.strip()]:
            net = build(arch)
            with torch.inference_mode():
                b, a = time_pair(lambda net=net: net.backbone(x), lambda net=net: net(x, lm), args.batch_size, args.repeats)
            print(f"{arch:<14} {'pytorch':<12} {b:16.3f} {a:14.3f} {a / b:7.3f}  {'ok' if a / b <= 1.10 else 'over'}")
            if args.onnx:
                rb, ra = onnx_pair(net, x, lm, Path(tmp), args.threads)
                b, a = time_pair(rb, ra, args.batch_size, args.repeats)
                print(f"{arch:<14} {'onnxruntime':<12} {b:16.3f} {a:14.3f} {a / b:7.3f}  {'ok' if a / b <= 1.10 else 'over'}")
    load = os.getloadavg()
    print(f"# load average at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
