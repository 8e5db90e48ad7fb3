"""`python -m arface_repro` is the same as the `arface` command."""

from arface_repro.cli import main

raise SystemExit(main())
