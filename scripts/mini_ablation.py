#!/usr/bin/env python
"""The LFW-scale ablation: Table X's (or XI's) MobileFaceNet-block rows trained with the small backbone on
BLUFR trial 1's training identities of LFW and evaluated on what that training leaves unseen (LFW View-2
pairs of untrained people, BLUFR trial 1). A thin entry point over `arface paper table N --no-synthetic --lfw-scale`.

    python scripts/mini_ablation.py                    # Table X rows, seeds 0,1,2, LFW + BLUFR from ../shared
    python scripts/mini_ablation.py --table XI --seeds 0 --steps 200
    python scripts/mini_ablation.py --data-root /data  # lfw/aligned-112x96, lfw/pairs.txt, blufr/blufr_lfw_config.mat
"""

from __future__ import annotations

import argparse

from arface_repro.commands.paper import reproduce_table_main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", default="X")
    ap.add_argument("--seeds")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--workers", type=int)
    ap.add_argument("--data-root")
    ap.add_argument("--runs-dir")
    args = ap.parse_args(argv)
    forward = [args.table, "--no-synthetic", "--lfw-scale"]
    for flag, v in (("--seeds", args.seeds), ("--steps", args.steps), ("--workers", args.workers),
                    ("--data-root", args.data_root), ("--runs-dir", args.runs_dir)):
        if v is not None:
            forward += [flag, str(v)]
    return reproduce_table_main(forward)


if __name__ == "__main__":
    raise SystemExit(main())
