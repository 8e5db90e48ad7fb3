"""Embedding extraction: images under a data root -> model -> FeatureStore, with an on-disk cache.

`extract_features(model, data_root, rel_paths)` reads the images with cv2 in DataLoader workers (converted to
RGB and fitted to the model's input size there), runs the model in batches (CUDA when available) and returns a
FeatureStore whose `features` = f(x) and, with flip=True, `flip_features` = f(horizontal flip of x), both raw
(unnormalised), so that protocols apply their own rule (insightface: normalise(f(x) + f(flip x))).

Cache: with `cache_dir`, the store is saved as `emb-<key>.npz` where the key hashes the model identity (backend,
spec, sha256 of the model file or of an in-memory state dict, preprocessing), the data root, the image list with
each file's size and mtime, and the flip flag; a second call with the same key loads it and skips the network.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from arface_repro.errors import FormatError, MissingDataError
from arface_repro.eval.image_list import list_images, read_image_list  # noqa: F401  (re-exported)
from arface_repro.io.feature_store import FeatureStore, load_feature_store, normalize_rel_path, save_feature_store

__all__ = ["extract_features", "embed_arrays", "list_images", "read_image_list", "cache_key"]


class _ImageDataset:
    """Reads one image (cv2, -> RGB) and fits it to the model's input size; errors come back as text."""

    def __init__(self, root: Path, paths: Sequence[str], preprocess):
        self.root, self.paths, self.preprocess = root, list(paths), preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        import cv2

        full = self.root / self.paths[i]
        img = cv2.imread(str(full), cv2.IMREAD_COLOR)
        if img is None:
            return i, None, f"{full}: not a readable image (cv2.imread failed)"
        try:
            return i, self.preprocess.fit_image(img[:, :, ::-1], name=str(full)), None
        except Exception as exc:  # returned, not raised: worker exceptions lose their type and message
            return i, None, str(exc)


def _collate(items):
    return items


def cache_key(model, data_root: Path, paths: Sequence[str], stats: Sequence[tuple[int, int]], flip: bool) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"model": model.identity(), "root": str(data_root.resolve()), "flip": bool(flip),
                         "version": 1}, sort_keys=True).encode())
    for p, (size, mtime) in zip(paths, stats):
        h.update(f"\n{p}\t{size}\t{mtime}".encode())
    return h.hexdigest()


def _dedupe(paths: Sequence[str]) -> list[str]:
    seen, out = set(), []
    for p in paths:
        q = normalize_rel_path(p)
        if q not in seen:
            seen.add(q)
            out.append(q)
    return out


def _stat_all(root: Path, paths: Sequence[str]) -> list[tuple[int, int]]:
    stats, missing = [], []
    for p in paths:
        try:
            st = os.stat(root / p)
            stats.append((st.st_size, st.st_mtime_ns))
        except OSError:
            missing.append(p)
    if missing:
        shown = ", ".join(missing[:5]) + (f" … ({len(missing)} in all)" if len(missing) > 5 else "")
        raise MissingDataError(f"{root}: {len(missing)} image(s) not found: {shown}")
    return stats


def embed_arrays(model, images, batch_size: int = 64, flip: bool = True, quiet: bool = True, device=None,
                 preprocess=None):
    """Embed in-memory uint8 H×W×3 RGB images (a list or an N×H×W×3 array, e.g. decoded from a `.bin` set).

    Returns (features, flip_features or None), float32 N×D, raw.
    """
    from tqdm import tqdm

    from arface_repro.models.backends import load_model

    m = load_model(model, device=device, preprocess=preprocess)
    feats, flips = [], []
    n = len(images)
    for s in tqdm(range(0, n, batch_size), disable=quiet, unit="batch", desc="embedding"):
        x = np.stack([m.preprocess.fit_image(np.asarray(im), name=f"image {s + j}") for j, im in enumerate(images[s:s + batch_size])])
        f, g = _embed_batch(m, x, flip)
        feats.append(f)
        if g is not None:
            flips.append(g)
    if not feats:
        raise FormatError("embed_arrays: no images given")
    return np.concatenate(feats), (np.concatenate(flips) if flip else None)


def _embed_batch(m, x: np.ndarray, flip: bool):
    if not flip:
        return m.embed(x), None
    out = m.embed(np.concatenate([x, x[:, :, ::-1]]))  # one call: original images then their mirror images
    return out[: len(x)], out[len(x):]


def extract_features(
    model,
    data_root: str | os.PathLike,
    rel_paths: Sequence[str] | None = None,
    *,
    batch_size: int = 64,
    flip: bool = True,
    workers: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    device=None,
    preprocess=None,
    quiet: bool = False,
) -> FeatureStore:
    """FeatureStore of `rel_paths` (default: every image under `data_root`, sorted) embedded by `model`.

    `model`: a spec string (`onnx:F`, `torch:ARCH:F`, ...), an EmbeddingModel, or an nn.Module (see
    models/backends.load_model). Duplicated paths are embedded once; the store keeps the first-seen order.
    `workers` DataLoader reader processes (default min(4, CPUs); 0 = read in this process).
    `store.meta` has model_spec, model_sha256, preprocess, flip, cache ('hit', 'miss' or 'off'), cache_path.
    """
    from arface_repro.models.backends import load_model

    root = Path(data_root)
    if not root.is_dir():
        raise MissingDataError(f"{root}: data root is not a directory")
    paths = _dedupe(list_images(root) if rel_paths is None else rel_paths)
    if not paths:
        raise MissingDataError(f"{root}: no images to embed")
    stats = _stat_all(root, paths)
    m = load_model(model, device=device, preprocess=preprocess)
    key = cache_key(m, root, paths, stats, flip)
    meta = {"model_spec": m.spec, "model_sha256": m.file_sha256, "preprocess": m.preprocess.key(),
            "flip": str(bool(flip)), "cache_key": key, "data_root": str(root)}
    cache_path = Path(cache_dir) / f"emb-{key[:32]}.npz" if cache_dir is not None else None
    if cache_path is not None and cache_path.is_file():
        try:
            cached = load_feature_store(cache_path)
        except Exception:
            cached = None  # an unreadable cache file is recomputed and overwritten
        if cached is not None and cached.meta.get("cache_key") == key and cached.paths.tolist() == paths:
            cached.meta.update(cache="hit", cache_path=str(cache_path))
            return cached

    feats, flips = _run_extraction(m, root, paths, batch_size, flip, workers, quiet)
    if cache_path is not None:
        save_feature_store(cache_path, feats, paths, flips, **meta)
    meta.update(cache="miss" if cache_path is not None else "off", cache_path=str(cache_path or ""))
    return FeatureStore(features=feats, paths=paths, flip_features=flips,
                        source=str(cache_path) if cache_path else f"<extracted by {m.spec}>", meta=meta)


def _run_extraction(m, root: Path, paths: list[str], batch_size: int, flip: bool, workers, quiet: bool):
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    ds = _ImageDataset(root, paths, m.preprocess)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=_collate,
                        persistent_workers=False, prefetch_factor=2 if workers > 0 else None)
    n = len(paths)
    feats = flips = None
    with tqdm(total=n, disable=quiet, unit="img", desc=f"embedding ({m.kind})") as bar:
        for items in loader:
            errors = [e for _, _, e in items if e is not None]
            if errors:
                raise FormatError(errors[0] + (f" (and {len(errors) - 1} more in this batch)" if len(errors) > 1 else ""))
            idx = np.asarray([i for i, _, _ in items])
            x = np.stack([im for _, im, _ in items])
            f, g = _embed_batch(m, x, flip)
            if feats is None:
                feats = np.empty((n, f.shape[1]), np.float32)
                flips = np.empty((n, f.shape[1]), np.float32) if flip else None
            feats[idx] = f
            if flip:
                flips[idx] = g
            bar.update(len(items))
    return feats, flips
