#!/usr/bin/env python
"""Mini ablation on real faces: train a small Feature-Net from scratch on BLUFR trial 1's training
identities (LFW) as plain / Random patch dropping / ARFace (num_layers 0 and 3), then report BLUFR
verification on trial 1's test split: VR at FAR = 0.1% over all test pairs, cosine scores, computed
by the project's exact BLUFR port (`arface_repro.eval.blufr.eval_roc`).

Data: ../shared/data/blufr/blufr_lfw_config.mat (trainIndex{1}, testIndex{1}) and the 112x96
SphereFace-aligned LFW crops, padded with 8 zero columns each side to 112x112; landmarks = the ArcFace
112x112 template (the crops are aligned). Small scale by design (CPU): a few thousand training images
of ~1,500 people, so absolute numbers are far below the paper's; the point is the comparison.

    python scripts/mini_ablation.py --steps 600 --out results/mini_ablation.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

VARIANTS = {
    "plain": ["method.kind=plain"],
    "random": ["method.kind=random", "method.num_layers=0"],
    "arface_l0": ["method.kind=arface", "method.num_layers=0"],
    "arface_l3": ["method.kind=arface", "method.num_layers=3"],
}


class ArrayFaces:
    """In-memory face set with the synthetic set's fast-path attributes."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        from arface_repro.method.patches import ARCFACE_TEMPLATE_112

        self.images, self.labels = images, labels.astype(np.int64)
        self.landmarks = np.repeat(ARCFACE_TEMPLATE_112[None], len(labels), 0)
        self.num_classes = int(labels.max()) + 1

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i]), self.landmarks[i]


def load_split(cfg, index: np.ndarray, root: Path) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    from arface_repro.errors import MissingDataError

    imgs = np.zeros((len(index), 112, 112, 3), np.uint8)
    for k, i in enumerate(index):
        name = cfg.image_list[i]
        path = root / name.rsplit("_", 1)[0] / name
        im = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if im is None:
            raise MissingDataError(f"{path}: missing or unreadable (BLUFR imageList entry {i + 1})")
        if im.shape[:2] != (112, 96):
            raise MissingDataError(f"{path}: expected a 112x96 aligned crop, got {im.shape[:2]}")
        imgs[k, :, 8:104] = im[:, :, ::-1]
    _, labels = np.unique(cfg.labels[index], return_inverse=True)
    return imgs, labels


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--model", default="tiny_resnet")
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--out", default="results/mini_ablation.json")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import torch

    from arface_repro.eval.blufr import REPORT_VERIFY_FAR, VERIFY_FARS, eval_roc
    from arface_repro.io.blufr_config import load_blufr_config
    from arface_repro.shared_data import shared_path
    from arface_repro.train.loop import train
    from arface_repro.utils.atomic import write_json_atomic

    torch.set_num_threads(2)
    cfg = load_blufr_config(shared_path("data", "blufr", "blufr_lfw_config.mat"))
    root = Path(shared_path("data", "lfw", "aligned-112x96"))
    t0 = time.time()
    train_set = ArrayFaces(*load_split(cfg, cfg.train_index[0], root))
    test_imgs, test_labels = load_split(cfg, cfg.test_index[0], root)
    test_lms = np.repeat(train_set.landmarks[:1], len(test_labels), 0)
    print(f"BLUFR trial 1: {len(train_set)} training images of {train_set.num_classes} people, "
          f"{len(test_labels)} test images ({time.time() - t0:.0f} s to load)")
    far_i = int(np.argmin(np.abs(VERIFY_FARS - REPORT_VERIFY_FAR)))

    def verify(trainer) -> dict:
        feats, _ = trainer.embed(test_imgs, test_lms)
        x = feats.astype(np.float64)
        x /= np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)
        vr, far, _ = eval_roc(x, test_labels)
        return {"VR@FAR=0.1%": 100.0 * float(vr[far_i]), "FAR": float(far[far_i])}

    results = {}
    for name in args.variants:
        t = time.time()
        ov = VARIANTS[name] + [
            f"model.name={args.model}", f"train.steps={args.steps}", f"train.batch_size={args.batch}", f"seed={args.seed}",
            "train.lr=0.1", "train.warmup_steps=50", "data.kind=folder", f"out_dir=runs/mini_ablation/{name}", "train.log_every=50",
        ]
        res = train({"name": f"mini_{name}"}, ov, verify_fn=verify, datasets=(train_set, None))
        results[name] = {**res.metrics, "final_train_loss": res.history[-1]["loss"], "minutes": (time.time() - t) / 60}
        print(f"{name:<10} VR@FAR=0.1% = {results[name]['VR@FAR=0.1%']:.2f}%   ({results[name]['minutes']:.1f} min)", flush=True)
    write_json_atomic(args.out, {"steps": args.steps, "batch": args.batch, "model": args.model, "seed": args.seed, "results": results})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
