"""Face alignment: the ArcFace / SphereFace 5-point templates and a least-squares similarity warp.

The similarity transform is Umeyama's closed-form least-squares estimate (Umeyama 1991, with the
reflection fix), computed in float32 because insightface computes it from float32 landmarks that way
(float64 differs by ~1e-4 px). `cv2.estimateAffinePartial2D` is a robust (RANSAC) estimator and is
not equivalent. The warp is `cv2.warpAffine` with a constant 0 border.
"""

from __future__ import annotations

import numpy as np

from arface_repro.errors import ConfigError

#: ArcFace 112×112 template: left eye, right eye, nose tip, left mouth corner, right mouth corner (x, y).
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)

ARCFACE_112.setflags(write=False)   # shared by the method and synthetic modules: never modified in place

#: SphereFace 112×96 (H×W) template: the ArcFace one shifted 8 px left.
SPHEREFACE_112x96 = ARCFACE_112 - np.array([8.0, 0.0], dtype=np.float32)


def _size_hw(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigError(f"alignment size must be an int or (height, width), got {size!r}") from None
    return h, w


def template_for(size=112) -> np.ndarray:
    """The 5-point template (float32, (5, 2), x/y pixels) for an output size.

    112 or (112, 112): ArcFace; (112, 96): SphereFace; a square multiple of 112 (e.g. 224): the ArcFace
    template scaled, as insightface does.
    """
    h, w = _size_hw(size)
    if (h, w) == (112, 96):
        return SPHEREFACE_112x96.copy()
    if h == w and h % 112 == 0:
        return (ARCFACE_112 * np.float32(h / 112)).astype(np.float32)
    raise ConfigError(f"no alignment template for size {h}x{w}: use 112, (112, 112), (112, 96) or 112*k")


def estimate_similarity(src, dst) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping `src` onto `dst`.

    Both are (N, 2) point sets, cast to float32: means, cross-covariance and SVD run in float32 and the
    rest in float64, which is the precision mix of insightface's estimate (skimage's Umeyama on float32
    landmarks). Returns the 2×3 float64 matrix [s·R | t].
    """
    src = np.asarray(src, dtype=np.float32)
    dst = np.asarray(dst, dtype=np.float32)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"need two (N>=2, 2) point sets of equal shape, got {src.shape} and {dst.shape}")
    n, dim = src.shape
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / n  # float32 cross-covariance, float32 SVD below
    d = np.ones(dim, dtype=np.float64)  # reflection fix; float64 like insightface's implementation
    if np.linalg.det(cov) < 0:
        d[-1] = -1
    u, s, vt = np.linalg.svd(cov)
    rank = int(np.count_nonzero(s > s.max() * dim * np.finfo(np.float64).eps))
    rot = np.eye(dim, dtype=np.float64)
    if rank == 0:
        return np.full((2, 3), np.nan)
    if rank == dim - 1:
        if np.linalg.det(u) * np.linalg.det(vt) > 0:
            rot[:, :] = u @ vt
        else:
            flip = d.copy()
            flip[-1] = -1
            rot[:, :] = u @ np.diag(flip) @ vt
    else:
        rot[:, :] = u @ np.diag(d) @ vt
    scale = 1.0 / src_c.var(axis=0).sum() * (s @ d)
    m = np.zeros((2, 3), dtype=np.float64)
    m[:, 2] = dst_mean - scale * (rot @ src_mean.T)
    m[:, :2] = rot * scale
    return m


def transform_points(matrix: np.ndarray, points) -> np.ndarray:
    """Apply a 2×3 affine matrix to (N, 2) points; float32 result."""
    pts = np.asarray(points, dtype=np.float64)
    return (pts @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def align_face(img: np.ndarray, landmarks, size=112) -> tuple[np.ndarray, np.ndarray]:
    """Warp `img` so its 5 `landmarks` ((5, 2) x/y pixels) best match the template for `size`.

    Returns (crop of shape H×W(×C), landmarks in crop coordinates as float32 (5, 2)).
    """
    import cv2

    lmk = np.asarray(landmarks, dtype=np.float32)
    if lmk.shape != (5, 2):
        raise ValueError(f"landmarks must have shape (5, 2), got {lmk.shape}")
    h, w = _size_hw(size)
    matrix = estimate_similarity(lmk, template_for((h, w)))
    crop = cv2.warpAffine(img, matrix, (w, h), borderValue=0.0)
    return crop, transform_points(matrix, lmk)


#: Index order of the 5 points after a horizontal flip: the eyes and the mouth corners swap sides.
MIRROR_ORDER = (1, 0, 2, 4, 3)


def mirror_landmarks(landmarks, width: int) -> np.ndarray:
    """The 5-point landmarks of the horizontally flipped image (`img[:, ::-1]`), in the same point order.

    A pixel at column c moves to column width − 1 − c (pixel centres at integer coordinates, as the
    similarity warp and `patch_boxes` use them); left and right points swap so that index 0 is still the
    left eye. Works on (5, 2) or (N, 5, 2) arrays.
    """
    lm = np.asarray(landmarks, dtype=np.float32)
    if lm.shape[-2:] != (5, 2):
        raise ConfigError(f"mirror_landmarks: expected (..., 5, 2) landmarks, got shape {lm.shape}")
    out = lm[..., MIRROR_ORDER, :].copy()
    out[..., 0] = (width - 1) - out[..., 0]
    return out
