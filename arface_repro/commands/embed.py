"""`arface embed --model SPEC --data-root DIR [--list FILE] --out F.npz`: images -> feature store.

Model specs: torch:ARCH:PATH, torchscript:PATH, onnx:PATH, tflite:PATH, arface:CKPT, opencv:PATH,
caffe:NET.prototxt:WEIGHTS.caffemodel, tfgraph:MODEL.pb, PRESET:PATH (see `arface list-models` and the README).
The store holds `features` = f(x) and, unless --no-flip, `flip_features` = f(mirrored x), both unnormalised.
Models that take 5 landmarks per image get them from --landmarks (default <data-root>/landmarks.txt, as
`arface align` writes it, when present), else the aligned template; the store's `landmarks` entry says which.
"""

from __future__ import annotations

import argparse
import json

from arface_repro.errors import ConfigError
from arface_repro.eval.embed import extract_features, landmarks_source
from arface_repro.eval.image_list import read_image_list
from arface_repro.io.feature_store import save_feature_store
from arface_repro.models.backends import load_model
from arface_repro.models.preprocess import GENERIC
from arface_repro.utils.argtypes import batch_size, int_range
from arface_repro.utils.outputs import Output, check_outputs, spec_files


def register(sub) -> None:
    p = sub.add_parser("embed", help="extract embeddings of a folder of images into a feature store (.npz)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model spec: torch:ARCH:PATH | torchscript:PATH | onnx:PATH | tflite:PATH | "
                   "arface:CKPT | opencv:PATH | caffe:NET:WEIGHTS | tfgraph:MODEL.pb | PRESET:PATH")
    p.add_argument("--data-root", required=True, help="folder the image paths are relative to")
    p.add_argument("--list", help="text file of relative image paths, one per line (default: every image under the root)")
    p.add_argument("--out", required=True, help="output feature store .npz")
    p.add_argument("--no-flip", action="store_true", help="do not also embed the horizontally flipped images")
    p.add_argument("--batch-size", type=batch_size, default=64)
    p.add_argument("--workers", type=int_range(0, 256), default=None, help="image reader processes (default min(4, CPUs))")
    p.add_argument("--device", default=None, help="torch device (default cuda when available, else cpu)")
    p.add_argument("--preprocess", default=None,
                   help="override preprocessing, e.g. 'color=BGR,std=127.5,fit=resize' (fields color, mean, std, size, fit)")
    p.add_argument("--cache-dir", default=None, help="per-image embedding cache shared with `arface evaluate` (keyed by model, preprocessing, code and image content)")
    p.add_argument("--landmarks", help="5-point landmarks per image (relpath x1 y1 ... x5 y5) for models that use them "
                                       "(default <data-root>/landmarks.txt when present)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def check_embed_outputs(args) -> None:
    """--out (a .npz) and --cache-dir, checked before anything is read; no input may be written over."""
    from pathlib import Path

    if not str(args.out).endswith(".npz"):
        raise ConfigError(f"--out {args.out}: a feature store is an .npz file; give a name ending in .npz")
    outs = [Output(args.out, "--out")]
    if args.cache_dir:
        outs.append(Output(args.cache_dir, "--cache-dir", kind="dir"))
    default_lm = Path(args.data_root) / "landmarks.txt"
    check_outputs(outs, [args.list, args.landmarks, default_lm if default_lm.is_file() else None,
                         *spec_files(args.model)])


def run(args) -> int:
    from pathlib import Path

    check_embed_outputs(args)
    if args.preprocess:  # its fields are checked now, not after the model is loaded
        GENERIC.with_overrides(args.preprocess)
    paths = read_image_list(args.list) if args.list else None
    model = load_model(args.model, device=args.device, preprocess=args.preprocess,
                       trust_torchscript=True)  # --model is what the user typed
    lm, lm_info = None, {"source": "unused"}
    if getattr(model, "uses_landmarks", False):
        lm, lm_info = landmarks_source(args, Path(args.data_root))
    store = extract_features(model, args.data_root, paths, batch_size=args.batch_size, flip=not args.no_flip,
                             workers=args.workers, cache_dir=args.cache_dir, quiet=args.quiet, landmarks=lm,
                             landmarks_sha256=lm_info.get("sha256"))
    meta = {k: str(v) for k, v in store.meta.items() if k in ("model_spec", "model_sha256", "preprocess", "flip")}
    meta["landmarks"] = lm_info["source"] + (f" {lm_info['path']} sha256 {lm_info['sha256']}" if "path" in lm_info else "")
    meta["model_identity"] = json.dumps(model.identity(), sort_keys=True)  # what `evaluate --features` records
    save_feature_store(args.out, store.features, store.paths, store.flip_features, **meta)
    if not args.quiet:
        print(f"wrote {args.out}: {len(store)} × {store.dim} features"
              + (" (+ flip_features)" if store.flip_features is not None else "") + f", cache {store.meta.get('cache')}")
    return 0
