"""Synthetic face generator and its held-out verification helpers."""

import numpy as np

from arface_repro.data.occluded_faces import TEMPLATE_112, SyntheticFaces, verification_pairs


def test_deterministic_shapes_and_occlusion():
    import arface_repro.data.occluded_faces as syn

    a = SyntheticFaces(6, 5, seed=3, occluded=True)
    assert SyntheticFaces(num_identities=6, images_per_identity=5, seed=3, occluded=True).images is a.images   # shared
    syn._CACHE.clear()
    b = SyntheticFaces(6, 5, seed=3, occluded=True)                      # built again: the same pixels
    assert b.images is not a.images
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
    def corr(r):
        return np.corrcoef(a[r].ravel(), b[r].ravel())[0, 1]

    assert corr(eye) > 0.98 and corr(nose) < 0.9


def _compose_loop(parts, labels, lms, perturb, fake_of, occl, occluded_patch, variation, S):
    """The per-image, per-part paste loop the generator used before it was vectorised (reference)."""
    canvas = np.zeros((len(labels), 112, 112, 3), np.float32)
    half = S // 2
    for i in range(len(labels)):
        for p in range(5):
            tex = fake_of[i] if (occl[i] and p == occluded_patch) else parts[labels[i], p] + variation * perturb[i, p]
            y0, x0 = int(lms[i, p, 1]) - half, int(lms[i, p, 0]) - half
            ty0, tx0 = max(0, -y0), max(0, -x0)
            y1, x1 = min(112, y0 + S), min(112, x0 + S)
            canvas[i, y0 + ty0: y1, x0 + tx0: x1] += tex[ty0: ty0 + y1 - y0 - ty0, tx0: tx0 + x1 - x0 - tx0]
    return canvas


def test_vectorised_composition_equals_the_loop(monkeypatch):
    """Chunked, vectorised composition gives the loop's pixels exactly (also across chunk borders and when a
    part is clipped at the image border)."""
    import arface_repro.data.occluded_faces as syn

    for kw, chunk in ((dict(num_identities=5, images_per_identity=9, seed=2, occluded=True, variation=0.6), 16),
                      (dict(num_identities=3, images_per_identity=4, seed=5, occluded=True, jitter=9.0, part_size=40), 5)):
        monkeypatch.setattr(syn, "CHUNK", chunk)
        d = SyntheticFaces(**kw)
        # rebuild the same draws as the generator and compose them with the loop
        S = kw.get("part_size", 24)
        n = len(d)
        parts = np.stack([syn._textures(np.random.default_rng([kw["seed"], 1, k]), 5, S) for k in range(kw["num_identities"])])
        rng = np.random.default_rng([kw["seed"], 2, 0, kw["num_identities"], kw["images_per_identity"]])
        jit = kw.get("jitter", 2.0)
        shifts = np.clip(np.round(rng.normal(0, jit, (n, 5, 2))), -3 * jit, 3 * jit)
        lms = (TEMPLATE_112[None] + shifts).astype(np.float32)
        perturb = syn._upsample(rng.standard_normal((n * 5, 4, 4, 3)).astype(np.float32), S).reshape(n, 5, S, S, 3)
        gains = rng.uniform(0.8, 1.2, (n, 1, 1, 1)).astype(np.float32)
        occl = rng.random(n) < 0.5
        labels = d.labels
        imp = (labels[occl] + rng.integers(1, kw["num_identities"], int(occl.sum()))) % kw["num_identities"]
        fake_of = {i: syn.OCCLUDER_CONTRAST * parts[j, 2] for i, j in zip(np.flatnonzero(occl), imp)}
        noise = np.random.default_rng(int(rng.integers(2**31))).standard_normal((n, 112, 112, 3), dtype=np.float32) * 6.0
        canvas = _compose_loop(parts, labels, lms, perturb, fake_of, occl, 2, kw.get("variation", 0.35), S)
        want = np.clip(128.0 + 70.0 * canvas * gains + noise, 0, 255).astype(np.uint8)
        assert np.array_equal(d.occluded, occl) and np.array_equal(d.landmarks, lms)
        assert np.array_equal(d.images, want)


def test_lfw_layout_pairs_and_synthetic_columns():
    from arface_repro.paper.synthetic_task import evaluate_embeddings, lfw_layout_pairs

    labels = np.repeat(np.arange(50), 12)
    pairs, issame, fold = lfw_layout_pairs(labels, seed=0)
    assert pairs.shape == (6000, 2) and issame.sum() == 3000
    assert len({(min(a, b), max(a, b)) for a, b in pairs}) == 6000            # no pair drawn twice
    assert (labels[pairs[issame, 0]] == labels[pairs[issame, 1]]).all() and (labels[pairs[~issame, 0]] != labels[pairs[~issame, 1]]).all()
    for k in range(10):   # LFW's layout: fold k = 300 genuine then 300 impostor pairs
        assert (fold[600 * k: 600 * (k + 1)] == k).all() and issame[600 * k: 600 * k + 300].all() and not issame[600 * k + 300: 600 * (k + 1)].any()
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, 32))
    feats = centres[labels] + 0.7 * rng.normal(size=(600, 32))
    out = evaluate_embeddings(feats, labels, seed=0)
    m = out["metrics"]
    correct = np.frombuffer(out["per_pair"]["correct"].encode(), np.uint8) == ord("1")
    assert correct.size == 6000
    # the per-pair decisions are the fold accuracies
    assert np.allclose([100 * correct[600 * k: 600 * (k + 1)].mean() for k in range(10)], out["per_fold"]["Acc"])
    assert m["Acc"] == np.mean(out["per_fold"]["Acc"]) and 0 < m["DIR@FAR=1%"] <= m["VR@FAR=0.1%"] + 100
    assert out["counts"] == {"images": 600, "identities": 50, "gallery": 25, "genuine_probes": 275, "impostor_probes": 300}
