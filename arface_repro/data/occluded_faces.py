"""Deterministic synthetic faces with identities, for mechanism tests and small-scale table runs.

Each identity owns 5 smooth random colour textures ("parts"), one per landmark of the 112x112 ArcFace
template, so identity information is spread over the 5 landmark regions (what ARFace's patches
cover). An image pastes its identity's parts at the template landmarks plus jitter, with a per-image
perturbation of each part, brightness change and pixel noise.

`occluded=True`: in half of the images (a fixed, seeded choice) the part at `occluded_patch` (the
nose by default) is replaced by the same part of a random other identity drawn at 1.5x contrast: noise
as far as the image's identity goes, misleading evidence for the Feature-Net, and visible to the
Attention-Net by its contrast -- which is what makes dropping that patch worth learning.

`group_size=g > 1`: identities come in groups of g that share every part except the occludable one,
so that part alone tells group members apart (default 1).

`occluder_contrast` (default 1.5): the occluder's contrast; a larger value makes it easier to see.

The conditional task of the synthetic Table X (configs/syn_*.yaml, `group_size` 5, `occluder_contrast` 3):
the clean nose is the only part that separates the members of a group, so "always drop the nose" loses
same-group impostor pairs; the occluder is another identity's nose, so "never drop it" is misled on
occluded images; "drop it iff occluded" (the oracle) avoids both. `tests/test_occluded_faces.py` measures that
room with trained networks under the three fixed policies.

Fast path: the whole set is generated at construction into numpy arrays (`images` N x 112 x 112 x 3
uint8, `labels` N int64, `landmarks` N x 5 x 2 float32); `__getitem__` returns
`(image, label, landmarks)` like the other face datasets. Same arguments -> identical arrays.
No torch import here.
"""

from __future__ import annotations

import cv2
import numpy as np

from arface_repro.data.alignment import ARCFACE_112
from arface_repro.errors import ConfigError

TEMPLATE_112 = ARCFACE_112   # the faces are drawn around the ArcFace 112x112 template points
PATCH_INDEX = {"left_eye": 0, "right_eye": 1, "nose": 2, "left_mouth": 3, "right_mouth": 4}
OCCLUDER_CONTRAST = 1.5   # the occluding part is drawn at this multiple of a normal part's contrast


def _upsample(coarse: np.ndarray, size: int) -> np.ndarray:
    """(n, grid, grid, 3) coarse noise -> (n, size, size, 3) smooth textures, faded out towards the border."""
    grid = coarse.shape[1]
    # bicubic resize is separable: out = A X A^T with A = cv2's 1-D interpolation matrix (fast path)
    A = cv2.resize(np.eye(grid, dtype=np.float32), (grid, size), interpolation=cv2.INTER_CUBIC)  # (size, grid)
    out = np.einsum("ag,nghc,bh->nabc", A, coarse, A, optimize=True).astype(np.float32)
    r = (np.arange(size) - (size - 1) / 2) / (size / 2)
    win = np.exp(-2.0 * (r[:, None] ** 2 + r[None, :] ** 2)).astype(np.float32)
    return out * win[None, :, :, None]


def _textures(rng: np.random.Generator, n: int, size: int, grid: int = 4) -> np.ndarray:
    """n smooth RGB textures (n, size, size, 3) in about [-1, 1], faded out towards the border."""
    return _upsample(rng.standard_normal((n, grid, grid, 3)).astype(np.float32), size)


CHUNK = 512   # images composed at a time (bounds the float32 working memory to ~80 MB)


_CACHE: dict = {}
CACHE_SIZE = 4   # sets kept per process: the rows of one seed share their training and held-out sets


class SyntheticFaces:
    """A seeded synthetic face set; `identity_offset` keeps train and held-out identities disjoint.

    The arrays of the last few sets built in this process are kept and shared (same arguments -> the same
    arrays): the table rows of one seed train on the same set. Treat `images` as read-only."""

    def __init__(self, *args, **kwargs):
        import inspect

        bound = inspect.signature(self._build).bind(*args, **kwargs)
        bound.apply_defaults()
        key = tuple(sorted(bound.arguments.items()))
        if key not in _CACHE:
            if len(_CACHE) >= CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = self._build(*args, **kwargs)
        (self.images, self.labels, self.landmarks, self.occluded, self.num_classes, self.occluded_patch) = _CACHE[key]

    @staticmethod
    def _build(
        num_identities: int = 50,
        images_per_identity: int = 20,
        seed: int = 0,
        occluded: bool = False,
        occluded_patch: str = "nose",
        occlusion_rate: float = 0.5,
        part_size: int = 24,
        jitter: float = 2.0,
        variation: float = 0.35,
        noise_std: float = 6.0,
        identity_offset: int = 0,
        group_size: int = 1,
        occluder_contrast: float = OCCLUDER_CONTRAST,
    ):
        if num_identities < 1 or images_per_identity < 1:
            raise ConfigError("synthetic set needs num_identities >= 1 and images_per_identity >= 1")
        if not occluder_contrast > 0:
            raise ConfigError(f"occluder_contrast must be > 0, got {occluder_contrast!r}")
        if occluded_patch not in PATCH_INDEX:
            raise ConfigError(f"occluded_patch must be one of {sorted(PATCH_INDEX)}, got {occluded_patch!r}")
        patch_index = PATCH_INDEX[occluded_patch]
        S = part_size
        # identity parts come from a stream keyed by the identity number, so they do not depend on the set size
        parts = np.stack([_textures(np.random.default_rng([seed, 1, identity_offset + k]), 5, S) for k in range(num_identities)])
        if group_size > 1:  # identities of a group share every part except the occludable one
            own = parts[:, patch_index].copy()
            parts = parts[(np.arange(num_identities) // group_size) * group_size]
            parts[:, patch_index] = own
        rng = np.random.default_rng([seed, 2, identity_offset, num_identities, images_per_identity])
        n = num_identities * images_per_identity
        labels = np.repeat(np.arange(num_identities), images_per_identity)
        shifts = np.clip(np.round(rng.normal(0, jitter, (n, 5, 2))), -3 * jitter, 3 * jitter)
        lms = (TEMPLATE_112[None] + shifts).astype(np.float32)
        coarse = rng.standard_normal((n * 5, 4, 4, 3)).astype(np.float32).reshape(n, 5, 4, 4, 3)
        gains = rng.uniform(0.8, 1.2, (n, 1, 1, 1)).astype(np.float32)
        occl = (rng.random(n) < occlusion_rate) if occluded else np.zeros(n, bool)
        # occluder: the same part of another (random) identity, at OCCLUDER_CONTRAST x contrast -- misleading
        # evidence that the Attention-Net can spot by its contrast
        impostor = np.zeros(n, np.int64)
        impostor[occl] = (labels[occl] + rng.integers(1, max(2, num_identities), int(occl.sum()))) % num_identities
        pix_noise = np.random.default_rng(int(rng.integers(2**31)))
        half = S // 2
        corner = lms.astype(np.int64) - half        # (n, 5, 2) x0, y0 of each pasted part (int() truncation)
        inside = bool(np.all(corner >= 0) and np.all(corner + S <= 112))
        images = np.empty((n, 112, 112, 3), np.uint8)
        ar = np.arange(S)
        for s0 in range(0, n, CHUNK):
            sl = slice(s0, min(n, s0 + CHUNK))
            m = sl.stop - sl.start
            canvas = np.zeros((m, 112, 112, 3), np.float32)
            pert = _upsample(coarse[sl].reshape(m * 5, 4, 4, 3), S).reshape(m, 5, S, S, 3)
            for p in range(5):
                tex = parts[labels[sl], p] + variation * pert[:, p]
                if p == patch_index:
                    occ = occl[sl]
                    tex[occ] = occluder_contrast * parts[impostor[sl][occ], p]
                x0, y0 = corner[sl, p, 0], corner[sl, p, 1]
                if inside:   # each image gets one S x S block per part: no repeated index within this add
                    canvas[np.arange(m)[:, None, None], (y0[:, None] + ar)[:, :, None], (x0[:, None] + ar)[:, None, :]] += tex
                else:
                    for i in range(m):
                        ty0, tx0 = max(0, -y0[i]), max(0, -x0[i])
                        y1, x1 = min(112, y0[i] + S), min(112, x0[i] + S)
                        canvas[i, y0[i] + ty0: y1, x0[i] + tx0: x1] += tex[i, ty0: ty0 + y1 - y0[i] - ty0, tx0: tx0 + x1 - x0[i] - tx0]
            noise = pix_noise.standard_normal(canvas.shape, dtype=np.float32) * noise_std
            images[sl] = np.clip(128.0 + 70.0 * canvas * gains[sl] + noise, 0, 255).astype(np.uint8)
        return (images, labels.astype(np.int64), lms, occl, num_identities, patch_index)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i], int(self.labels[i]), self.landmarks[i]


def verification_pairs(labels: np.ndarray, num_pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`num_pairs` genuine and `num_pairs` impostor index pairs (i, j), seeded; returns (pairs (2P,2), issame)."""
    rng = np.random.default_rng([seed, 3])
    labels = np.asarray(labels)
    by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    by_class = [c for c in by_class if len(c) >= 2]
    if not by_class:
        raise ConfigError("verification pairs need a class with at least 2 images")
    pos: list[tuple[int, int]] = []
    for _ in range(num_pairs):
        members = by_class[rng.integers(len(by_class))]
        a, b = rng.choice(members, 2, replace=False)
        pos.append((a, b))
    neg: list[tuple[int, int]] = []
    while len(neg) < num_pairs:
        a, b = rng.integers(len(labels), size=2)
        if labels[a] != labels[b]:
            neg.append((a, b))
    pairs = np.array(pos + neg, dtype=np.int64)
    issame = np.r_[np.ones(num_pairs, bool), np.zeros(num_pairs, bool)]
    return pairs, issame
