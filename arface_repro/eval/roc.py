"""The TAR@FAR rules and the curve downsampling, applied to a ROC already computed (higher score = more similar).

The ROC itself has one implementation, `arface_repro.eval.roc_table` (sklearn's `roc_curve` numbers, from one
sort, without full-length arrays); every protocol that reports TAR@FAR or a curve (IJB, pair sets) goes
through it, and it applies the rules of this module.

Two reporting rules exist in the field and both are offered, labelled by name in every record:

* ``nearest`` (default; insightface's IJB tables): ``sklearn.metrics.roc_curve`` with its default
  ``drop_intermediate=True``; both arrays flipped; for each target FAR, the TPR of the ROC point whose
  FPR is nearest to the target (smallest |fpr - far|, first such point in the flipped order); no interpolation.
* ``strict``: the largest TPR among all ROC points whose FPR does not exceed the target, i.e. the TAR at the
  most permissive threshold that keeps the false-accept rate at or below the target.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

RULES = ("nearest", "strict")


def tar_at_far_from_roc(fpr: np.ndarray, tpr: np.ndarray, fars: Iterable[float], rule: str = "nearest") -> dict[float, float]:
    """Apply a rule to an already computed ROC (fpr ascending as sklearn returns it)."""
    if rule not in RULES:
        raise ValueError(f"unknown TAR@FAR rule {rule!r}; expected one of {RULES}")
    fpr = np.asarray(fpr, dtype=np.float64)
    tpr = np.asarray(tpr, dtype=np.float64)
    out: dict[float, float] = {}
    if rule == "nearest":
        f_fl, t_fl = fpr[::-1], tpr[::-1]
        for far in fars:
            out[float(far)] = float(t_fl[int(np.argmin(np.abs(f_fl - far)))])
    else:
        for far in fars:
            n_ok = int(np.searchsorted(fpr, far, side="right"))   # fpr ascending: the points with FPR <= far lead
            out[float(far)] = float(tpr[:n_ok].max()) if n_ok else 0.0
    return out


def downsample_curve(fpr: Sequence[float], tpr: Sequence[float], max_points: int = 2000) -> dict[str, list[float]]:
    """Keep at most `max_points` ROC points, spaced evenly in log-FPR, always keeping both ends."""
    fpr = np.asarray(fpr, dtype=np.float64)
    tpr = np.asarray(tpr, dtype=np.float64)
    if fpr.size > max_points:
        pos = fpr > 0
        lo = np.log10(fpr[pos].min()) if pos.any() else -12.0
        grid = np.logspace(lo, 0.0, max_points - 2)
        idx = np.unique(np.concatenate([[0, fpr.size - 1], np.searchsorted(fpr, grid, side="right") - 1]))
        idx = idx[idx >= 0]
        fpr, tpr = fpr[idx], tpr[idx]
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
