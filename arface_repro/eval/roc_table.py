"""TAR@FAR tables and the compact ROC curve of many scores, without arrays as long as the scores beyond the sort.

The same numbers as applying `eval.roc.tar_at_far_from_roc` and `eval.roc.downsample_curve` to the exact
`sklearn.metrics.roc_curve` (the 'nearest' rule and the curve on sklearn's drop_intermediate curve, the
'strict' rule on the full curve), computed from one value sort of the impostor scores (`bucket_sort`, on
the usable CPUs) and of the few genuine scores:

* the kept points of sklearn's drop_intermediate curve come from one compiled walk over both sorted arrays
  (`roc_merge.kept_roc_counts`); their rates are the same float64 divisions (count / total) as sklearn's;
* the 'strict' rule reads one point of the full curve, found from the sorted arrays alone
  (`roc_merge.strict_counts`), instead of the full-length fpr/tpr arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from arface_repro.errors import FormatError
from arface_repro.eval.bucket_sort import sort_bucketed
from arface_repro.eval.roc import RULES, downsample_curve, tar_at_far_from_roc
from arface_repro.eval.roc_merge import kept_roc_counts, split_scores, strict_counts


def sorted_split(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ascending impostor scores, ascending genuine scores) in the scores' float dtype (other dtypes: float64);
    refuses mismatched lengths, non-finite scores, and a side without scores."""
    scores = np.asarray(scores).ravel()
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    labels = np.asarray(labels).ravel()
    if labels.shape != scores.shape:
        raise FormatError(f"{labels.size} labels for {scores.size} scores")
    imp, gen, finite = split_scores(scores, labels if labels.dtype == np.bool_ else labels != 0)
    if not finite:
        raise FormatError("scores contain NaN or inf")
    if imp.size == 0 or gen.size == 0:
        raise FormatError("a ROC needs both genuine and impostor scores")
    return sort_bucketed(imp), np.sort(gen)


def roc_table(scores: np.ndarray, labels: np.ndarray, fars: Sequence[float], rules: Sequence[str] = RULES,
              max_points: int = 2000) -> tuple[dict, dict | None]:
    """({rule: {far: TAR}}, ROC curve downsampled to `max_points` or None when max_points is 0)."""
    for rule in rules:
        if rule not in RULES:
            raise ValueError(f"unknown TAR@FAR rule {rule!r}; expected one of {RULES}")
    imp, gen = sorted_split(scores, labels)
    n_imp, n_gen = float(imp.size), float(gen.size)
    fars = [float(f) for f in fars]
    kept = None
    if "nearest" in rules or max_points:
        fps, tps = kept_roc_counts(imp, gen)
        kept = (fps.astype(np.float64) / n_imp, tps.astype(np.float64) / n_gen)
    out = {}
    for rule in rules:
        if rule == "nearest":
            out[rule] = {float(k): float(v) for k, v in tar_at_far_from_roc(*kept, fars, rule).items()}
        else:
            out[rule] = {far: 0.0 if t is None else float(np.float64(t) / n_gen)
                         for far, t in zip(fars, strict_counts(imp, gen, fars))}
    curve = downsample_curve(*kept, max_points) if max_points else None
    return out, curve
