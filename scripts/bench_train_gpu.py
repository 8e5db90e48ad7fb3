#!/usr/bin/env python
"""Training and embedding throughput (images/s) of the trainer's real step, plain vs ARFace, on a GPU (or, with
tiny sizes, on a CPU so that the script is tested and cannot rot).

For each model: the plain Feature-Net and ARFace with feature-map masking (num_layers 3 for MobileFaceNet and 9
for IR-50, the paper's rows; other models `--layers NAME=K`), on synthetic 112x112 faces (the package's
generator), through the trainer's own path: DataLoader worker processes, pinned batches, non-blocking copies,
masks built on the device, `train.amp`, `train.memory_format=auto` (channels-last on CUDA), optionally
`train.compile`. Each variant: `--warmup` steps, then `--steps` timed steps (CUDA synchronised at both ends);
images/s = steps x global batch / seconds. The ARFace overhead is plain images/s over ARFace images/s
(goal <= 1.05x; the ratio of median step times is given beside it). Embedding: the backbone alone on a device-resident batch (eval, no grad) in float32 and
under the AMP dtype, and, with `--embed-images N`, the package's extraction path (`extract_features`: JPEG
files decoded in worker processes, preprocessing, network) on N synthetic crops written to a temp folder.

The IR-50 of the paper is `ir50` when registered, else insightface's `iresnet50` (the JSON names which).
Every figure goes to one JSON (`--out`), beside the goals; nothing is asserted about time.

    python scripts/bench_train_gpu.py --device cuda --models mobilefacenet,ir50 --out results/bench_train_gpu.json
    python scripts/bench_train_gpu.py --device cpu --models tiny_resnet --batch 8 --steps 2 --warmup 1   (smoke)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

PAPER_LAYERS = {"mobilefacenet": 3, "ir50": 9, "iresnet50": 9}  # the paper's ARFace rows
GOALS = {"mobilefacenet_train_img_s": 6000.0, "arface_overhead_max": 1.05}


def resolve_model(name: str) -> str:
    from arface_repro.backbones.registry import is_model

    if name == "ir50" and not is_model("ir50"):
        return "iresnet50"  # the paper's IR-50 (face.evoLVe, max-pool shortcuts) is not registered here
    return name


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_trainer(args, model: str, variant: str, layers: int, compile_: bool, train_set, out_dir: str):
    from arface_repro.train.config import load_config
    from arface_repro.train.loop import Trainer

    kind = ["method.kind=plain"] if variant == "plain" else ["method.kind=arface", f"method.num_layers={layers}"]
    ov = kind + [
        f"model.name={model}", f"train.batch_size={args.batch}", f"train.steps={args.warmup + args.steps + 1}",
        f"train.amp={args.amp}", f"train.compile={'true' if compile_ else 'false'}", f"train.device={args.device}",
        f"train.memory_format={args.memory_format}", "train.quiet=true", "train.log_every=0",
        f"data.num_workers={args.workers}", f"out_dir={out_dir}", f"seed={args.seed}",
    ]
    return Trainer(load_config(None, ov), datasets=(train_set, None))


def time_training(args, model: str, variant: str, layers: int, compile_: bool, train_set) -> dict:
    import torch

    from arface_repro.train.data import next_batch, worker_loader

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        tr = make_trainer(args, model, variant, layers, compile_, train_set, tmp)
        total = args.warmup + args.steps
        loader = None
        if args.workers > 0:
            loader = iter(worker_loader(tr.train_set, tr.batches, 0, total, args.workers,
                                        pin_memory=tr.device.type == "cuda"))
        if tr.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(tr.device)
        step_times = []
        first_step_s = None
        for i in range(total):
            if i == args.warmup:
                _sync(tr.device)
                start = time.perf_counter()
            t = time.perf_counter()
            rec = tr.train_step(next_batch(loader) if loader is not None else None)
            step_times.append(time.perf_counter() - t)  # each step ends with a host read of its statistics
            if i == 0:
                first_step_s = time.perf_counter() - t0  # set-up + first step (compilation, cuDNN autotuning)
        _sync(tr.device)
        seconds = time.perf_counter() - start
        timed = step_times[args.warmup:]
        out = {
            "model": model, "variant": variant, "num_layers": layers if variant != "plain" else 0,
            "amp": args.amp, "compile": compile_, "memory_format": str(tr.memory_format).replace("torch.", ""),
            "device": str(tr.device), "global_batch": args.batch, "workers": args.workers,
            "timed_steps": args.steps, "seconds": seconds, "img_s": args.steps * args.batch / seconds,
            "step_ms_median": 1000 * statistics.median(timed), "step_ms_max": 1000 * max(timed),
            "setup_and_first_step_s": first_step_s, "final_loss": rec["loss"],
        }
        if tr.device.type == "cuda":
            out["peak_gpu_mem_gib"] = torch.cuda.max_memory_allocated(tr.device) / 2**30
        del tr, loader
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return out


def time_backbone(args, model: str, images, landmarks) -> list[dict]:
    """The backbone alone on a device-resident normalised batch: float32 and the AMP dtype, eval, no grad."""
    import torch

    from arface_repro.backbones.registry import create_model
    from arface_repro.train.acceleration import resolve_memory_format, resolve_precision
    from arface_repro.train.loop import normalise

    device = torch.device(args.device)
    fmt = resolve_memory_format(args.memory_format, device)
    net = create_model(model).to(device, memory_format=fmt).eval()
    x = normalise(torch.from_numpy(images[: args.embed_batch]).to(device), memory_format=fmt)
    rows = []
    for mode in dict.fromkeys(["off", args.amp]):
        prec = resolve_precision(mode, device)
        with torch.no_grad(), prec.autocast():
            for _ in range(args.warmup):
                net(x)
            _sync(device)
            t = time.perf_counter()
            for _ in range(args.steps):
                net(x)
            _sync(device)
        seconds = time.perf_counter() - t
        rows.append({"model": model, "path": "backbone on a device batch", "precision": mode, "batch": len(x),
                     "img_s": args.steps * len(x) / seconds})
    return rows


def time_extraction(args, model: str, images) -> dict:
    """`extract_features` over JPEG files (decoded in worker processes) with the model in float32."""
    import cv2
    import torch

    from arface_repro.backbones.registry import create_model
    from arface_repro.eval.embed import extract_features
    from arface_repro.models.backends import load_model

    n = args.embed_images
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = []
        for i in range(n):
            rel = f"id{i % 100:03d}/{i:06d}.jpg"
            (root / rel).parent.mkdir(exist_ok=True)
            cv2.imwrite(str(root / rel), images[i % len(images)][:, :, ::-1])
            paths.append(rel)
        net = load_model(create_model(model).eval(), device=args.device)  # wrapped once (hashes its weights)
        kw = dict(batch_size=args.embed_batch, flip=False, workers=args.workers, device=args.device, quiet=True)
        extract_features(net, root, paths[: min(n, args.embed_batch)], **kw)  # warm-up (cuDNN, workers)
        _sync(torch.device(args.device))
        t = time.perf_counter()
        store = extract_features(net, root, paths, **kw)
        _sync(torch.device(args.device))
        seconds = time.perf_counter() - t
    return {"model": model, "path": "extract_features (JPEG files, workers, float32)", "images": n,
            "workers": args.workers, "batch": args.embed_batch, "img_s": n / seconds,
            "dim": int(store.features.shape[1])}


def env_info(args) -> dict:
    import numpy as np
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "cpus": os.cpu_count(), "device": args.device,
            "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
    return info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    p.add_argument("--models", default="mobilefacenet,ir50", help="registered names; ir50 falls back to iresnet50")
    p.add_argument("--layers", action="append", default=[], metavar="NAME=K",
                   help="ARFace num_layers for a model (defaults: mobilefacenet 3, ir50/iresnet50 9, others 2)")
    p.add_argument("--variants", default="plain,arface", help="plain and/or arface")
    p.add_argument("--batch", type=int, default=512, help="global batch (default 512, the paper configs')")
    p.add_argument("--batch-for", action="append", default=[], metavar="NAME=B", help="another batch for one model")
    p.add_argument("--steps", type=int, default=30, help="timed steps per variant")
    p.add_argument("--warmup", type=int, default=8, help="untimed steps first (cuDNN autotuning, compilation)")
    p.add_argument("--amp", default="bf16", choices=("bf16", "fp16", "off"))
    p.add_argument("--memory-format", default="auto", choices=("auto", "channels_last", "contiguous"))
    p.add_argument("--compile", default="off", choices=("off", "on", "both"),
                   help="train.compile for the variants (both: each variant eager and compiled)")
    p.add_argument("--compile-models", default=None, help="models that get the compiled runs (default all)")
    p.add_argument("--workers", type=int, default=6, help="DataLoader worker processes (data.num_workers)")
    p.add_argument("--images", type=int, default=0, help="synthetic training images (default 4 x batch)")
    p.add_argument("--identities", type=int, default=64)
    p.add_argument("--embed-batch", type=int, default=512)
    p.add_argument("--embed-images", type=int, default=0, help="also time extract_features over N JPEG files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--out", default=None, help="JSON output (default: print only)")
    args = p.parse_args(argv)

    import torch

    from arface_repro.backbones.registry import create_model
    from arface_repro.data.occluded_faces import SyntheticFaces

    if args.threads:
        torch.set_num_threads(args.threads)
    layers = dict(PAPER_LAYERS)
    for item in args.layers:
        k, v = item.split("=", 1)
        layers[k] = int(v)
    batch_for = {k: int(v) for k, v in (item.split("=", 1) for item in args.batch_for)}
    variants = [v for v in args.variants.split(",") if v]
    models = [resolve_model(m) for m in args.models.split(",") if m]
    compiled_models = set(resolve_model(m) for m in args.compile_models.split(",")) if args.compile_models else set(models)
    n_img = args.images or 4 * max([args.batch, *batch_for.values()])
    t = time.perf_counter()
    data = SyntheticFaces(num_identities=args.identities, images_per_identity=-(-n_img // args.identities),
                          seed=args.seed, occluded=True)
    result = {"env": env_info(args), "goals": GOALS, "synthetic_images": len(data),
              "synthetic_seconds": time.perf_counter() - t, "requested_models": args.models,
              "models": models, "train": [], "embed": [], "errors": []}

    def save():
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(args.out).with_suffix(".tmp")
            tmp.write_text(json.dumps(result, indent=1))
            tmp.replace(args.out)

    compile_modes = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    for model in models:
        base_batch = args.batch
        args.batch = batch_for.get(model, base_batch)
        k = layers.get(model, min(2, len(getattr(create_model(model), "mask_points", [])) or 2))
        for comp in compile_modes:
            if comp and model not in compiled_models:
                continue
            for variant in variants:
                try:
                    row = time_training(args, model, variant, k, comp, data)
                except Exception as exc:  # noqa: BLE001 - a failure (compile unavailable, out of memory) is a figure too
                    row = {"model": model, "variant": variant, "compile": comp,
                           "error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"}
                    result["errors"].append(row)
                result["train"].append(row)
                print(json.dumps(row), flush=True)
                save()
        args.batch = base_batch
        try:
            for row in time_backbone(args, model, data.images, data.landmarks):
                result["embed"].append(row)
                print(json.dumps(row), flush=True)
            if args.embed_images:
                row = time_extraction(args, model, data.images)
                result["embed"].append(row)
                print(json.dumps(row), flush=True)
        except Exception as exc:  # noqa: BLE001 - a failure is recorded in the figures, the run goes on
            row = {"model": model, "embed_error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"}
            result["errors"].append(row)
            print(json.dumps(row), flush=True)
        save()

    summary = {}
    for model in models:
        for comp in compile_modes:
            rows = {r["variant"]: r for r in result["train"]
                    if r["model"] == model and r.get("compile") == comp and "img_s" in r}
            tag = f"{model}{'_compiled' if comp else ''}"
            if "plain" in rows:
                summary[f"{tag}_plain_img_s"] = rows["plain"]["img_s"]
            if "plain" in rows and "arface" in rows:  # images/s plain over ARFace (wall time, data path included)
                summary[f"{tag}_arface_l{rows['arface']['num_layers']}_img_s"] = rows["arface"]["img_s"]
                summary[f"{tag}_arface_overhead"] = rows["plain"]["img_s"] / rows["arface"]["img_s"]
                summary[f"{tag}_arface_overhead_median_step"] = (rows["arface"]["step_ms_median"]
                                                                 / rows["plain"]["step_ms_median"])
    result["summary"] = summary
    save()
    print("summary (goals: MobileFaceNet training >= {:.0f} img/s on one H200, ARFace overhead <= {:.2f}x):".format(
        GOALS["mobilefacenet_train_img_s"], GOALS["arface_overhead_max"]))
    for k, v in summary.items():
        print(f"  {k:<40s} {v:10.3f}")
    return 0 if any("img_s" in r for r in result["train"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
