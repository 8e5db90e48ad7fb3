"""YouTube Faces (YTF): 5,000 video pairs in 10 splits, 10-fold accuracy with folds = splits.

The pairs come from `splits.txt` (`arface_repro.eval.ytf.splits`, the reader); the split field is the fold.

Frame features come from a feature store whose paths are `Person/videoIdx/<frame file>`; a video's
frames are all store paths under `Person/videoIdx/`.

Video comparison variants (the `pooling` label in records):
* 'mean' (default, DESIGN.md): L2-normalise each frame, average, L2-normalise again; distance = squared
  L2 between the two video features.
* 'min-dist' / 'mean-dist' / 'max-dist': squared L2 distance between every frame pair of the two videos
  (normalised frames), then its min / mean / max.
Then the insightface k-fold procedure (arface_repro.eval.kfold.kfold_accuracy: thresholds 0..4 step
0.01, the first best threshold on the other 9 folds) with the 10 splits as folds.

Audit: no public reference implementation scores YTF videos (the ARFace paper only says "similar to the
LFW testing protocol, the 10-fold cross validation"); the k-fold rule is insightface's `verification.py`
rule on the video features, the pooling is DESIGN.md's, and the distances are float64 (the video means
are float64). Labelled `rule` (same rule, no reference numbers to match) in protocols/ytf.yaml.
"""

from __future__ import annotations

import numpy as np

from arface_repro.errors import ConfigError, MissingDataError
from arface_repro.eval.kfold import kfold_accuracy
from arface_repro.eval.ytf.splits import YTFPairs, check_splits

POOLINGS = ("mean", "min-dist", "mean-dist", "max-dist")


def video_rows(paths: np.ndarray, prefix: str = "") -> dict[str, np.ndarray]:
    """{'Person/videoIdx': store rows of its frames}, frames in path order; a leading `prefix/` (the
    frames folder, e.g. aligned_images_DB) is ignored."""
    paths = np.asarray(paths)
    pre = prefix.rstrip("/") + "/" if prefix else ""

    def key(p: str) -> str:
        if pre and p.startswith(pre):
            p = p[len(pre):]
        return "/".join(p.split("/", 2)[:2]) if p.count("/") >= 2 else ""

    keys = np.array([key(p) for p in paths.tolist()])
    order = np.argsort(paths, kind="stable")
    keys_o = keys[order]
    # all paths sharing the prefix 'Person/videoIdx/' are contiguous in sorted order
    change = np.flatnonzero(keys_o[1:] != keys_o[:-1]) + 1
    bounds = np.concatenate([[0], change, [keys_o.size]])
    return {str(keys_o[bounds[i]]): order[bounds[i]:bounds[i + 1]] for i in range(bounds.size - 1) if keys_o[bounds[i]]}


def _norm(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-30)


def pair_distances(store, pairs: YTFPairs, pooling: str = "mean", flip: str = "none", prefix: str = "") -> np.ndarray:
    """Squared-L2 distance per pair under the chosen pooling (see module docstring)."""
    if pooling not in POOLINGS:
        raise ConfigError(f"unknown YTF pooling {pooling!r} (expected {', '.join(POOLINGS)})")
    vids = video_rows(store.paths, prefix)
    needed = sorted(set(pairs.video1) | set(pairs.video2))
    missing = [v for v in needed if v not in vids]
    if missing:
        raise MissingDataError(f"{store.source}: no frames for {len(missing)} YTF video(s) of {pairs.source}: "
                               f"{', '.join(missing[:5])}")
    feats = store.combined(flip)

    def frames(v):
        return _norm(feats[vids[v]])

    if pooling == "mean":
        pooled = {v: _norm(frames(v).mean(axis=0, keepdims=True))[0] for v in needed}
        a = np.stack([pooled[v] for v in pairs.video1])
        b = np.stack([pooled[v] for v in pairs.video2])
        return np.sum(np.square(a - b), axis=1)
    red = {"min-dist": np.min, "mean-dist": np.mean, "max-dist": np.max}[pooling]
    out = np.empty(len(pairs.video1))
    for i, (v1, v2) in enumerate(zip(pairs.video1, pairs.video2)):
        d = np.clip(2.0 - 2.0 * frames(v1) @ frames(v2).T, 0.0, 4.0)
        out[i] = red(d)
    return out


def evaluate(store, pairs: YTFPairs, pooling: str = "mean", flip: str = "none", prefix: str = "") -> dict:
    """10-fold accuracy with folds = splits; returns {'accuracy' (mean), 'std', 'per_fold', 'thresholds'}."""
    check_splits(pairs)
    dist = pair_distances(store, pairs, pooling, flip, prefix)
    result = kfold_call(dist, pairs.issame, pairs.split)
    return {"accuracy": result.mean, "std": result.std, "per_fold": result.accuracy.tolist(),
            "thresholds": result.threshold.tolist(), "pooling": pooling, "n_pairs": int(dist.size)}


def kfold_call(dist: np.ndarray, issame: np.ndarray, folds: np.ndarray):
    """The call site into the project's k-fold routine (insightface rule)."""

    return kfold_accuracy(dist, issame, folds)
