#!/usr/bin/env python
"""Synthetic inputs shaped like IJB-B/C, MegaFace, Trillion-Pairs, YTF, RMFRD (arface_repro/eval/large_scale_synthetic.py)."""
from arface_repro.eval.large_scale_synthetic import main

if __name__ == "__main__":
    raise SystemExit(main())
