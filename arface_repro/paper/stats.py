"""The paired tests of `eval.paired_tests` (re-exported for the tables) and the paper's verdict on an ordering."""

from __future__ import annotations

import numpy as np

from arface_repro.eval.paired_tests import (
    ALPHA,
    Bootstrap,
    McNemar,
    PairedT,
    fmt_p,
    mcnemar,
    mcnemar_min_p,
    min_significant_pairs,
    paired_bootstrap_tar,
    paired_t,
    parse_correct,
    tar_at_far,
)

__all__ = ["ALPHA", "Bootstrap", "McNemar", "PairedT", "fmt_p", "mcnemar", "mcnemar_min_p", "min_significant_pairs",
           "paired_bootstrap_tar", "paired_t", "parse_correct", "tar_at_far", "verdict"]


def verdict(paper_sign: int, test: PairedT, alpha: float = ALPHA) -> str:
    """Does a measured paired difference reproduce the paper's ordering (paper_sign = +1: row A above B)?

    robust: the mean has the paper's sign, every seed/trial agrees and the paired t-test gives p < alpha;
    not significant: the sign of the mean without that; 'reversed' likewise with the opposite sign."""
    if test.n == 0 or not np.isfinite(test.mean):
        return "no data"
    if paper_sign == 0:
        return "paper: tie"
    if test.mean == 0:
        return "tie (not reproduced)"
    same = np.sign(test.mean) == paper_sign
    robust = test.n >= 2 and test.agree == test.n and np.isfinite(test.p) and test.p < alpha
    if same:
        return "holds (robust)" if robust else "holds (not significant)"
    return "reversed (robust)" if robust else "reversed (not significant)"
