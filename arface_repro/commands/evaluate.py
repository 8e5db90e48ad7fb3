"""`arface evaluate`: run a protocol from a feature store (or a model) and write a result record."""

from __future__ import annotations

import argparse
import sys

from arface_repro.eval.run import PROTOCOLS

HELP = """Evaluate embeddings on a standard protocol and write a JSON result record.

examples:
  arface evaluate --protocol lfw --features lfw.npz --pairs pairs.txt
  arface evaluate --protocol blufr --features lfw.npz --config blufr_lfw_config.mat
  arface evaluate --protocol lfw --model onnx:MobileFaceNet.onnx --data-root lfw/aligned-112x96 \\
      --pairs lfw/pairs.txt --no-flip
"""


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate features or a model on a protocol", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", required=True, choices=PROTOCOLS)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--features", help="feature store .npz (features, paths[, flip_features])")
    src.add_argument("--model", help="model spec, e.g. onnx:PATH, torch:iresnet50:PATH, torchscript:PATH, tflite:PATH")
    p.add_argument("--data-root", help="dataset root (images for --model; default pair file location)")
    p.add_argument("--pairs", help="pair list (pairs.txt, pairs_CALFW.txt, a .bin, the CFP root ...)")
    p.add_argument("--config", help="BLUFR config .mat")
    p.add_argument("--rule", choices=("insightface", "lfw-official"), help="pair-protocol reporting rule (default insightface)")
    p.add_argument("--flip", choices=("add", "concat", "none"), default="add",
                   help="how flip features combine with the originals (default add, insightface's rule)")
    p.add_argument("--no-flip", action="store_true", help="no flip test (same as --flip none; --model skips the flipped pass)")
    p.add_argument("--trials", help="BLUFR trials to run, 1-based, comma-separated (default all 10)")
    p.add_argument("--batch-size", type=int, default=64, help="--model: images per forward pass")
    p.add_argument("--workers", type=int, default=2, help="--model: image-reading workers")
    p.add_argument("--cache-dir", default=".cache/embeddings",
                   help="--model: feature cache folder (default .cache/embeddings; 'none' disables it)")
    p.add_argument("--save-features", help="--model: also write the extracted feature store here")
    p.add_argument("--out", help="record path (default results/runs/<protocol>-<model>-<time>.json)")
    p.add_argument("--runs-dir", default="results/runs", help="folder for records when --out is not given")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _needed_paths(args) -> list[str]:
    """Images a protocol needs, for extraction with --model."""
    if args.protocol == "blufr":
        from arface_repro.errors import ConfigError
        from arface_repro.eval.image_list import list_images
        from arface_repro.io.blufr_config import load_blufr_config

        if not args.config:
            raise ConfigError("blufr: --config is required")
        names = set(load_blufr_config(args.config).image_list)
        return [p for p in list_images(args.data_root) if p.rsplit("/", 1)[-1] in names]
    from arface_repro.eval.pair_protocols import load_pair_protocol

    return load_pair_protocol(args.protocol, args.pairs, args.data_root).unique_paths()


def _embed_bin(args, flip: str):
    """An insightface .bin set holds its images: decode them and embed them in memory."""
    from arface_repro.errors import ConfigError
    from arface_repro.eval.embed import embed_arrays
    from arface_repro.io.feature_store import FeatureStore
    from arface_repro.io.insightface_bin import decode_bin_images

    if not args.pairs:
        raise ConfigError("bin: --pairs SET.bin is required")
    names, images = decode_bin_images(args.pairs)
    feats, flips = embed_arrays(args.model, images, batch_size=args.batch_size, flip=flip != "none", quiet=args.quiet)
    return FeatureStore(feats, names, flips, source=args.pairs)


def run(args) -> int:
    from arface_repro.errors import ConfigError
    from arface_repro.eval.run import evaluate_store
    from arface_repro.io.feature_store import load_feature_store
    from arface_repro.io.records import write_record

    flip = "none" if args.no_flip else args.flip
    trials = None
    if args.trials:
        try:
            trials = [int(t) - 1 for t in args.trials.split(",")]
        except ValueError:
            raise ConfigError(f"--trials must be comma-separated integers, got {args.trials!r}") from None
    if args.features:
        store, features_path, model = load_feature_store(args.features), args.features, None
    elif args.protocol == "bin":
        store, features_path, model = _embed_bin(args, flip), None, args.model
    else:
        if not args.data_root:
            raise ConfigError("--model needs --data-root (the folder the protocol's image paths are relative to)")
        from arface_repro.eval.embed import extract_features

        store = extract_features(args.model, args.data_root, _needed_paths(args), batch_size=args.batch_size,
                                 flip=flip != "none", workers=args.workers,
                                 cache_dir=None if args.cache_dir == "none" else args.cache_dir,
                                 quiet=args.quiet)
        features_path, model = None, args.model
        if args.save_features:
            from arface_repro.io.feature_store import save_feature_store

            save_feature_store(args.save_features, store.features, store.paths, store.flip_features)
            features_path = args.save_features
    progress = None
    if args.protocol == "blufr" and not args.quiet:
        def progress(t):
            print(f"  BLUFR trial {t + 1} done", file=sys.stderr)
    record = evaluate_store(args.protocol, store, pairs=args.pairs, config=args.config, data_root=args.data_root,
                            rule=args.rule, flip=flip, trials=trials, model=model, features_path=features_path,
                            progress=progress)
    path = write_record(record, args.out, args.runs_dir)
    print(format_metrics(record))
    print(f"record: {path}")
    return 0


def format_metrics(record: dict) -> str:
    """A short aligned table of a record's headline metrics."""
    lines = [f"protocol {record['protocol']}  rule {record['rule']}  model {record.get('model') or record['inputs'].get('features', {}).get('path', '-')}"]
    width = max(len(k) for k in record["metrics"])
    for k, v in record["metrics"].items():
        lines.append(f"  {k:<{width}}  {v:8.4f}" if isinstance(v, (int, float)) else f"  {k:<{width}}  {'n/a':>8}")
    return "\n".join(lines)
