"""Whether a network file runs a batch: two images run one by one and together must agree.

Used by the backends whose files may declare no batch size or a wrong one (OpenCV nets, TensorFlow graphs):
a batch that fails or gives other outputs than single images means one image at a time (`fixed_batch = 1`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

PROBE_RTOL = 1e-4   # relative to the largest output value: two runs of one image agree far closer
DIFFERS = "a batch of 2 gives other outputs than single images: one image at a time"


def probe_images(preprocess, n: int = 2) -> np.ndarray:
    """`n` fixed random images (seed 0) through the model's preprocessing: the probe's input."""
    h, w = preprocess.size
    images = np.random.default_rng(0).integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    return preprocess(images, name="batch probe")


def probe_batching(model, run_batch: Callable[[np.ndarray], np.ndarray], errors: tuple[type[BaseException], ...],
                   describe: Callable[[BaseException], str]) -> str:
    """Run two probe images one by one (through `model._run`: a single image must run) and together (through
    `run_batch`); set `model.embedding_size`, and `model.fixed_batch = 1` when the batch raises one of `errors`
    or gives other outputs. Returns the note the model reports (`describe(exc)`: why the batch failed)."""
    probe = probe_images(model.preprocess, 2)
    singles = run_singles(lambda x: model._checked(model._run(x), 1), probe)
    model.embedding_size = singles.shape[1]
    try:
        together = model._checked(run_batch(probe), 2)
    except errors as exc:
        model.fixed_batch = 1
        return f"a batch of 2 fails ({describe(exc)}): one image at a time"
    if not batch_agrees(singles, together):
        model.fixed_batch = 1
        return DIFFERS
    return "batched"


def run_singles(run_one: Callable[[np.ndarray], np.ndarray], probe: np.ndarray) -> np.ndarray:
    """The probe's images run one at a time, stacked (errors propagate: a single image must run)."""
    return np.concatenate([run_one(probe[i:i + 1]) for i in range(len(probe))])


def batch_agrees(singles: np.ndarray, together: np.ndarray) -> bool:
    """Whether the batch's outputs equal the single runs' within PROBE_RTOL of the largest value."""
    scale = max(float(np.abs(singles).max()), 1e-12)
    return float(np.abs(together - singles).max()) <= PROBE_RTOL * scale
