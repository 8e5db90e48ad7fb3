"""`arface evaluate --protocol P`: every protocol, from a feature store or a checkpoint, to a result record.

The protocol decides its options, so this subcommand parses its own arguments: `--protocol P` first,
then the parser of P's class (common options + P's). Nothing here depends on which protocol it is.
"""

from __future__ import annotations

import argparse
import os
import sys

from arface_repro.errors import ConfigError
from arface_repro.eval.protocols import get_protocol, protocol_names
from arface_repro.eval.run import format_metrics, run_evaluation
from arface_repro.utils import launcher_env

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
    argv = list(args.argv)
    name = _protocol_of(argv)
    if name is None:
        if not argv or any(a in ("-h", "--help") for a in argv):
            print(overview())
            return 0
        raise ConfigError(f"--protocol is required; one of: {', '.join(protocol_names())}")
    cls = get_protocol(name)
    opts = cls.parser().parse_args(argv)
    _init_distributed(cls)
    record, path = run_evaluation(cls(opts))
    if path is None:   # a torchrun rank other than 0
        return 0
    print(format_metrics(record))
    print(f"record: {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run(argparse.Namespace(argv=sys.argv[1:])))
