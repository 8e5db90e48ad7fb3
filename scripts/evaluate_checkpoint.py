#!/usr/bin/env python
"""Evaluate a checkpoint or a feature store on a protocol: a thin wrapper of `arface evaluate`.

    python scripts/evaluate_checkpoint.py --protocol lfw --model torch:iresnet50:backbone.pth \\
        --data-root lfw/aligned-112x112 --pairs lfw/pairs.txt
    python scripts/evaluate_checkpoint.py --protocol blufr --features lfw.npz --config blufr_lfw_config.mat

Same arguments as `arface evaluate` (passed through unchanged to `arface_repro.cli.main(["evaluate",
...])`; `--help` lists them); it prints the metrics table and writes a result record under results/runs/.
"""

from __future__ import annotations

import sys

from arface_repro.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["evaluate", *sys.argv[1:]]))
