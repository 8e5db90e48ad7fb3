#!/usr/bin/env python
"""Plot ROC curves of result records into one figure: a thin wrapper of `arface plot-roc`.

    python scripts/plot_roc.py RECORD.json [RECORD.json ...] -o FIG.png [--label NAME ...] [--title T] [--xmin 1e-6]

Same arguments as `arface plot-roc` (they are passed through unchanged to
`arface_repro.cli.main(["plot-roc", ...])`); each record needs `curves.roc` (fpr/tpr), as the IJB-B/C
and pair-protocol records written by `arface evaluate` have.
"""

from __future__ import annotations

import sys

from arface_repro.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["plot-roc", *sys.argv[1:]]))
