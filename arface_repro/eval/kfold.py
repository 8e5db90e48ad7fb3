"""10-fold verification accuracy exactly as insightface's `verification.py` computes it (and the LFW official variant).

Per fold: on the other folds, pick the *first* threshold of the grid with the best accuracy, where "same"
iff distance < threshold; report the accuracy of that threshold on the held-out fold. The default grid is
insightface's `np.arange(0, 4, 0.01)` over squared L2 distances of L2-normalised embeddings.

The accuracy counts are obtained by binary search over sorted distances instead of insightface's loop
over thresholds; the comparisons made are the same (distance < threshold in float64), so the chosen
thresholds and accuracies are identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arface_repro.io.pairs import contiguous_folds  # noqa: F401  (fold layout of pair files; re-exported)

INSIGHTFACE_THRESHOLDS = np.arange(0, 4, 0.01)


@dataclass
class KFoldResult:
    accuracy: np.ndarray        # per-fold held-out accuracy (fraction)
    threshold: np.ndarray       # per-fold chosen threshold
    tar: np.ndarray | None = None   # per-fold TAR at the target FAR (fraction), when asked for
    far: np.ndarray | None = None   # per-fold FAR achieved on the held-out fold

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracy))

    @property
    def std(self) -> float:
        """np.std with ddof 0, insightface's figure."""
        return float(np.std(self.accuracy))

    @property
    def se(self) -> float:
        """Standard error (std ddof 1 / sqrt(k)), the official LFW figure."""
        k = len(self.accuracy)
        return float(np.std(self.accuracy, ddof=1) / np.sqrt(k)) if k > 1 else 0.0


def squared_l2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise squared L2 distance, in the inputs' dtype like insightface (`np.sum(np.square(a - b), 1)`)."""
    diff = np.subtract(a, b)
    return np.sum(np.square(diff), 1)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Row L2 normalisation as sklearn.preprocessing.normalize does it (dtype kept; zero rows left zero)."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    norms[norms == 0.0] = 1.0
    return x / norms[:, None]


def _correct_counts(dist: np.ndarray, issame: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each threshold t: #(same & dist < t) + #(diff & dist >= t)."""
    d_same = np.sort(dist[issame].astype(np.float64))
    d_diff = np.sort(dist[~issame].astype(np.float64))
    tp = np.searchsorted(d_same, thresholds, side="left")
    fp = np.searchsorted(d_diff, thresholds, side="left")
    return tp + (d_diff.size - fp)


def kfold_accuracy(
    dist: np.ndarray,
    issame: np.ndarray,
    folds: np.ndarray,
    thresholds: np.ndarray = INSIGHTFACE_THRESHOLDS,
    target_far: float | None = None,
) -> KFoldResult:
    """k-fold accuracy on distances (smaller = more similar); `folds` gives each pair's fold id.

    With `target_far`, also the k-fold TAR under this package's ``kfold-strict`` rule: on the training
    folds, the threshold is the (m+1)-th smallest impostor distance with m = floor(target_far * N_imp), so
    at most m training impostors have distance < threshold (no threshold grid, no interpolation); the
    TAR and FAR of that threshold are measured on the held-out fold.
    """
    dist = np.asarray(dist)
    issame = np.asarray(issame, dtype=bool)
    folds = np.asarray(folds)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    fold_ids = np.unique(folds)
    acc = np.zeros(len(fold_ids))
    thr = np.zeros(len(fold_ids))
    tars = np.zeros(len(fold_ids)) if target_far is not None else None
    fars = np.zeros(len(fold_ids)) if target_far is not None else None
    if len(fold_ids) < 2:  # one fold would tune the threshold on its own test pairs (protocols check this first)
        raise ValueError(f"k-fold accuracy needs at least 2 folds, got {len(fold_ids)}")
    for i, f in enumerate(fold_ids):
        test = folds == f
        train = ~test
        counts = _correct_counts(dist[train], issame[train], thresholds)
        best = int(np.argmax(counts))
        thr[i] = thresholds[best]
        d_test, s_test = dist[test].astype(np.float64), issame[test]
        pred = d_test < thr[i]
        acc[i] = float(np.sum(pred == s_test)) / d_test.size
        if target_far is not None:
            imp = np.sort(dist[train][~issame[train]].astype(np.float64))
            if imp.size == 0:   # no impostors to set a threshold on: TAR@FAR is undefined
                tars[i] = fars[i] = np.nan
                continue
            m = int(np.floor(target_far * imp.size + 1e-9))
            t = imp[m] if m < imp.size else np.inf
            tars[i] = float(np.mean(d_test[s_test] < t)) if s_test.any() else np.nan
            fars[i] = float(np.mean(d_test[~s_test] < t)) if (~s_test).any() else np.nan
    return KFoldResult(acc, thr, tars, fars)
