"""How many CPUs this process may use (its affinity mask where the OS has one), for default thread counts, and
the size of a core's L2 cache, for kernels that tile their work to it."""

from __future__ import annotations

import functools
import os
from pathlib import Path

SYSFS_CPU0_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")


def usable_cpus(limit: int | None = None) -> int:
    """CPUs this process may run on (at least 1), capped at `limit` when given."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = max(1, n)
    return min(n, limit) if limit else n


@functools.cache
def l2_cache_bytes(default: int = 1 << 20, root: Path = SYSFS_CPU0_CACHE) -> int:
    """One core's L2 cache in bytes, from Linux sysfs (`index*/level` == 2, `index*/size` like "1024K");
    `default` where it cannot be read (another OS, a container hiding sysfs, an unexpected format)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    for index in sorted(root.glob("index*")) if root.is_dir() else []:
        try:
            if (index / "level").read_text().strip() != "2":
                continue
            text = (index / "size").read_text().strip().upper()
        except OSError:
            continue
        try:
            value = int(text[:-1]) * units[text[-1]] if text[-1:] in units else int(text)
        except ValueError:
            return default
        return value if value > 0 else default
    return default
