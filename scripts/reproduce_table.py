#!/usr/bin/env python
"""`arface paper table X` (arface_repro/commands/paper.py): a table of the ARFace paper beside the measured values."""
from arface_repro.commands.paper import reproduce_table_main

if __name__ == "__main__":
    raise SystemExit(reproduce_table_main())
