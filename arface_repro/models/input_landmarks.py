"""5-point landmarks of a batch, carried to the network input's pixel coordinates (numpy only).

Models that look at landmarks (`EmbeddingModel.uses_landmarks`, e.g. the ARFace model, whose Attention-Net scores
the patches around them) take them in the pixel coordinates of the images given to `embed`, float N×5×2 (x, y),
in the order left eye, right eye, nose tip, left mouth corner, right mouth corner. The preprocessing fits the
images to the network's input size, and the landmarks follow the same fit:

- `pad`: shifted by the padding, (Δw/2, Δh/2) — a 112×96 SphereFace crop padded to 112×112 moves by (8, 0);
- `resize`: scaled about pixel centres as cv2.resize maps them, x' = (x + 0.5)·W'/W − 0.5 (same for y);
- same size: unchanged.

`None` means "aligned crops": the 5-point template of the images' size (`data.alignment.template_for`: ArcFace
112×112, SphereFace 112×96, ArcFace scaled for 224, 336, ...), carried the same way, so 112×96 crops get exactly
the ArcFace 112×112 template after padding. Images of a size without a template need explicit landmarks.
"""

from __future__ import annotations

import numpy as np

from arface_repro.data.alignment import template_for
from arface_repro.errors import ConfigError


def network_landmarks(landmarks, image_hw: tuple[int, int], preprocess, n: int, name: str = "batch") -> np.ndarray:
    """float32 n×5×2 landmarks in the coordinates of the network input (`preprocess.size`)."""
    h, w = int(image_hw[0]), int(image_hw[1])
    if landmarks is None:
        try:
            tpl = template_for((h, w))
        except ConfigError:
            raise ConfigError(f"{name}: {h}×{w} images have no 5-point template; pass their landmarks (e.g. the "
                              f"landmarks.txt written by `arface align`) or use aligned 112×112 / 112×96 crops") from None
        lm = np.broadcast_to(tpl, (n, 5, 2)).astype(np.float32)
    else:
        lm = np.asarray(landmarks)
        if lm.shape != (n, 5, 2):
            raise ConfigError(f"{name}: landmarks must be {n}×5×2 (x, y pixels of the {n} images), got shape {lm.shape}")
        if not np.issubdtype(lm.dtype, np.number) or not np.all(np.isfinite(lm)):
            raise ConfigError(f"{name}: landmarks must be finite numbers")
        lm = lm.astype(np.float32)
    th, tw = preprocess.size
    if (h, w) == (th, tw):
        return np.ascontiguousarray(lm)
    if preprocess.fit == "pad":
        return np.ascontiguousarray(lm + np.array([(tw - w) // 2, (th - h) // 2], np.float32))
    if preprocess.fit == "resize":
        scale = np.array([tw / w, th / h], np.float64)
        return ((lm.astype(np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    raise ConfigError(f"{name}: images are {h}×{w} but the model takes {th}×{tw} (preprocess fit=none)")
