"""How many CPUs this process may use (its affinity mask where the OS has one), for default thread counts."""

from __future__ import annotations

import os


def usable_cpus(limit: int | None = None) -> int:
    """CPUs this process may run on (at least 1), capped at `limit` when given."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = max(1, n)
    return min(n, limit) if limit else n
