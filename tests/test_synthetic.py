"""Synthetic face generator and its held-out verification helpers."""

import numpy as np

from arface_repro.data.synthetic import TEMPLATE_112, SyntheticFaces, verification_pairs


def test_deterministic_shapes_and_occlusion():
    a = SyntheticFaces(6, 5, seed=3, occluded=True)
    b = SyntheticFaces(6, 5, seed=3, occluded=True)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.landmarks, b.landmarks)
    img, label, lm = a[7]
    assert img.shape == (112, 112, 3) and img.dtype == np.uint8 and label == 1 and lm.shape == (5, 2)
    assert np.abs(a.landmarks - TEMPLATE_112).max() <= 6.0
    assert 0.2 < a.occluded.mean() < 0.8
    assert not SyntheticFaces(6, 5, seed=3).occluded.any()
    c = SyntheticFaces(6, 5, seed=4)
    assert not np.array_equal(a.images, c.images)


def test_identity_offset_gives_new_identities_and_parts_carry_identity():
    a = SyntheticFaces(4, 6, seed=0)
    b = SyntheticFaces(4, 6, seed=0, identity_offset=100)
    assert not np.array_equal(a.images[:6], b.images[:6])
    # images of one identity are closer to each other than to other identities (nearest-neighbour)
    x = a.images.reshape(len(a), -1).astype(np.float32)
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (a.labels[d.argmin(1)] == a.labels).mean() > 0.9


def test_verification_pairs():
    labels = np.repeat(np.arange(5), 4)
    pairs, same = verification_pairs(labels, 50, seed=0)
    assert pairs.shape == (100, 2) and same.sum() == 50
    assert (labels[pairs[same, 0]] == labels[pairs[same, 1]]).all()
    assert (labels[pairs[~same, 0]] != labels[pairs[~same, 1]]).all()


def test_group_size_shares_all_parts_but_the_occludable_one():
    d = SyntheticFaces(2, 1, seed=0, group_size=2, jitter=0.0, variation=0.0, noise_std=0.0)
    a, b = d.images[0].astype(np.float64) - 128, d.images[1].astype(np.float64) - 128
    eye = (slice(40, 62), slice(28, 50))  # left-eye part
    nose = (slice(62, 82), slice(46, 66))  # nose part (the occludable one)
    corr = lambda r: np.corrcoef(a[r].ravel(), b[r].ravel())[0, 1]
    assert corr(eye) > 0.98 and corr(nose) < 0.9
