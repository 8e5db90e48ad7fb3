import numpy as np
import pytest

from arface_repro.eval.kfold import INSIGHTFACE_THRESHOLDS, contiguous_folds, kfold_accuracy, l2_normalize, squared_l2


def golden_pairs():
    """DESIGN.md's synthetic golden: 6000 pairs as 10 × (300 same, 300 different)."""
    rng = np.random.default_rng(0)
    issame = np.tile(np.r_[np.ones(300, bool), np.zeros(300, bool)], 10)
    a = rng.standard_normal((6000, 128))
    b = np.where(issame[:, None], a + 4.0 * rng.standard_normal((6000, 128)), rng.standard_normal((6000, 128)))
    return l2_normalize(a), l2_normalize(b), issame


def test_insightface_rule_golden():
    a, b, issame = golden_pairs()
    res = kfold_accuracy(squared_l2(a, b), issame, contiguous_folds(6000))
    expect = [0.945, 0.921667, 0.913333, 0.898333, 0.923333, 0.901667, 0.93, 0.931667, 0.931667, 0.908333]
    np.testing.assert_allclose(res.accuracy, expect, atol=1e-6)
    assert res.mean == pytest.approx(0.920500, abs=1e-6)
    assert res.std == pytest.approx(0.014123, abs=1e-6)
    assert res.se == pytest.approx(np.std(res.accuracy, ddof=1) / np.sqrt(10))


def loop_reference(dist, issame, folds, thresholds):
    """insightface's loop, written out: first best threshold on train folds, accuracy on the test fold."""
    accs, thrs = [], []
    for f in np.unique(folds):
        tr, te = folds != f, folds == f
        acc_tr = [np.mean((dist[tr] < t) == issame[tr]) for t in thresholds]
        best = thresholds[int(np.argmax(acc_tr))]
        thrs.append(best)
        accs.append(np.mean((dist[te] < best) == issame[te]))
    return np.array(accs), np.array(thrs)


def test_vectorised_counts_equal_threshold_loop_with_ties():
    rng = np.random.default_rng(3)
    # distances on the threshold grid itself make '<' vs '<=' and tie-breaking matter
    dist = rng.choice(INSIGHTFACE_THRESHOLDS[50:250], size=1200)
    issame = rng.random(1200) < 0.5
    dist[issame] -= 0.3
    folds = contiguous_folds(1200)
    res = kfold_accuracy(dist, issame, folds)
    accs, thrs = loop_reference(dist, issame, folds, INSIGHTFACE_THRESHOLDS)
    np.testing.assert_array_equal(res.threshold, thrs)
    np.testing.assert_allclose(res.accuracy, accs, rtol=0, atol=0)


def test_contiguous_folds_match_sklearn_kfold():
    from sklearn.model_selection import KFold

    for n in (10, 23, 6000):
        ids = contiguous_folds(n)
        for k, (_, test) in enumerate(KFold(10, shuffle=False).split(np.arange(n))):
            np.testing.assert_array_equal(np.flatnonzero(ids == k), test)


def test_kfold_strict_tar_never_exceeds_target_on_training_folds():
    a, b, issame = golden_pairs()
    dist = squared_l2(a, b)
    res = kfold_accuracy(dist, issame, contiguous_folds(6000), target_far=1e-2)
    # the threshold admits at most floor(1e-2 * 2700) = 27 training impostors in each fold
    for f in range(10):
        tr = contiguous_folds(6000) != f
        imp = np.sort(dist[tr & ~issame])
        t = imp[27]
        assert np.sum(imp < t) <= 27
    assert np.all((res.tar >= 0) & (res.tar <= 1))
    assert 0 < np.mean(res.tar) < np.mean(res.accuracy)
