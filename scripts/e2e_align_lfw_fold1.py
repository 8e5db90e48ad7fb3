"""End-to-end check of detection + alignment on LFW fold 1 (the first 600 pairs of View 2 `pairs.txt`).

Path A: deep-funneled 250×250 images -> our MTCNN -> our 112×112 ArcFace alignment -> MobileFaceNet.
Path B: the shared `aligned-112x96` crops padded with 8 zero columns each side -> MobileFaceNet.
Both: embeddings L2-normalised, cosine similarity, accuracy at the best-accuracy threshold on the same
600 pairs (the threshold is chosen on the pairs it is scored on, for both paths alike). If the two
accuracies agree within about a point, detection and alignment behave like the reference preprocessing.

MobileFaceNet = the shared ONNX model (input `input` NCHW [2, 3, 112, 112], fixed batch 2, RGB,
(x − 127.5) / 128; output 192-d), run with onnxruntime directly.

    python scripts/e2e_align_lfw_fold1.py [--shared DIR] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def read_fold1_pairs(pairs_txt: Path, n: int = 600) -> list[tuple[str, str, bool]]:
    """First `n` pairs after the header line: (relpath1, relpath2, same)."""
    lines = pairs_txt.read_text().splitlines()
    out = []
    for lineno, line in enumerate(lines[1 : n + 1], 2):
        f = line.split()
        if len(f) == 3:
            out.append((f"{f[0]}/{f[0]}_{int(f[1]):04d}.jpg", f"{f[0]}/{f[0]}_{int(f[2]):04d}.jpg", True))
        elif len(f) == 4:
            out.append((f"{f[0]}/{f[0]}_{int(f[1]):04d}.jpg", f"{f[2]}/{f[2]}_{int(f[3]):04d}.jpg", False))
        else:
            raise ValueError(f"{pairs_txt}: line {lineno}: expected 3 or 4 fields, got {line!r}")
    if len(out) != n:
        raise ValueError(f"{pairs_txt}: only {len(out)} pairs after the header, expected {n}")
    return out


def embed(session, crops: np.ndarray) -> np.ndarray:
    """MobileFaceNet embeddings of RGB uint8 N×112×112×3 crops, L2-normalised (fixed batch 2: pad)."""
    x = (crops.astype(np.float32) - 127.5) / 128.0
    x = x.transpose(0, 3, 1, 2)
    n = len(x)
    if n % 2:
        x = np.concatenate([x, np.zeros_like(x[:1])])
    feats = np.concatenate([session.run(None, {"input": x[i : i + 2]})[0] for i in range(0, len(x), 2)])[:n]
    return feats / np.linalg.norm(feats, axis=1, keepdims=True)


def best_threshold_accuracy(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """Highest accuracy of `score > t` over all thresholds t (midpoints between sorted scores)."""
    s = np.sort(np.unique(scores))
    cands = np.concatenate([[s[0] - 1e-6], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-6]])
    accs = [np.mean((scores > t) == same) for t in cands]
    i = int(np.argmax(accs))
    return float(accs[i]), float(cands[i])


def main(argv=None) -> int:
    import cv2
    import onnxruntime as ort
    import torch

    from arface_repro.data.alignment import align_face
    from arface_repro.data.face_datasets import read_image
    from arface_repro.data.mtcnn import MTCNN, select_main_face
    from arface_repro.shared_data import shared_dir

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=shared_dir(), help="shared data folder")
    ap.add_argument("--out", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--threads", type=int, default=1, help="torch/onnxruntime threads (default 1: MTCNN's small "
                    "convolutions gain nothing from more and slow down a lot on a shared, busy CPU)")
    args = ap.parse_args(argv)
    if args.shared is None:
        ap.error("shared folder not found: pass --shared")
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    lfw = args.shared / "data" / "lfw"
    pairs = read_fold1_pairs(lfw / "pairs.txt")
    same = np.array([p[2] for p in pairs])
    images = sorted({p for a, b, _ in pairs for p in (a, b)})
    print(f"fold 1: {len(pairs)} pairs ({same.sum()} same), {len(images)} distinct images")

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(args.shared / "models" / "mobilefacenet-expo" / "MobileFaceNet.onnx"), opts,
        providers=["CPUExecutionProvider"],
    )

    # path A: detect + align
    detector = MTCNN(args.shared / "models" / "mtcnn-facenet-pytorch", device="cpu")
    t0 = time.time()
    landmarks, no_face, multi = {}, [], []
    for rel in images:
        img = read_image(lfw / "deepfunneled-fold1" / rel)
        boxes, _, lmks = detector.detect(img)
        if len(boxes) == 0:
            no_face.append(rel)
            continue
        pick = select_main_face(boxes, img.shape) if len(boxes) > 1 else 0
        if len(boxes) > 1:
            multi.append(rel)
        landmarks[rel] = lmks[pick]
    t_detect = time.time() - t0
    # images without a detection: use the mean landmarks of the others (deep-funneled faces sit in place)
    mean_lmk = np.mean(list(landmarks.values()), axis=0)
    crops_a = np.stack(
        [align_face(read_image(lfw / "deepfunneled-fold1" / rel), landmarks.get(rel, mean_lmk))[0] for rel in images]
    )
    crops_b = np.stack(
        [np.pad(read_image(lfw / "aligned-112x96" / rel), ((0, 0), (8, 8), (0, 0))) for rel in images]
    )
    assert crops_b.shape[1:] == (112, 112, 3)
    t1 = time.time()
    feat_a, feat_b = embed(session, crops_a), embed(session, crops_b)
    t_embed = time.time() - t1

    pos = {rel: i for i, rel in enumerate(images)}
    ia = np.array([pos[a] for a, _, _ in pairs])
    ib = np.array([pos[b] for _, b, _ in pairs])
    result = {"pairs": len(pairs), "images": len(images), "no_face": no_face, "multi_face": multi}
    for name, feats in (("mtcnn_aligned", feat_a), ("reference_112x96_padded", feat_b)):
        scores = np.sum(feats[ia] * feats[ib], axis=1)
        acc, thr = best_threshold_accuracy(scores, same)
        result[name] = {"accuracy_percent": 100 * acc, "threshold": thr}
    # how far our crops are from the reference crops of the same images (same network)
    same_image = np.sum(feat_a * feat_b, axis=1)
    result["mean_cosine_ours_vs_reference"] = float(np.mean(same_image))
    result["images_cosine_below_0.5"] = [images[i] for i in np.flatnonzero(same_image < 0.5)]

    print(f"MTCNN: {len(images) - len(no_face)}/{len(images)} images with a face, {len(multi)} with several "
          f"(kept the large central one), {len(no_face)} without (aligned with the mean landmarks)"
          f" in {t_detect:.1f} s ({len(images) / t_detect:.1f} img/s)")
    print(f"embedding 2×{len(images)} crops: {t_embed:.1f} s")
    print("rule: cosine similarity of L2-normalised embeddings, accuracy at the best-accuracy threshold "
          "on these 600 pairs (same rule for both)")
    for name in ("mtcnn_aligned", "reference_112x96_padded"):
        r = result[name]
        print(f"  {name:26s} accuracy {r['accuracy_percent']:.2f}%  (threshold {r['threshold']:.4f})")
    diff = result["mtcnn_aligned"]["accuracy_percent"] - result["reference_112x96_padded"]["accuracy_percent"]
    print(f"  difference {diff:+.2f} points; mean cosine between our crop and the reference crop of the same "
          f"image: {result['mean_cosine_ours_vs_reference']:.4f}")
    low = result["images_cosine_below_0.5"]
    print(f"  {len(low)} images whose crop embeds with cosine < 0.5 to its reference crop (wrong face or bad "
          f"alignment){': ' + ', '.join(low) if low else ''}")
    if no_face:
        print("  no face:", ", ".join(no_face))
    if args.out:
        from arface_repro.utils.atomic import write_json_atomic

        write_json_atomic(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
