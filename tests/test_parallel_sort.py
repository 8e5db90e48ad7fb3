"""sort_parallel gives np.sort's values for any split and thread count (ties, duplicates, signed zeros, odd sizes)."""

import numpy as np
import pytest

from arface_repro.eval import parallel_sort
from arface_repro.eval.parallel_sort import sort_parallel


@pytest.mark.parametrize("threads", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_equal_np_sort(monkeypatch, threads, dtype):
    monkeypatch.setattr(parallel_sort, "MIN_PARALLEL", 1000)   # small arrays take the parallel path too
    rng = np.random.default_rng(threads)
    for n in (0, 1, 999, 1000, 2001, 12_345, 100_003):
        x = rng.standard_normal(n).astype(dtype)
        x[rng.random(n) < 0.2] = 0.5          # many ties
        x[rng.random(n) < 0.05] = -0.0        # signed zeros beside zeros
        x[rng.random(n) < 0.05] = 0.0
        got, ref = sort_parallel(x, threads), np.sort(x)
        assert got.dtype == ref.dtype and got.shape == ref.shape
        np.testing.assert_array_equal(got, ref)   # values (−0.0 == 0.0)
        assert np.all(np.diff(got) >= 0)


def test_a_wrong_merge_would_be_seen(monkeypatch):
    """The check above can fail: parts concatenated without the merge are not sorted."""
    monkeypatch.setattr(parallel_sort, "MIN_PARALLEL", 10)
    monkeypatch.setattr(parallel_sort, "_merge", lambda a, b: np.concatenate([b, a]))
    x = np.random.default_rng(0).standard_normal(1000)
    assert not np.array_equal(sort_parallel(x, 2), np.sort(x))


def test_split_scores_equals_the_masks_and_sees_non_finite():
    from arface_repro.eval.roc_merge import split_scores

    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        s = rng.standard_normal(10_001).astype(dtype)
        lab = rng.random(s.size) < 0.1
        imp, gen, finite = split_scores(s, lab)
        np.testing.assert_array_equal(imp, s[~lab])
        np.testing.assert_array_equal(gen, s[lab])
        assert finite and imp.dtype == gen.dtype == s.dtype
        for bad in (np.nan, np.inf, -np.inf):
            t = s.copy()
            t[5000] = bad
            assert split_scores(t, lab)[2] is False
