#!/usr/bin/env python
"""`arface paper figures` (arface_repro/commands/paper.py): the ARFace paper's Figures 3-6 under results/figures/."""
from arface_repro.commands.paper import make_figures_main

if __name__ == "__main__":
    raise SystemExit(make_figures_main())
