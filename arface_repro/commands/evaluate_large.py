"""`arface evaluate-large`: IJB-B/C (1:1, 1:N), MegaFace, Trillion-Pairs, YTF and RMFRD from features.

Every protocol works in memory-bounded chunks (`--max-memory-gb`), uses CUDA through torch when present
(`--device`), and shards over processes under `torchrun` (each rank scores a share of the blocks; the
result equals a single-process run). Only rank 0 writes the record.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

PROTOCOLS = ("ijbb", "ijbc", "ijbb-1n", "ijbc-1n", "megaface", "trillion", "ytf", "rmfrd")

HELP = """Evaluate features on a large-scale or video protocol and write a JSON result record.

examples:
  arface evaluate-large --protocol ijbc --features ijbc.npz --meta-dir IJBC/meta
  arface evaluate-large --protocol ijbc-1n --features ijbc.npz --meta-dir IJBC/meta --rule-1n open-set
  arface evaluate-large --protocol megaface --features facescrub.npz --distractor-features megaface.npz \\
      --facescrub-list facescrub_features_list.json --megaface-list megaface_features_list.json_1000000_1
  arface evaluate-large --protocol megaface --facescrub-dir feats/facescrub --megaface-dir feats/megaface \\
      --algo r100 --facescrub-list ... --megaface-list ...          (devkit .bin feature files)
  arface evaluate-large --protocol trillion --probe-features testdata.bin --probe-labels labels.txt \\
      --distractor-features distractors.bin
  arface evaluate-large --protocol ytf --features ytf_frames.npz --pairs splits.txt --pooling mean
  arface evaluate-large --protocol rmfrd --features rmfrd.npz
  torchrun --nproc_per_node 4 -m arface_repro.cli evaluate-large --protocol megaface ...   (sharded)
"""


def register(sub) -> None:
    p = sub.add_parser("evaluate-large", help="IJB-B/C, MegaFace, Trillion-Pairs, YTF, RMFRD from features",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", required=True, choices=PROTOCOLS)
    p.add_argument("--features", help="feature store .npz (IJB images, FaceScrub probes, YTF frames, RMFRD images)")
    p.add_argument("--model", help="model label stored in the record (features are precomputed)")
    g = p.add_argument_group("IJB-B / IJB-C")
    g.add_argument("--meta-dir", help="folder with <set>_face_tid_mid.txt, _template_pair_label.txt, _name_5pts_score.txt, _1N_*.csv")
    g.add_argument("--flip", choices=("add", "concat", "none"), default="add", help="combine image and flip features (default add)")
    g.add_argument("--image-norm", action="store_true", help="L2-normalise each image before pooling (default off)")
    g.add_argument("--no-faceness", action="store_true", help="do not weight images by their faceness score")
    g.add_argument("--rule", choices=("nearest", "strict"), default="nearest",
                   help="TAR@FAR rule for the headline metrics (both are stored; default nearest = insightface)")
    g.add_argument("--rule-1n", choices=("open-set", "insightface"), default="open-set", help="IJB 1:N rule (default open-set)")
    g.add_argument("--curve-points", type=int, default=2000, help="ROC points kept in the record (0 = none)")
    g = p.add_argument_group("MegaFace")
    g.add_argument("--facescrub-list", help="facescrub_features_list.json")
    g.add_argument("--megaface-list", help="megaface_features_list.json_1000000_1 (distractor order)")
    g.add_argument("--set-lists", help="folder with megaface_features_list.json_<size>_1 (default: nested prefixes)")
    g.add_argument("--distractor-features", help="MegaFace: feature store .npz or Trillion-format .bin in list order; "
                                                 "Trillion: distractor .bin")
    g.add_argument("--facescrub-dir", help="devkit feature files of FaceScrub (<path>_<algo>.bin)")
    g.add_argument("--megaface-dir", help="devkit feature files of MegaFace distractors")
    g.add_argument("--algo", help="devkit algorithm name (file ending _<algo>.bin)")
    g.add_argument("--noise-rule", choices=("insightface", "exclude", "none"), default="insightface")
    g.add_argument("--facescrub-noises", help="facescrub_noises.txt (default: ../shared/data/megaface)")
    g.add_argument("--megaface-noises", help="megaface_noises.txt (default: ../shared/data/megaface)")
    g.add_argument("--sizes", default="10,100,1000,10000,100000,1000000", help="distractor set sizes")
    g = p.add_argument_group("Trillion-Pairs")
    g.add_argument("--probe-features", help="probe feature matrix .bin")
    g.add_argument("--probe-labels", help="identity per probe row ('id' or 'path id' lines)")
    g = p.add_argument_group("YTF / RMFRD")
    g.add_argument("--pairs", help="YTF splits.txt (default ../shared/data/ytf/splits.txt)")
    g.add_argument("--pooling", choices=("mean", "min-dist", "mean-dist", "max-dist"), default="mean")
    g = p.add_argument_group("scale")
    g.add_argument("--max-memory-gb", type=float, default=2.0, help="working memory for score blocks (default 2)")
    g.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N, torch-cpu")
    p.add_argument("--out", help="record path (default results/runs/<protocol>-<model>-<time>.json)")
    p.add_argument("--runs-dir", default="results/runs", help="folder for records when --out is not given")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    p.set_defaults(func=run)


def _init_distributed():
    """Join the torchrun group when WORLD_SIZE > 1 (NCCL on CUDA, gloo otherwise)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)


def _require(args, *names):
    from arface_repro.errors import ConfigError

    for n in names:
        if getattr(args, n.replace("-", "_")) in (None, ""):
            raise ConfigError(f"--protocol {args.protocol} needs --{n}")


def _shared(*parts):
    from arface_repro.shared_data import shared_path

    return shared_path(*parts)


def _matrix(path: str):
    """A feature matrix from a .npz store (features) or a Trillion-format .bin (memory-mapped)."""
    from arface_repro.io import trillion_pairs as tpio
    from arface_repro.io.feature_store import load_feature_store

    if str(path).endswith(".npz"):
        return load_feature_store(path)
    return tpio.read_features(path)


def run(args) -> int:
    from arface_repro.errors import ConfigError
    from arface_repro.eval.chunked import DistContext, make_backend
    from arface_repro.io.records import build_record, write_record

    _init_distributed()
    ctx = DistContext()
    backend = make_backend(args.device)
    mem = args.max_memory_gb
    proto = args.protocol
    inputs, extra, curves, per_fold = {}, {}, None, None

    if proto in ("ijbb", "ijbc", "ijbb-1n", "ijbc-1n"):
        from arface_repro.eval import ijb
        from arface_repro.io.feature_store import load_feature_store

        _require(args, "features", "meta-dir")
        dataset = proto[:4]
        opts = ijb.CombineOptions(flip=args.flip, normalize=args.image_norm, faceness=not args.no_faceness)
        store = load_feature_store(args.features)
        inputs["features"] = args.features
        if proto.endswith("-1n"):
            from arface_repro.eval import ijb_1n

            meta = ijb.load_ijb_meta(args.meta_dir, dataset, need_pairs=False)
            gal, probes, files = ijb_1n.load_1n_lists(args.meta_dir, dataset)
            res = ijb_1n.evaluate_1n_store(store, meta, gal, probes, rule=args.rule_1n, opts=opts, backend=backend,
                                           ctx=ctx, max_memory_gb=mem)
            metrics = {k: 100.0 * v for k, v in res["metrics"].items()}
            rule = f"ijb-1n-{args.rule_1n}"
            extra["per_gallery"] = {g: {k: (100.0 * v if not k.startswith("n_") else v) for k, v in d.items()}
                                    for g, d in res["per_gallery"].items()}
            inputs.update(meta.files)
            inputs.update(files)
        else:
            meta = ijb.load_ijb_meta(args.meta_dir, dataset)
            res = ijb.evaluate_11(store, meta, opts=opts, backend=backend, ctx=ctx, max_memory_gb=mem,
                                  max_curve_points=args.curve_points)
            metrics = ijb.metrics_from(res, args.rule)
            rule = f"ijb-{args.rule}-fpr"
            other = "strict" if args.rule == "nearest" else "nearest"
            extra["metrics_other_rule"] = {"rule": other, "metrics": ijb.metrics_from(res, other)}
            extra["counts"] = {"templates": res["n_templates"], "pairs": res["n_pairs"], "genuine": res["n_genuine"]}
            if res["roc"] is not None:
                curves = {"roc": res["roc"]}
            inputs.update(meta.files)
        extra["image_combination"] = opts.label
    elif proto == "megaface":
        metrics, rule = _megaface(args, backend, ctx, inputs, extra)
    elif proto == "trillion":
        from arface_repro.eval import trillion_pairs as tp
        from arface_repro.io import trillion_pairs as tpio

        _require(args, "probe-features", "probe-labels", "distractor-features")
        probes = tpio.read_features(args.probe_features)
        labels = tpio.read_labels(args.probe_labels, expected_rows=probes.shape[0])
        dis = tpio.read_features(args.distractor_features)
        res = tp.evaluate(probes, labels, dis, backend=backend, ctx=ctx, max_memory_gb=mem, progress=not args.quiet)
        metrics, rule = tp.metrics_from(res), "trillion-strict-topk/arface-id-rule-1"
        extra["counts"] = {k: v for k, v in res.items() if k.startswith("n_")}
        extra["thresholds"] = {"ver": res["ver_threshold"], "id": res["id_threshold"]}
        inputs.update(probe_features=args.probe_features, probe_labels=args.probe_labels,
                      distractor_features=args.distractor_features)
    elif proto == "ytf":
        from arface_repro.eval import ytf
        from arface_repro.io.feature_store import load_feature_store

        _require(args, "features")
        pairs_path = args.pairs or _shared("data", "ytf", "splits.txt")
        if pairs_path is None:
            raise ConfigError("ytf: --pairs splits.txt is required (../shared/data/ytf/splits.txt is absent)")
        store = load_feature_store(args.features)
        res = ytf.evaluate(store, ytf.read_splits(pairs_path), pooling=args.pooling,
                           flip=args.flip if store.flip_features is not None else "none")
        metrics = {"YTF": 100.0 * res["accuracy"]}
        rule = f"insightface-kfold/pooling={args.pooling}"
        per_fold = {"YTF": [100.0 * a for a in res["per_fold"]], "threshold": res["thresholds"]}
        extra["std"] = 100.0 * res["std"]
        inputs.update(features=args.features, pairs=str(pairs_path))
    elif proto == "rmfrd":
        from arface_repro.eval import rmfrd
        from arface_repro.io.feature_store import load_feature_store

        _require(args, "features")
        store = load_feature_store(args.features)
        res = rmfrd.evaluate(store, flip=args.flip if store.flip_features is not None else "none",
                             backend=backend, ctx=ctx, max_memory_gb=mem)
        metrics, rule = rmfrd.metrics_from(res), rmfrd.PROTOCOL_LABEL
        extra["counts"] = {k: v for k, v in res.items() if k.startswith("n_")}
        inputs["features"] = args.features
    else:  # pragma: no cover - argparse restricts choices
        raise ConfigError(f"unknown protocol {proto}")

    extra["world_size"] = ctx.world
    if ctx.rank != 0:
        return 0
    record = build_record(proto, rule, metrics, per_fold=per_fold, curves=curves, model=args.model,
                          inputs=inputs, extra=extra)
    path = write_record(record, args.out, args.runs_dir)
    if not args.quiet:
        for k, v in metrics.items():
            print(f"{k}: {v:.4f}")
        print(f"record: {path}")
    return 0


def _megaface(args, backend, ctx, inputs, extra):
    import numpy as np

    from arface_repro.errors import ConfigError, MissingDataError
    from arface_repro.eval import megaface as mf
    from arface_repro.io import megaface_devkit as dk
    from arface_repro.io.feature_store import load_feature_store

    _require(args, "facescrub-list", "megaface-list")
    fs_ids, fs_paths = dk.read_facescrub_list(args.facescrub_list)
    mf_paths = dk.read_megaface_list(args.megaface_list)
    inputs.update(facescrub_list=args.facescrub_list, megaface_list=args.megaface_list)
    if args.facescrub_dir:
        _require(args, "algo")
        probes = dk.read_feature_files(args.facescrub_dir, fs_paths, args.algo)
    else:
        _require(args, "features")
        store = load_feature_store(args.features)
        probes = store.features[store.indices(fs_paths, what="FaceScrub list")]
        inputs["features"] = args.features
    if args.megaface_dir:
        _require(args, "algo")
        dis = dk.read_feature_files(args.megaface_dir, mf_paths, args.algo)
    else:
        _require(args, "distractor-features")
        m = _matrix(args.distractor_features)
        if hasattr(m, "indices"):
            dis = m.features[m.indices(mf_paths, what="MegaFace list")]
        else:
            dis = m
            if dis.shape[0] != len(mf_paths):
                raise ConfigError(f"{args.distractor_features}: {dis.shape[0]} rows for {len(mf_paths)} list entries")
        inputs["distractor_features"] = args.distractor_features
    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    if args.set_lists:
        pos = {p: i for i, p in enumerate(mf_paths)}
        sets = {}
        for s in sizes:
            f = Path(args.set_lists) / f"megaface_features_list.json_{s}_1"
            lst = dk.read_megaface_list(f)
            try:
                sets[s] = np.sort(np.array([pos[p] for p in lst], np.int64))
            except KeyError as exc:
                raise MissingDataError(f"{f}: image {exc.args[0]} is not in {args.megaface_list}") from None
    else:
        sets = mf.default_sets(len(mf_paths), sizes)
    fs_noise = md_noise = None
    if args.noise_rule != "none":
        fsn = args.facescrub_noises or _shared("data", "megaface", "facescrub_noises.txt")
        mdn = args.megaface_noises or _shared("data", "megaface", "megaface_noises.txt")
        if fsn is None or mdn is None:
            raise ConfigError("--noise-rule needs --facescrub-noises and --megaface-noises")
        fs_noise = dk.noise_mask(fs_paths, dk.read_noise_list(fsn), by_basename=True)
        md_noise = dk.noise_mask(mf_paths, dk.read_noise_list(mdn), by_basename=False)
        inputs.update(facescrub_noises=str(fsn), megaface_noises=str(mdn))
        extra["noise_counts"] = {"facescrub": int(fs_noise.sum()), "megaface": int(md_noise.sum())}
    res = mf.evaluate(probes, fs_ids, dis, sets=sets, probe_noise=fs_noise, distractor_noise=md_noise,
                      noise_rule=args.noise_rule, backend=backend, ctx=ctx, max_memory_gb=args.max_memory_gb,
                      progress=not args.quiet)
    extra["cmc"] = {mf.size_key(s): [100.0 * v for v in c] for s, c in res["cmc"].items()}
    extra["counts"] = {k: v for k, v in res.items() if k.startswith("n_")}
    extra["set_sizes"] = res["set_sizes"]
    return mf.metrics_from(res), f"megaface-devkit-cmc/ver-strict/noise={args.noise_rule}"
