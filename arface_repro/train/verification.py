"""Built-in held-out verification on the synthetic set (the periodic hook's default).

Seeded genuine/impostor pairs over held-out identities, scored by the package's insightface 10-fold
rule (`arface_repro.eval.kfold`: squared L2 of normalised embeddings, i.e. 2 − 2·cosine, threshold
picked on the other 9 folds). For ARFace it also reports how the Attention-Net's argmax drops patches:
`drop_occluded` = share of occluded images whose occluded patch is dropped, `drop_clean` = share of
clean (patch, image) cells dropped (every other patch, and the occludable patch on clean images),
`drop_same_patch_clean` = share of clean images whose occludable patch is dropped (is the policy conditional?).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from arface_repro.data.occluded_faces import verification_pairs
from arface_repro.eval.kfold import kfold_accuracy
from arface_repro.method.patches import mode_keep_table


def synthetic_verification(trainer, val_set, num_pairs: int, seed: int) -> dict:
    feats, modes = trainer.embed(val_set.images, val_set.landmarks)
    f = feats / np.linalg.norm(feats, axis=1, keepdims=True).clip(1e-12)
    pairs, issame = verification_pairs(val_set.labels, num_pairs, seed)
    scores = (f[pairs[:, 0]] * f[pairs[:, 1]]).sum(1)
    dist = 2.0 - 2.0 * scores
    folds = np.arange(len(dist)) % 10   # pairs come positives first: interleave so every fold has both
    out: dict[str, Any] = {"val_accuracy": 100.0 * kfold_accuracy(dist, issame, folds).mean}
    if modes is not None:
        dropped = ~mode_keep_table()[modes]  # N,5
        occ, p = np.asarray(val_set.occluded, bool), val_set.occluded_patch
        clean = np.ones_like(dropped)
        clean[occ, p] = False
        out["drop_rate"] = dropped.mean(0).tolist()
        out["drop_clean"] = float(dropped[clean].mean())
        out["drop_occluded"] = float(dropped[occ, p].mean()) if occ.any() else None
        out["drop_same_patch_clean"] = float(dropped[~occ, p].mean()) if (~occ).any() else None
    return out
