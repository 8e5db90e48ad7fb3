"""The three columns of Tables X and XI, measured on held-out synthetic identities (this package's definition).

The paper's columns are LFW 10-fold accuracy on 6000 pairs, BLUFR VR@FAR=0.1 % and BLUFR DIR@FAR=1 %.
The synthetic small-scale reproduction measures the same three quantities on a held-out synthetic set
(identities disjoint from training), with the package's own metric code:

- ``Acc``: `data.val.num_pairs` genuine + as many impostor pairs (3000 + 3000 in the syn_* configs) drawn
  without replacement, laid out as LFW's View 2 (10 folds of 300 + 300), scored by the insightface 10-fold
  rule (`arface_repro.eval.kfold`); with 3000 + 3000 one pair is 1/6000 = 0.0167 points, as on LFW. ``per_pair.correct`` holds each pair's decision under its fold's
  threshold ('1' = right), so two runs can be compared pair by pair (McNemar).
- ``VR@FAR=0.1%``: BLUFR's EvalROC (`arface_repro.eval.blufr.metric.eval_roc`, the exact port) over all image
  pairs of the held-out set, one trial.
- ``DIR@FAR=1%``: BLUFR's OpenSetROC at rank 1: the first image of every other held-out identity is the
  gallery, their other images the genuine probes, every image of the remaining identities an impostor
  probe.

Absolute values are not comparable with the paper's; what the tables compare is each ordering of rows.
"""

from __future__ import annotations

import numpy as np

from arface_repro.errors import ConfigError
from arface_repro.eval.blufr.metric import (
    OSI_FARS,
    RANKS,
    REPORT_OSI_FAR,
    REPORT_RANK,
    REPORT_VERIFY_FAR,
    VERIFY_FARS,
    eval_roc,
    open_set_roc,
)
from arface_repro.eval.kfold import kfold_accuracy, l2_normalize, squared_l2
from arface_repro.method.patches import fixed_keep_flags, mode_keep_table

PAIRS_PER_FOLD = 300
N_FOLDS = 10
PROTOCOL = "synthetic-verification"
RULE = "syn-lfw-layout-10fold + blufr-evalroc/opensetroc (this package's definition)"


def lfw_layout_pairs(labels: np.ndarray, seed: int, per_fold: int = PAIRS_PER_FOLD, folds: int = N_FOLDS):
    """Distinct genuine and impostor index pairs in LFW's layout: fold k = per_fold genuine then per_fold
    impostor pairs. Returns (pairs (2·per_fold·folds, 2), issame, fold ids)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([int(seed), 7])
    n_pos = n_neg = per_fold * folds
    all_gen = [(a, b) for c in np.unique(labels) for ids in [np.flatnonzero(labels == c)]
               for i, a in enumerate(ids) for b in ids[i + 1:]]
    if len(all_gen) < n_pos:
        raise ConfigError(f"held-out set has {len(all_gen)} genuine pairs; {n_pos} are needed (more images per identity)")
    gen = np.asarray(all_gen, np.int64)[rng.choice(len(all_gen), n_pos, replace=False)]
    seen: set[tuple[int, int]] = set()
    drawn: list[tuple[int, int]] = []
    while len(drawn) < n_neg:
        a, b = (int(v) for v in rng.integers(len(labels), size=2))
        if labels[a] != labels[b] and (min(a, b), max(a, b)) not in seen:
            seen.add((min(a, b), max(a, b)))
            drawn.append((a, b))
    neg = np.asarray(drawn, np.int64)
    pairs: list[np.ndarray] = []
    issame: list[np.ndarray] = []
    fold: list[np.ndarray] = []
    for k in range(folds):
        pairs += [gen[k * per_fold:(k + 1) * per_fold], neg[k * per_fold:(k + 1) * per_fold]]
        issame += [np.ones(per_fold, bool), np.zeros(per_fold, bool)]
        fold += [np.full(2 * per_fold, k)]
    return np.concatenate(pairs), np.concatenate(issame), np.concatenate(fold)


def pair_protocol(feats: np.ndarray, labels: np.ndarray, seed: int, per_fold: int = PAIRS_PER_FOLD) -> dict:
    """10-fold accuracy on the LFW-layout pairs; per-fold values and per-pair decisions."""
    f = l2_normalize(np.asarray(feats, np.float64))
    pairs, issame, fold = lfw_layout_pairs(labels, seed, per_fold)
    dist = squared_l2(f[pairs[:, 0]], f[pairs[:, 1]])
    res = kfold_accuracy(dist, issame, fold)
    correct = (dist < res.threshold[fold]) == issame
    return {"Acc": 100.0 * res.mean, "Acc.std": 100.0 * res.std, "per_fold": (100.0 * res.accuracy).tolist(),
            "thresholds": res.threshold.tolist(), "correct": "".join("1" if c else "0" for c in correct)}


def blufr_like(feats: np.ndarray, labels: np.ndarray) -> dict:
    """VR@FAR=0.1 % over all pairs and DIR@FAR=1 % rank 1 (alternate identities in the gallery)."""
    x = l2_normalize(np.asarray(feats, np.float64))
    labels = np.asarray(labels)
    vr, _, _ = eval_roc(x, labels)
    ids = np.unique(labels)
    in_gallery = np.isin(labels, ids[::2])
    first = np.zeros(len(labels), bool)
    first[[int(np.flatnonzero(labels == c)[0]) for c in ids[::2]]] = True
    gal, prob = np.flatnonzero(first), np.flatnonzero(~first)
    d, _, _ = open_set_roc(x[gal] @ x[prob].T, labels[gal], labels[prob])
    vi = int(np.argmin(np.abs(VERIFY_FARS - REPORT_VERIFY_FAR)))
    oi = int(np.argmin(np.abs(OSI_FARS - REPORT_OSI_FAR)))
    ri = int(np.flatnonzero(RANKS == REPORT_RANK)[0])
    return {"VR@FAR=0.1%": 100.0 * float(vr[vi]), "DIR@FAR=1%": 100.0 * float(d[ri, oi]),
            "counts": {"images": int(len(labels)), "identities": int(len(ids)), "gallery": int(len(gal)),
                       "genuine_probes": int(np.sum(in_gallery & ~first)), "impostor_probes": int(np.sum(~in_gallery))}}


def evaluate_embeddings(feats: np.ndarray, labels: np.ndarray, seed: int, modes=None, occluded=None,
                        occluded_patch: int | None = None, num_pairs: int = PAIRS_PER_FOLD * N_FOLDS) -> dict:
    """All synthetic columns (+ the Attention-Net's drop rates when `modes` is given); `num_pairs` genuine
    and as many impostor pairs (a multiple of 10)."""
    if num_pairs < N_FOLDS or num_pairs % N_FOLDS:
        raise ConfigError(f"data.val.num_pairs must be a positive multiple of {N_FOLDS}, got {num_pairs}")
    p = pair_protocol(feats, labels, seed, num_pairs // N_FOLDS)
    b = blufr_like(feats, labels)
    out = {"metrics": {"Acc": p["Acc"], "Acc.std": p["Acc.std"], "VR@FAR=0.1%": b["VR@FAR=0.1%"],
                       "DIR@FAR=1%": b["DIR@FAR=1%"]},
           "per_fold": {"Acc": p["per_fold"], "threshold": p["thresholds"]},
           "per_pair": {"correct": p["correct"]}, "counts": b["counts"]}
    if modes is not None and occluded is not None and occluded_patch is not None:
        dropped = ~mode_keep_table()[np.asarray(modes)]
        occ = np.asarray(occluded, bool)
        clean = np.ones_like(dropped)
        clean[occ, occluded_patch] = False
        out["metrics"]["drop_occluded"] = 100.0 * float(dropped[occ, occluded_patch].mean()) if occ.any() else None
        out["metrics"]["drop_clean"] = 100.0 * float(dropped[clean].mean())
        out["metrics"]["drop_same_patch_clean"] = (100.0 * float(dropped[~occ, occluded_patch].mean())
                                                   if (~occ).any() else None)
    return out


# Diagnostic test masks (not in the paper): the accuracy of the same trained network when the held-out input is
# masked by a given rule instead of the method's own (none for plain/Random/Cutout/DropBlock, argmax for ARFace).
TEST_MASKS = {"off": "Acc[test mask off]", "oracle": "Acc[oracle test mask]", "drop": "Acc[nose dropped at test]"}
TAIL_FRACTION = 0.1      # training accuracy / reward level = the mean over the last 10 % of the steps
LN_MODES = float(np.log(31))


def _mean_ci(v: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its 95 % normal interval over images (0 for fewer than 2 values)."""
    v = np.asarray(v, np.float64)
    half = 1.96 * float(v.std(ddof=1)) / np.sqrt(len(v)) if len(v) > 1 else 0.0
    return float(v.mean()), half


def policy_diagnostics(probs: np.ndarray, occluded: np.ndarray, patch: int) -> dict:
    """The Attention-Net's state on held-out images: mean entropy (nats; uniform = ln 31) and the probability
    of dropping the occludable patch on occluded and on clean images (percent, mean ± 95 % half-width)."""

    p = np.asarray(probs, np.float64)
    ent = -(p * np.log(np.clip(p, 1e-300, None))).sum(1)
    p_drop = p[:, ~mode_keep_table()[:, patch]].sum(1)
    occ = np.asarray(occluded, bool)
    out = {"policy_entropy": float(ent.mean()), "policy_entropy_uniform": LN_MODES}
    for name, sel in (("occluded", occ), ("clean", ~occ)):
        if sel.any():
            m, h = _mean_ci(p_drop[sel])
            out[f"p_drop_{name}"], out[f"p_drop_{name}.ci95"] = 100.0 * m, 100.0 * h
    return out


def training_level(history: list) -> dict:
    """Mean training accuracy (the ARFace reward: accuracy of the masked batch) over the last 10 % of the steps."""
    acc = [float(r["acc"]) for r in history if "acc" in r]
    if not acc:
        return {}
    tail = acc[-max(1, int(round(TAIL_FRACTION * len(acc)))):]
    return {"train_acc_tail": 100.0 * float(np.mean(tail))}


def verify_fn_for(val_set, seed: int, num_pairs: int = PAIRS_PER_FOLD * N_FOLDS, diagnostics: bool = True):
    """A `verify_fn(trainer)` for `arface_repro.train.api.train_and_evaluate` computing the columns above, and
    (`diagnostics`, synthetic sets with occlusion flags) the accuracy under each diagnostic test mask, the
    training accuracy's level and, for ARFace, the policy's state (`policy_diagnostics`)."""
    def verify(trainer) -> dict:
        occ, patch = getattr(val_set, "occluded", None), getattr(val_set, "occluded_patch", None)
        m = trainer.cfg["method"]
        if m["kind"] == "fixed":   # a fixed-mask (diagnostic) row is tested with the mask it was trained with
            keep = fixed_keep_flags(m["fixed_mask"], val_set, np.arange(len(val_set.labels)))
            feats, modes = trainer.embed(val_set.images, val_set.landmarks, keep=keep)
        else:
            feats, modes = trainer.embed(val_set.images, val_set.landmarks)
        out = evaluate_embeddings(feats, val_set.labels, seed, modes, occ, patch, num_pairs)
        if not diagnostics or occ is None:
            return out
        idx = np.arange(len(val_set.labels))
        for rule, name in TEST_MASKS.items():
            f, _ = trainer.embed(val_set.images, val_set.landmarks, keep=fixed_keep_flags(rule, val_set, idx))
            out["metrics"][name] = pair_protocol(f, val_set.labels, seed, num_pairs // N_FOLDS)["Acc"]
        out["metrics"].update(training_level(trainer.history))
        if getattr(trainer, "attn", None) is not None and patch is not None:
            out["metrics"].update(policy_diagnostics(trainer.policy_probs(val_set.images, val_set.landmarks), occ, patch))
        return out
    return verify
