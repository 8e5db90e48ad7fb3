"""Pair verification on a feature store: LFW, CALFW, CPLFW, CFP-FP/FF, AgeDB-30, insightface .bin sets, and
any other `kind: pairs` definition (protocols/<name>.yaml: its pair-list format and fold rule).

One interface: `load_pair_protocol(name, ...)` returns a `PairList`; `evaluate_pairs(store, pairs, rule)`
returns metrics (percent, keyed by the paper's column headers), per-fold values and an ROC curve.

Reporting rules (named in every record):
* ``insightface`` (default; what arcface_torch reports): embedding = L2-normalise(f(x) + f(flip(x))),
  squared L2 distance, thresholds arange(0, 4, 0.01), per fold the first best threshold on the other 9
  folds, "same" iff distance < threshold; Acc = mean, Acc.std = np.std (ddof 0) of fold accuracies.
* ``lfw-official``: the same per-fold procedure; the ± figure is the standard error (std ddof 1 / √k),
  as the LFW benchmark page asks.
Both rules report all of Acc, Acc.std and Acc.se; the rule says which ± the headline uses.
TAR@FAR=1e-3 uses the ``kfold-strict`` rule of `kfold.kfold_accuracy` (insightface's interp1d version
crashes on SciPy >= 1.9 and interpolates a coarse grid).

Audit against insightface's `verification.py` (`test`, `evaluate`, `calculate_roc`): the arithmetic is the
reference's — f(x) + f(flip x) in float32, `sklearn.preprocessing.normalize` in float32 (here
`kfold.l2_normalize`, the same einsum and division), `np.sum(np.square(e1 - e2), 1)` in float32, the first
best of `arange(0, 4, 0.01)` on the training folds, `dist < threshold`. One difference belongs to NumPy:
the reference compares float32 distances with a float64 threshold element, which NumPy ≥ 2 does in
float64 and NumPy 1.x did after rounding the threshold to float32; the comparison here is float64, i.e.
insightface's numbers under NumPy ≥ 2. Nothing was changed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from arface_repro.errors import ConfigError
from arface_repro.eval.kfold import kfold_accuracy, l2_normalize, squared_l2
from arface_repro.eval.metric_keys import rate_key
from arface_repro.eval.pair_sets.formats import get_pair_format
from arface_repro.eval.protocols.spec import ProtocolSpec, load_spec
from arface_repro.io.feature_store import FeatureStore
from arface_repro.io.pairs import PairList, check_folds

RULES = ("insightface", "lfw-official")   # the rules `evaluate_pairs` implements; a definition offers some of them
TARGET_FAR = 1e-3
CURVE_POINTS = 2000   # points of the record's ROC curve (log-spaced in FPR, both ends kept)


def pair_spec(name: str) -> ProtocolSpec:
    """The definition of pair protocol `name` (`protocols/<name>.yaml`, `kind: pairs`)."""
    spec = load_spec(name)
    if spec.kind != "pairs":
        raise ConfigError(f"{spec.path}: {name} is a {spec.kind} protocol, not a pair protocol (kind: pairs)")
    return spec


def load_pair_protocol(name: str, pairs: str | os.PathLike | None = None,
                       data_root: str | os.PathLike | None = None, image_dir: str = "") -> PairList:
    """Parse the pair list of protocol `name` from `pairs` (or its layout's file under `data_root`) in the format
    its definition names, with the fold structure the definition requires (`folds`) checked."""
    spec = pair_spec(name)
    if pairs is None:
        if data_root is None or "pairs" not in spec.layout:
            raise ConfigError(f"{name}: --pairs {'FILE' if 'pairs' not in spec.layout else 'PATH'} is required"
                              + ("" if "pairs" not in spec.layout else " (or --data-root)"))
        pairs = Path(data_root) / spec.layout["pairs"]
    fmt = get_pair_format(spec.format, f"{spec.path}: format")
    pl = fmt.parse(pairs, spec.folds, image_dir)
    folds = spec.folds
    if folds is not None:
        check_folds(pl.fold, pl.issame, pl.source, f"{name} ({folds.text})", range(folds.count), numbering="1-based",
                    balanced=folds.balanced, equal_sizes=folds.equal_sizes, fold_size=folds.size)
    return pl


def pair_embeddings(store: FeatureStore, pairs: PairList, flip: str = "add") -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised embeddings of each pair's two images (flip combined first, insightface's rule)."""
    feats = l2_normalize(store.combined(flip))
    ia = store.indices(pairs.path_a, what=f"pair list {pairs.source}")
    ib = store.indices(pairs.path_b, what=f"pair list {pairs.source}")
    return feats[ia], feats[ib]


def evaluate_pairs(store: FeatureStore, pairs: PairList, rule: str = "insightface", flip: str = "add",
                   target_far: float = TARGET_FAR) -> dict:
    """Run the k-fold protocol; returns {'metrics', 'per_fold', 'curves', 'rule'} (metrics in percent)."""
    if rule not in RULES:
        raise ConfigError(f"unknown reporting rule {rule!r}; expected one of {', '.join(RULES)}")
    ea, eb = pair_embeddings(store, pairs, flip)
    dist = squared_l2(ea, eb)
    res = kfold_accuracy(dist, pairs.issame, pairs.fold, target_far=target_far)
    tar_key = rate_key("TAR@FAR", target_far)
    both = bool(pairs.issame.any() and (~pairs.issame).any())
    # TAR@FAR and the ROC need genuine and impostor pairs; a set with one kind (a format test set) gets None
    tar = float(np.nanmean(res.tar)) * 100 if both and np.isfinite(res.tar).any() else None
    metrics = {"Acc": res.mean * 100, "Acc.std": res.std * 100, "Acc.se": res.se * 100, tar_key: tar}
    cosine = 1.0 - dist.astype(np.float64) / 2.0
    # each pair's decision under its fold's threshold (same comparison as the k-fold rule: float64, "<")
    correct = (dist.astype(np.float64) < res.threshold[pairs.fold]) == pairs.issame
    return {
        "rule": rule,
        "metrics": metrics,
        "per_fold": {"Acc": (res.accuracy * 100).tolist(), "threshold": res.threshold.tolist(),
                     tar_key: (res.tar * 100).tolist(), "FAR": (res.far * 100).tolist()},
        "curves": {"roc": roc_curve_points(cosine, pairs.issame)} if both else {},
        "counts": {"pairs": int(len(pairs)), "genuine": int(pairs.issame.sum()), "folds": pairs.n_folds},
        "tar_rule": "kfold-strict",
        "flip": flip if store.flip_features is not None else "none",
        "per_pair": {"correct": "".join("1" if c else "0" for c in correct)},
        "arrays": {"scores": cosine, "labels": pairs.issame.astype(np.int8), "fold": np.asarray(pairs.fold, np.int16)},
    }


def roc_curve_points(scores: np.ndarray, issame: np.ndarray) -> dict[str, list[float]] | None:
    """The record's ROC curve (sklearn's `roc_curve` points, downsampled) from the package's one ROC path."""
    from arface_repro.eval.roc_table import roc_table  # numba kernels at import time: only when a curve is made

    return roc_table(scores, issame, (), (), CURVE_POINTS)[1]
