"""The one spelling of rate-valued metric keys: `TAR@FAR=1e-3`, `TPIR@FPIR=1e-2`, `Ver@FPR=1e-9`, `Id@FPR=1e-3`.

A rate that is a power of ten is written `1e<exponent>` (1e-3, 1e-6); any other rate as Python's `:g`
(0.05, 0.3), so a key never depends on which protocol built it. BLUFR's `VR@FAR=0.1%` and MegaFace's
`Id@1e6` (a distractor count) are their papers' own spellings and stay theirs.
"""

from __future__ import annotations

import math


def rate_text(rate: float) -> str:
    """1e-3 -> '1e-3', 1e-6 -> '1e-6', 0.05 -> '0.05'."""
    rate = float(rate)
    if rate > 0 and math.isfinite(rate):
        e = round(math.log10(rate))
        if math.isclose(10.0 ** e, rate, rel_tol=1e-9):
            return f"1e{e}"
    return f"{rate:g}"


def rate_key(metric: str, rate: float) -> str:
    """'TAR@FAR', 1e-3 -> 'TAR@FAR=1e-3'."""
    return f"{metric}={rate_text(rate)}"
