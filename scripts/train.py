#!/usr/bin/env python
"""Train from a YAML config: `python scripts/train.py CONFIG [key=value ...]` (same as `arface train`).

Multi-process: `torchrun --nproc_per_node=2 scripts/train.py configs/syn_arface_l3.yaml`.
"""

import sys

from arface_repro.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", *sys.argv[1:]]))
