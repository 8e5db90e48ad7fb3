"""The line every benchmark (scripts/bench_*.py) prints first: the machine, its load at start, and the numeric
kernels in use."""

from __future__ import annotations

import os

import numpy as np


def machine_line() -> str:
    """CPUs, the load average at start, numpy and the BLAS kernel in use (threadpoolctl), numba's threads."""
    from threadpoolctl import threadpool_info

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    blas = "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')} x{i.get('num_threads')}"
                     for i in threadpool_info() if i.get("user_api") == "blas") or "none found"
    try:
        import numba

        jit = f"numba {numba.__version__} x{numba.get_num_threads()}"
    except ImportError:
        jit = "numba absent"
    return (f"{os.cpu_count()} CPUs, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min) at start; "
            f"numpy {np.__version__}, BLAS {blas}; {jit}")
