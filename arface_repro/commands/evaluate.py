"""`arface evaluate --protocol P`: every protocol, from a feature store or a checkpoint, to a result record.

The protocol decides its options, so this subcommand parses its own arguments: `--protocol P` first,
then the parser of P's class (common options + P's). Nothing here depends on which protocol it is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from arface_repro.errors import ConfigError
from arface_repro.utils import launcher_env
from arface_repro.utils.outputs import Output, check_outputs, spec_files

EXAMPLES = """examples:
  arface evaluate --protocol lfw --features lfw.npz --pairs lfw/pairs.txt
  arface evaluate --protocol lfw --model onnx:MobileFaceNet.onnx --data-root lfw/aligned-112x96 --pairs lfw/pairs.txt
  arface evaluate --protocol blufr --features lfw.npz --config blufr_lfw_config.mat
  arface evaluate --protocol ijbc --data-root IJB_release/IJBC --model onnx:r50.onnx
  arface evaluate --protocol ijbc --data-root IJB_release/IJBC --features ijbc.npz --label r50
  arface evaluate --protocol megaface --data-root megaface --features facescrub.npz --distractor-features d.bin
  torchrun --nproc_per_node 4 -m arface_repro.cli evaluate --protocol megaface ...   (sharded protocols)

`arface evaluate --protocol P --help` lists P's options."""


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate features or a checkpoint on any protocol (--protocol P)",
                       add_help=False, prefix_chars="\0")  # arguments are parsed by the protocol's own parser
    p.add_argument("argv", nargs="*")
    p.set_defaults(func=run)


def overview() -> str:
    """`arface evaluate --help`: the common usage and one line per protocol."""
    from arface_repro.eval.protocols import get_protocol, protocol_names

    names = protocol_names()
    width = max(len(n) for n in names)
    lines = ["usage: arface evaluate --protocol P (--features FILE | --model SPEC) [--data-root DIR] [options]", "",
             "Evaluate precomputed features or a checkpoint on a protocol and write a JSON result record.", "",
             "protocols:"]
    lines += [f"  {n:<{width}}  {get_protocol(n).summary}" for n in names]
    lines += ["", EXAMPLES]
    return "\n".join(lines)


def _protocol_of(argv: list[str]) -> str | None:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--protocol")
    known, _ = pre.parse_known_args(argv)
    return known.protocol


def _init_distributed(cls) -> None:
    """Join the torchrun group when WORLD_SIZE > 1 (NCCL on CUDA, gloo otherwise)."""

    if launcher_env.world_size() <= 1:
        return

    if not cls.shards:
        raise ConfigError(f"--protocol {cls.name} does not shard; run it in one process (WORLD_SIZE is "
                          f"{os.environ['WORLD_SIZE']})")
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(launcher_env.local_rank())
        dist.init_process_group(backend)


def run(args) -> int:
    from arface_repro.eval.protocols import get_protocol, protocol_names

    argv = list(args.argv)
    name = _protocol_of(argv)
    if name is None:
        if not argv or any(a in ("-h", "--help") for a in argv):
            print(overview())
            return 0
        raise ConfigError(f"--protocol is required; one of: {', '.join(protocol_names())}")
    cls = get_protocol(name)
    opts = cls.parser().parse_args(argv)
    if opts.model and opts.label:
        raise ConfigError("--label names precomputed features; with --model the record names the model spec")
    _init_distributed(cls)
    proto = cls(opts)
    check_evaluate_outputs(proto, opts)
    if opts.preprocess:  # checked now, not after the protocol's images are listed and the model loaded
        from arface_repro.models.preprocess import GENERIC

        GENERIC.with_overrides(opts.preprocess)
    proto.check_options()
    store = _features(proto, opts)
    proto.note_features(store)
    record = proto.evaluate(store)
    if proto.shards and proto.ctx.rank != 0:
        return 0
    from arface_repro.io.records import write_record

    path = write_record(record, opts.out, opts.runs_dir, arrays=proto.sidecar_arrays)
    print(format_metrics(record))
    print(f"record: {path}")
    return 0


# options whose values are output locations, or not paths at all
_NOT_INPUTS = {"out", "runs_dir", "save_features", "cache_dir", "data_root", "protocol", "label", "rule", "device",
               "preprocess", "flip", "model"}


def check_evaluate_outputs(proto, opts) -> None:
    """The record (and its scores sidecar), --save-features and --cache-dir, checked before any feature is read:
    a bad location, or an output that is one of the run's input files, is an error now, not after the work."""
    from pathlib import Path

    from arface_repro.io.records import SIDECAR_SUFFIX

    outs = []
    if opts.out:
        outs += [Output(opts.out, "--out"), Output(Path(opts.out).with_suffix(SIDECAR_SUFFIX), "--out (scores sidecar)")]
    else:
        outs.append(Output(opts.runs_dir, "--runs-dir", kind="dir"))
    if opts.save_features:
        if not opts.model:
            raise ConfigError("--save-features keeps the features a --model extraction computes; with --features "
                              "the store already exists")
        if not str(opts.save_features).endswith(".npz"):
            raise ConfigError(f"--save-features {opts.save_features}: a feature store is an .npz file; give a name "
                              f"ending in .npz")
        outs.append(Output(opts.save_features, "--save-features"))
    if opts.model and opts.cache_dir and opts.cache_dir != "none":
        outs.append(Output(opts.cache_dir, "--cache-dir", kind="dir"))
    inputs = [v for k, v in vars(opts).items() if k not in _NOT_INPUTS and isinstance(v, str) and v
              and Path(v).exists()]
    inputs += spec_files(opts.model)
    if proto.data_root is not None:  # the protocol's files under the data root (not the root as a whole)
        inputs += [proto.data_root / rel for rel in proto.spec.layout.values()
                   if (proto.data_root / rel).is_file()]
        if (proto.data_root / "landmarks.txt").is_file():
            inputs.append(proto.data_root / "landmarks.txt")
    check_outputs(outs, inputs)


def _features(proto, opts):
    """The protocol's features: extracted by --model, else read from --features (or the protocol's files)."""
    if not opts.model:
        return proto.read_features(opts.features)
    from arface_repro.eval.embed import extract_for_protocol

    store = extract_for_protocol(proto, opts)
    if opts.save_features:
        from arface_repro.io.feature_store import save_feature_store

        pv = proto.provenance  # the store names its model, so a later `--features` record can name it too
        info = pv.model_info or {}
        save_feature_store(opts.save_features, store.features, store.paths, store.flip_features,
                           model_spec=str(pv.model), model_sha256=str(info.get("sha256")),
                           preprocess=str(info.get("preprocess")), model_identity=json.dumps(info, sort_keys=True))
        proto.provenance.features = opts.save_features
    return store


def format_metrics(record: dict) -> str:
    """A short aligned table of a record's headline metrics."""
    src = record.get("model") or (record.get("inputs") or {}).get("features", {}).get("path", "-")
    lines = [f"protocol {record['protocol']}  rule {record['rule']}  model {src}"]
    width = max((len(k) for k in record["metrics"]), default=0)
    for k, v in record["metrics"].items():
        lines.append(f"  {k:<{width}}  {v:8.4f}" if isinstance(v, (int, float)) else f"  {k:<{width}}  {'n/a':>8}")
    for r in record.get("reported_by_authors") or []:
        lines.append(f"  reported by the checkpoint's authors ({r['preset']}): {r['benchmark']} {r['metric']} "
                     f"{r['value']} — {r.get('protocol', '')} [{r['source']}]")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run(argparse.Namespace(argv=sys.argv[1:])))
