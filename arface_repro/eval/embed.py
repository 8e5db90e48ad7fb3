"""Embedding extraction: images under a data root -> model -> FeatureStore, with an on-disk cache.

`extract_features(model, data_root, rel_paths)` reads the images with cv2 in DataLoader workers (converted to
RGB and fitted to the model's input size there), runs the model in batches (CUDA when available) and returns a
FeatureStore whose `features` = f(x) and, with flip=True, `flip_features` = f(horizontal flip of x), both raw
(unnormalised), so that protocols apply their own rule (insightface: normalise(f(x) + f(flip x))).

Cache: with `cache_dir`, one entry per image (`eval.embed_cache`), keyed by the model identity (sha256 of the
model file or state dict, preprocessing), the package code and environment (`utils.provenance`),
and per image the sha256 of its bytes and its alignment / model landmarks. Protocols share it: LFW then BLUFR
with one model embeds each image once; only the images without an entry go through the network.

Alignment (`align`): per-image 5 points in the source image; each image is warped to the 112×112 ArcFace template
(`data.alignment.align_face`) before it is fitted to the model (IJB loose crops).

Landmarks for models that use them (`model.uses_landmarks`, e.g. an ARFace model masking patches around the 5
points): `embed(images, landmarks=N×5×2)` in the pixel coordinates of the images passed, i.e. after alignment and
after the model's pad/resize fitting. They come from the alignment (the template points moved by the warp), else
from a landmarks file (`arface align`'s `relpath x1 y1 … x5 y5`, crop pixels), else None (the aligned template).
The flipped pass gets `data.alignment.mirror_landmarks` of them. Models that do not use landmarks are called as
`embed(images)`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from arface_repro.data.alignment import align_face, mirror_landmarks
from arface_repro.data.image_decoding import decode_bgr
from arface_repro.errors import ConfigError, FormatError, MissingDataError
from arface_repro.eval.embed_cache import EmbeddingCache, context_key, image_keys
from arface_repro.eval.image_list import check_inside_root, list_images, read_image_list  # noqa: F401  (re-exported)
from arface_repro.io.feature_store import FeatureStore, normalize_rel_path
from arface_repro.io.image_header import MAX_IMAGE_FILE_BYTES
from arface_repro.models.backends import load_model
from arface_repro.models.presets import reported_results
from arface_repro.utils.cpus import usable_cpus
from arface_repro.utils.hashing import sha256_file
from arface_repro.utils.input_files import read_capped
from arface_repro.utils.progress import progress
from arface_repro.utils.worker_lifetime import worker_init

__all__ = ["extract_features", "extract_for_protocol", "embed_arrays", "list_images", "read_image_list",
           "fit_landmarks"]


class _ImageDataset:
    """Reads one image (cv2, -> RGB), aligns it when asked, fits it to the model's input size, and carries its
    landmarks into the fitted image's coordinates; errors come back as text."""

    def __init__(self, root: Path, paths: Sequence[str], preprocess, align=None, landmarks=None):
        self.root, self.paths, self.preprocess = root, list(paths), preprocess
        self.align, self.landmarks = align, landmarks

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        full = self.root / self.paths[i]
        try:  # a regular file of bounded size, its header's dimensions checked before decoding
            img = decode_bgr(read_capped(full, "image", MAX_IMAGE_FILE_BYTES), str(full))
        except (FormatError, MissingDataError) as exc:  # what the two raise
            reason = str(exc).removeprefix(f"{full}: ")
            return i, None, None, f"{full}: not a readable image ({reason})"
        try:
            rgb = np.ascontiguousarray(img[:, :, ::-1])
            lm = None
            if self.align is not None:

                rgb, lm = align_face(rgb, self.align[i])
            elif self.landmarks is not None:
                lm = self.landmarks.get(self.paths[i])
                if lm is None:
                    return i, None, None, f"{full}: no entry in the landmarks file"
            fitted = self.preprocess.fit_image(rgb, name=str(full))
            if lm is not None:
                lm = fit_landmarks(lm, rgb.shape[:2], self.preprocess)
            return i, fitted, lm, None
        except Exception as exc:  # noqa: BLE001 - returned, not raised: worker exceptions lose their type and message
            msg = str(exc)
            return i, None, None, msg if msg.startswith(str(full)) else f"{full}: {msg}"


def fit_landmarks(lm: np.ndarray, src_hw: tuple[int, int], preprocess) -> np.ndarray:
    """5 points of an H×W image moved as `preprocess.fit_image` moves its pixels (pad: shift; resize: scale)."""
    lm = np.asarray(lm, np.float32).copy()
    h, w = src_hw
    th, tw = preprocess.size
    if (h, w) == (th, tw):
        return lm
    if preprocess.fit == "pad":
        lm[:, 0] += (tw - w) / 2
        lm[:, 1] += (th - h) / 2
    else:  # resize: pixel centres map (x + 0.5) * tw / w - 0.5
        lm[:, 0] = (lm[:, 0] + 0.5) * (tw / w) - 0.5
        lm[:, 1] = (lm[:, 1] + 0.5) * (th / h) - 0.5
    return lm


def _collate(items):
    return items


def _dedupe(paths: Sequence[str]) -> list[str]:
    seen, out = set(), []
    for p in paths:
        q = normalize_rel_path(p)
        if q not in seen:
            seen.add(q)
            out.append(q)
    return out


def _check_exist(root: Path, paths: Sequence[str]) -> None:
    missing = [p for p in paths if not (root / p).is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (f" … ({len(missing)} in all)" if len(missing) > 5 else "")
        raise MissingDataError(f"{root}: {len(missing)} image(s) not found: {shown}")


def embed_arrays(model, images, batch_size: int = 64, flip: bool = True, quiet: bool = True, device=None,
                 preprocess=None):
    """Embed in-memory uint8 H×W×3 RGB images (a list or an N×H×W×3 array, e.g. decoded from a `.bin` set).

    Returns (features, flip_features or None), float32 N×D, raw.
    """


    m = load_model(model, device=device, preprocess=preprocess)
    feats, flips = [], []
    n = len(images)
    for s in progress(range(0, n, batch_size), quiet=quiet, unit="batch", desc="embedding"):
        x = np.stack([m.preprocess.fit_image(np.asarray(im), name=f"image {s + j}") for j, im in enumerate(images[s:s + batch_size])])
        f, g = _embed_batch(m, x, flip, None)
        feats.append(f)
        if g is not None:
            flips.append(g)
    if not feats:
        raise FormatError("embed_arrays: no images given")
    return np.concatenate(feats), (np.concatenate(flips) if flip else None)


def _embed_batch(m, x: np.ndarray, flip: bool, lm: np.ndarray | None):
    """f(x) and f(mirror x) in one call; `lm` (N×5×2 in x's pixels, or None) only for models that use landmarks."""
    if getattr(m, "uses_landmarks", False):
        if not flip:
            return m.embed(x, landmarks=lm), None

        both = None if lm is None else np.concatenate([lm, mirror_landmarks(lm, x.shape[2])])
        out = m.embed(np.concatenate([x, x[:, :, ::-1]]), landmarks=both)
        return out[: len(x)], out[len(x):]
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
    align: np.ndarray | None = None,
    landmarks: dict | None = None,
    landmarks_sha256: str | None = None,
) -> FeatureStore:
    """FeatureStore of `rel_paths` (default: every image under `data_root`, sorted) embedded by `model`.

    `model`: a spec string (`onnx:F`, `torch:ARCH:F`, ...), an EmbeddingModel, or an nn.Module (see
    models/backends.load_model). Duplicated paths are embedded once; the store keeps the first-seen order.
    `workers` DataLoader reader processes (default min(4, CPUs); 0 = read in this process).
    `align`: N×5×2 source-image landmarks, one per path (paths must then be distinct): align each image first.
    `landmarks`: {path: 5×2 crop landmarks} for models that use landmarks (`landmarks_sha256` keys the cache).
    `cache_dir`: the per-image embedding cache (`eval.embed_cache`), shared by every call with the same model.
    `store.meta` has model_spec, model_sha256, preprocess, flip, cache ('hit', 'partial', 'miss' or 'off'),
    cache_path (the cache folder of this model context) and cache_hits (images read from it).
    """

    root = Path(data_root)
    if not root.is_dir():
        raise MissingDataError(f"{root}: data root is not a directory")
    given = list_images(root) if rel_paths is None else [normalize_rel_path(p) for p in rel_paths]
    if rel_paths is not None:
        check_inside_root(given, f"images to embed under {root}")
    paths = _dedupe(given)
    if align is not None:
        align = np.asarray(align, np.float32)
        if len(paths) != len(given) or align.shape != (len(paths), 5, 2):
            raise FormatError(f"alignment needs one (5, 2) landmark set per distinct image; got {align.shape} "
                              f"for {len(given)} paths ({len(paths)} distinct)")
    if not paths:
        raise MissingDataError(f"{root}: no images to embed")
    _check_exist(root, paths)
    m = load_model(model, device=device, preprocess=preprocess)
    uses = bool(getattr(m, "uses_landmarks", False))
    if not uses:
        landmarks = landmarks_sha256 = None
    meta = {"model_spec": m.spec, "model_sha256": m.file_sha256, "preprocess": m.preprocess.key(),
            "flip": str(bool(flip)), "data_root": str(root)}
    if cache_dir is None:
        feats, flips = _run_extraction(m, root, paths, batch_size, flip, workers, quiet, align, landmarks)
        meta.update(cache="off", cache_path="")
        return FeatureStore(features=feats, paths=paths, flip_features=flips, source=f"<extracted by {m.spec}>",
                            meta=meta)

    cache = EmbeddingCache(cache_dir, context_key(m, landmarks_sha256), flip)
    keys = image_keys(root, paths, align, landmarks)
    found, feats, flips = cache.lookup(keys)
    todo = np.flatnonzero(~found)
    if todo.size:
        sub = [paths[i] for i in todo]
        f, g = _run_extraction(m, root, sub, batch_size, flip, workers, quiet,
                               None if align is None else align[todo], landmarks)
        if feats is not None and feats.shape[1] != f.shape[1]:  # cached entries of another width: not served
            todo = np.arange(len(paths))
            f, g = _run_extraction(m, root, paths, batch_size, flip, workers, quiet, align, landmarks)
            feats = None
        cache.store([keys[i] for i in todo], f, g)
        if feats is None:
            feats = np.zeros((len(paths), f.shape[1]), np.float32)
            flips = np.zeros_like(feats) if flip else None
        feats[todo] = f
        if flip:
            flips[todo] = g
    state = "hit" if todo.size == 0 else ("miss" if todo.size == len(paths) else "partial")
    meta.update(cache=state, cache_path=str(cache.dir), cache_hits=str(len(paths) - todo.size),
                cache_context=cache.context)
    return FeatureStore(features=feats, paths=paths, flip_features=flips if flip else None,
                        source=str(cache.dir), meta=meta)


def _run_extraction(m, root: Path, paths: list[str], batch_size: int, flip: bool, workers, quiet: bool,
                    align=None, landmarks=None):
    from torch.utils.data import DataLoader

    if workers is None:
        workers = usable_cpus(4)
    uses = bool(getattr(m, "uses_landmarks", False))
    ds = _ImageDataset(root, paths, m.preprocess, align, landmarks)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=_collate,
                        persistent_workers=False, prefetch_factor=2 if workers > 0 else None,
                        worker_init_fn=worker_init() if workers > 0 else None)  # workers end with this process
    n = len(paths)
    feats = flips = None
    with progress(total=n, quiet=quiet, unit="img", desc=f"embedding ({m.kind})") as bar:
        for items in loader:
            errors = [e for _, _, _, e in items if e is not None]
            if errors:
                raise FormatError(errors[0] + (f" (and {len(errors) - 1} more in this batch)" if len(errors) > 1 else ""))
            idx = np.asarray([i for i, _, _, _ in items])
            x = np.stack([im for _, im, _, _ in items])
            lm = np.stack([mark for _, _, mark, _ in items]) if uses and items[0][2] is not None else None
            f, g = _embed_batch(m, x, flip, lm)
            if feats is None:
                feats = np.empty((n, f.shape[1]), np.float32)
                flips = np.empty((n, f.shape[1]), np.float32) if flip else None
            feats[idx] = f
            if flip:
                flips[idx] = g
            bar.update(len(items))
    return feats, flips


def landmarks_source(opts, data_root: Path | None) -> tuple[dict | None, dict]:
    """({path: 5×2} or None, record entry) from --landmarks, else <data-root>/landmarks.txt when present."""
    from arface_repro.data.face_datasets import read_landmarks_file  # imports torch: only for a landmarks file

    path = getattr(opts, "landmarks", None)
    if path:
        if not Path(path).is_file():
            raise MissingDataError(f"{path}: landmarks file not found")
        what = "--landmarks"
    elif data_root is not None and (data_root / "landmarks.txt").is_file():
        path, what = data_root / "landmarks.txt", "<data-root>/landmarks.txt"
    else:
        return None, {"source": "template", "note": "no landmarks file: the aligned template points"}
    return read_landmarks_file(path), {"source": what, "path": str(path), "sha256": sha256_file(path)}


def extract_for_protocol(proto, opts) -> FeatureStore:
    """Embed the images `proto.images()` asks for with `opts.model`; fills `proto.provenance`."""

    if opts.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {opts.batch_size}")
    req = proto.images()
    if req.arrays is None:
        files = ", ".join(sorted(set(proto.files.values()))) or f"--data-root {req.root}"
        check_inside_root(req.paths, f"{proto.name} {req.what} listed in {files}")
    device = None if opts.device in (None, "auto") else opts.device
    # opts.model is the --model of the command line (DATA.yaml specs are checked by paper.run_missing before
    # they reach it), so a torchscript: spec there is the user's own
    m = load_model(opts.model, device=device, preprocess=opts.preprocess, trust_torchscript=True)
    flip = proto.wants_flip()
    uses = bool(getattr(m, "uses_landmarks", False))
    lm_info = {"source": "unused", "note": "the model does not take landmarks"}
    if req.arrays is not None:
        feats, flips = embed_arrays(m, req.arrays, batch_size=opts.batch_size, flip=flip, quiet=opts.quiet)
        store = FeatureStore(feats, req.paths, flips, source=f"<{req.what} embedded by {m.spec}>")
        if uses:
            lm_info = {"source": "template", "note": "in-memory aligned images: the template points"}
        cache = "off"
    else:
        lm, lm_sha = None, None
        if uses:
            if req.align is not None:
                lm_info = {"source": "alignment", "note": f"the 5 points of {req.what}, moved by the alignment warp"}
            else:
                lm, lm_info = landmarks_source(opts, proto.data_root)
                lm_sha = lm_info.get("sha256")
        store = extract_features(m, req.root, req.paths, batch_size=opts.batch_size, flip=flip, workers=opts.workers,
                                 cache_dir=None if opts.cache_dir == "none" else opts.cache_dir, quiet=opts.quiet,
                                 align=req.align, landmarks=lm, landmarks_sha256=lm_sha)
        cache = store.meta.get("cache")
    pv = proto.provenance
    pv.model, pv.model_info, pv.features = opts.model, m.identity(), None

    pv.reported = reported_results(m)
    pv.landmarks = lm_info
    pv.extraction = {"images": len(store), "flip_pass": bool(flip), "aligned": req.align is not None, "cache": cache}
    return store
