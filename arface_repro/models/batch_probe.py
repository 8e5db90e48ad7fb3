"""Whether a network file runs a batch: two images run one by one and together must agree.

Used by the backends whose files may declare no batch size or a wrong one (OpenCV nets, TensorFlow graphs):
a batch that fails or gives other outputs than single images means one image at a time (`fixed_batch = 1`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

PROBE_RTOL = 1e-4   # relative to the largest output value: two runs of one image agree far closer
DIFFERS = "a batch of 2 gives other outputs than single images: one image at a time"


def run_singles(run_one: Callable[[np.ndarray], np.ndarray], probe: np.ndarray) -> np.ndarray:
    """The probe's images run one at a time, stacked (errors propagate: a single image must run)."""
    return np.concatenate([run_one(probe[i:i + 1]) for i in range(len(probe))])


def batch_agrees(singles: np.ndarray, together: np.ndarray) -> bool:
    """Whether the batch's outputs equal the single runs' within PROBE_RTOL of the largest value."""
    scale = max(float(np.abs(singles).max()), 1e-12)
    return float(np.abs(together - singles).max()) <= PROBE_RTOL * scale
