"""Alignment: similarity estimate recovers known transforms; warped landmarks land on the template."""

from __future__ import annotations

import numpy as np
import pytest

from arface_repro.data.alignment import (
    ARCFACE_112,
    SPHEREFACE_112x96,
    align_face,
    estimate_similarity,
    template_for,
    transform_points,
)
from arface_repro.errors import ConfigError


def _random_similarity(rng):
    angle = rng.uniform(-np.pi, np.pi)
    scale = rng.uniform(0.5, 3.0)
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    return np.array([[c, -s, rng.uniform(-50, 200)], [s, c, rng.uniform(-50, 200)]])


def test_templates():
    assert ARCFACE_112.shape == (5, 2) and ARCFACE_112.dtype == np.float32
    np.testing.assert_allclose(ARCFACE_112[0], [38.2946, 51.6963], atol=1e-4)
    np.testing.assert_allclose(SPHEREFACE_112x96 + [8, 0], ARCFACE_112, atol=1e-5)
    np.testing.assert_array_equal(template_for(112), ARCFACE_112)
    np.testing.assert_array_equal(template_for((112, 96)), SPHEREFACE_112x96)
    np.testing.assert_allclose(template_for(224), ARCFACE_112 * 2, atol=1e-5)
    with pytest.raises(ConfigError):
        template_for((100, 90))


@pytest.mark.parametrize("seed", range(20))
def test_estimate_recovers_known_similarity(seed):
    rng = np.random.default_rng(seed)
    m = _random_similarity(rng)
    src = rng.uniform(0, 250, size=(5, 2))
    dst = src @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(estimate_similarity(src, dst), m, rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("size", [112, (112, 96)])
def test_landmarks_under_random_similarity_land_on_template(seed, size):
    rng = np.random.default_rng(100 + seed)
    tmpl = template_for(size)
    m = _random_similarity(rng)  # template -> image
    lmk = transform_points(m, tmpl)
    img = rng.integers(0, 255, size=(300, 320, 3), dtype=np.uint8)
    crop, new_lmk = align_face(img, lmk, size=size)
    h, w = (112, 112) if size == 112 else size
    assert crop.shape == (h, w, 3) and crop.dtype == np.uint8
    assert np.abs(new_lmk - tmpl).max() < 1e-3


def test_least_squares_with_noise_beats_perturbed_solutions():
    rng = np.random.default_rng(7)
    src = rng.uniform(0, 200, size=(5, 2)).astype(np.float32)
    dst = ARCFACE_112 + rng.normal(0, 2, size=(5, 2)).astype(np.float32)
    m = estimate_similarity(src, dst)

    def err(mat):
        return float(((transform_points(mat, src) - dst) ** 2).sum())

    base = err(m)
    for _ in range(50):  # no nearby similarity fits better
        a, b = m[0, 0], m[1, 0]
        da, db, tx, ty = rng.normal(0, 1e-3, 4)
        pert = np.array([[a + da, -(b + db), m[0, 2] + tx], [b + db, a + da, m[1, 2] + ty]])
        assert err(pert) >= base - 1e-3


def test_reflection_is_never_returned():
    src = ARCFACE_112.copy()
    dst = src * np.array([-1, 1], np.float32)  # mirror: best similarity must still be a rotation
    m = estimate_similarity(src, dst)
    assert np.linalg.det(m[:, :2]) > 0


def test_warp_moves_pixels_correctly():
    img = np.full((200, 200, 3), 50, np.uint8)
    m = np.array([[1.5, 0.0, -30.0], [0.0, 1.5, -20.0]])  # template -> image; crop corner falls outside
    lmk = transform_points(m, ARCFACE_112)
    x, y = np.round(lmk[2]).astype(int)
    img[y - 1 : y + 2, x - 1 : x + 2] = 255  # bright spot at the nose
    crop, _ = align_face(img, lmk)
    yy, xx = np.unravel_index(np.argmax(crop[..., 0]), crop.shape[:2])
    assert abs(xx - ARCFACE_112[2, 0]) <= 1.5 and abs(yy - ARCFACE_112[2, 1]) <= 1.5
    assert crop[0, 0].tolist() == [0, 0, 0]  # outside the source: border value 0
    assert crop[-1, -1].tolist() == [50, 50, 50]  # inside the source


def test_equal_to_skimage_when_available():
    """insightface estimates with skimage's SimilarityTransform on float32 landmarks (optional check).

    skimage's code is another numeric path (its own order of float64 operations, which its releases may
    change), so the matrices are compared to 1e-9 px over the image: far below what warpAffine's 1/32-pixel
    fixed-point coordinates can resolve, so the aligned crops are the same."""
    transform = pytest.importorskip("skimage.transform")
    import warnings

    rng = np.random.default_rng(3)
    for _ in range(50):
        src = (ARCFACE_112 * rng.uniform(1, 2) + rng.normal(0, 4, (5, 2)) + rng.uniform(0, 80, 2)).astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            ref = transform.SimilarityTransform()
            ref.estimate(src, ARCFACE_112)
        got = estimate_similarity(src, ARCFACE_112)
        np.testing.assert_allclose(got[:, :2], ref.params[:2, :2], rtol=0, atol=1e-11)
        np.testing.assert_allclose(got[:, 2], ref.params[:2, 2], rtol=0, atol=1e-9)


def test_mirror_landmarks_follow_the_flipped_image():
    """A bright dot at each landmark lands on the mirrored landmark after img[:, ::-1]; left/right swap."""
    from arface_repro.data.alignment import ARCFACE_112, mirror_landmarks

    img = np.zeros((112, 112), np.uint8)
    pts = np.round(ARCFACE_112).astype(int)
    for i, (x, y) in enumerate(pts):
        img[y, x] = 10 + i
    flipped = img[:, ::-1]
    mirrored = mirror_landmarks(pts.astype(np.float32), 112)
    for i, (x, y) in enumerate(np.round(mirrored).astype(int)):
        assert flipped[y, x] == 10 + (1, 0, 2, 4, 3)[i]
    assert mirrored[0, 0] < mirrored[1, 0]  # index 0 is still the left eye
    np.testing.assert_array_equal(mirror_landmarks(mirrored, 112), pts)
    assert mirror_landmarks(np.stack([pts, pts]).astype(np.float32), 112).shape == (2, 5, 2)
