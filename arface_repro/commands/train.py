"""`arface train CONFIG [key=value ...]`: train the Feature-Net (plain, baselines or ARFace) from a YAML config."""

from __future__ import annotations

import argparse

from arface_repro.utils import launcher_env


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a Feature-Net (plain / Random / Cutout / DropBlock / ARFace) from a YAML config",
        description="Train from a YAML config (see configs/). Extra arguments are key=value overrides with dotted "
        "keys, e.g. train.steps=100 method.num_layers=3 data.path=/data/casia. Under torchrun every process "
        "runs this command (gloo on CPU, NCCL on GPU); train.batch_size is the global batch.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="YAML config file")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides (values parsed as YAML)")
    p.add_argument("--out-dir", help="output folder (checkpoints, metrics.jsonl); default runs/<name>")
    p.add_argument("--resume", nargs="?", const="auto", help="resume from a checkpoint (default: OUT_DIR/checkpoint_last.pt)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import json

    # the trainer imports torch at module level: loaded when training runs, not at `arface --help`
    from arface_repro.train.loop import train

    ov = list(args.overrides)
    if args.out_dir:
        ov.append(f"out_dir={args.out_dir}")
    if args.resume:
        ov.append(f"train.resume={args.resume}")
    if args.quiet:
        ov.append("train.quiet=true")
    res = train(args.config, ov)
    if launcher_env.rank() == 0:
        print(json.dumps({"out_dir": str(res.out_dir), "checkpoint": str(res.checkpoint) if res.checkpoint else None,
                          "metrics": res.metrics, "process_group": res.process_group}))
    return 0
