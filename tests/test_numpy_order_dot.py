"""The compiled pair kernel gives every score bit for bit as numpy's `np.sum(a[i1] * a[i2], -1)` computes it."""

from __future__ import annotations

import numpy as np
import pytest

from arface_repro.eval.numpy_order_dot import MAX_DIM, numpy_row_dot, pair_dots, summation_plan


def _rows(rng, n, d):
    """Rows with a wide dynamic range inside each row, so that another summation order changes low bits."""
    return rng.standard_normal((n, d)) * 10.0 ** rng.uniform(-3, 3, (n, d))


def _numpy_scores(f, i1, i2, step=20000):
    """The reference expression, in slices (its result per pair does not depend on the slice)."""
    return np.concatenate([np.sum(f[i1[s:s + step]] * f[i2[s:s + step]], -1) for s in range(0, i1.size, step)])


# (dimension, pairs): a few hundred thousand pairs in all, the common widths and odd ones around numpy's
# block size (128), its unroll width (8) and its split points
CASES = [(512, 120_000), (513, 60_000), (256, 50_000), (128, 50_000), (1, 5000), (3, 5000), (7, 5000), (9, 5000),
         (15, 5000), (17, 5000), (127, 5000), (129, 5000), (255, 5000), (257, 5000), (1031, 5000)]


@pytest.mark.parametrize("d,n_pairs", CASES)
def test_pair_dots_equal_numpy_bit_for_bit(d, n_pairs):
    rng = np.random.default_rng(d)
    f = _rows(rng, 2000, d)
    i1 = np.sort(rng.integers(0, 2000, n_pairs))   # IJB-like: first template sorted, second at random
    i2 = rng.integers(0, 2000, n_pairs)
    ref = _numpy_scores(f, i1, i2)
    got = pair_dots(f, i1, i2, block=4096)
    assert got.dtype == np.float64 and got.shape == ref.shape
    np.testing.assert_array_equal(got.view(np.int64), ref.view(np.int64))


def test_another_summation_order_would_differ():
    """The data above is sensitive to the order: a left-to-right sum or a BLAS dot differs in the last bits."""
    rng = np.random.default_rng(512)
    f = _rows(rng, 2000, 512)
    i1, i2 = rng.integers(0, 2000, 5000), rng.integers(0, 2000, 5000)
    ref = _numpy_scores(f, i1, i2)
    sequential = np.cumsum(f[i1] * f[i2], axis=1)[:, -1]
    blas = np.array([np.dot(f[a], f[b]) for a, b in zip(i1[:500], i2[:500])])
    assert (sequential != ref).mean() > 0.1
    assert (blas != ref[:500]).any()
    np.testing.assert_array_equal(pair_dots(f, i1, i2), ref)


def test_signed_zero_and_single_rows_follow_numpy():
    for d in (3, 9, 200):                  # the short loop, one block, a split row
        f = np.array([[-0.0] * d, [1.0] * d])
        ref = np.sum(f[[0, 0, 1]] * f[[1, 0, 1]], -1)
        got = pair_dots(f, np.array([0, 0, 1]), np.array([1, 0, 1]))
        assert not np.signbit(ref[0])   # a sum of -0.0 products comes out as +0.0 in numpy
        np.testing.assert_array_equal(got.view(np.int64), ref.view(np.int64))
    a = _rows(np.random.default_rng(1), 2, 777)
    assert numpy_row_dot(a[0], a[1]) == np.sum(a[0] * a[1])


def test_result_does_not_depend_on_threads_or_block():
    rng = np.random.default_rng(3)
    f = _rows(rng, 500, 200)
    i1, i2 = rng.integers(0, 500, 30000), rng.integers(0, 500, 30000)
    a = pair_dots(f, i1, i2, threads=1, block=1000)
    b = pair_dots(f, i1, i2, block=1 << 16)
    np.testing.assert_array_equal(a.view(np.int64), b.view(np.int64))


def test_summation_plan_is_numpys_split():
    starts, lens, program = summation_plan(513)   # 513 -> 256 + 257; 256 -> 128 + 128; 257 -> 128 + 129;
    assert starts.tolist() == [0, 128, 256, 384, 448]   # 129 -> 64 + 65
    assert lens.tolist() == [128, 128, 128, 64, 65]
    assert program.tolist() == [0, 1, -1, 2, 3, 4, -1, -1, -1]
    assert summation_plan(100)[2].tolist() == [0]


def test_bad_arguments_are_refused():
    f = np.zeros((4, 8))
    with pytest.raises(ValueError, match="out of range"):
        pair_dots(f, np.array([0, 4]), np.array([1, 2]))
    with pytest.raises(ValueError, match="out of range"):
        pair_dots(f, np.array([-1]), np.array([1]))
    with pytest.raises(ValueError, match="two equal 1-D arrays"):
        pair_dots(f, np.array([0, 1]), np.array([1]))
    with pytest.raises(ValueError, match=f"up to {MAX_DIM}"):
        pair_dots(np.zeros((2, MAX_DIM + 1)), np.array([0]), np.array([1]))
    with pytest.raises(ValueError, match="out must be"):
        pair_dots(f, np.array([0]), np.array([1]), out=np.empty(1, np.float32))
    assert pair_dots(f, np.empty(0, int), np.empty(0, int)).shape == (0,)


def test_work_items_cover_the_pairs_once_in_bounded_pieces():
    from arface_repro.eval.numpy_order_dot import _work_items

    rng = np.random.default_rng(11)
    for _ in range(500):
        bounds = np.concatenate([[0], np.cumsum(rng.integers(0, rng.integers(1, 80), rng.integers(1, 30)))])
        most = int(rng.integers(1, 60))
        items = _work_items(bounds, most)
        if bounds[-1] == 0:
            assert items.size == 0
            continue
        assert items[0, 0] == 0 and items[-1, 1] == bounds[-1] and (items[1:, 0] == items[:-1, 1]).all()
        assert ((items[:, 1] - items[:, 0] > 0) & (items[:, 1] - items[:, 0] <= most)).all()
    # large groups (first rows that fill the cache) stay apart; small ones are merged
    assert _work_items(np.array([0, 560, 1120, 1130, 1135, 2000]), 1000).tolist() == [[0, 560], [560, 1120], [1120, 1135], [1135, 2000]]


def test_int32_and_other_index_dtypes_give_the_same_bits():
    """int32 indices (IJB's template positions) are read in place; other integer dtypes are widened first."""
    rng = np.random.default_rng(32)
    f = _rows(rng, 300, 512)
    i1 = np.sort(rng.integers(0, 300, 20_000))
    i2 = rng.integers(0, 300, 20_000)
    ref = _numpy_scores(f, i1, i2)
    for dt1, dt2 in ((np.int32, np.int32), (np.int32, np.int64), (np.uint16, np.uint16)):
        got = pair_dots(f, i1.astype(dt1), i2.astype(dt2), block=2048)
        np.testing.assert_array_equal(got.view(np.int64), ref.view(np.int64))
    with pytest.raises(ValueError, match="out of range"):
        pair_dots(f, i1.astype(np.int32), np.full(i1.size, 300, np.int32))


@pytest.mark.parametrize("d", [512, 256, 129])
def test_sorted_and_shuffled_pair_lists_give_the_same_bits(d):
    """Pairs sorted by first row (grouped where they lie) and the same pairs shuffled (grouped by a counting sort)
    score alike; second rows repeat often (two pairs with one second row are scored together) and sometimes
    once (a pair scored alone)."""
    rng = np.random.default_rng(d + 1)
    f = _rows(rng, 700, d)
    i1 = np.sort(rng.integers(0, 700, 40_000))
    i2 = np.where(rng.random(40_000) < 0.9, rng.integers(0, 40, 40_000), rng.integers(0, 700, 40_000))
    ref = _numpy_scores(f, i1, i2)
    np.testing.assert_array_equal(pair_dots(f, i1, i2, block=3000).view(np.int64), ref.view(np.int64))
    perm = rng.permutation(i1.size)
    got = pair_dots(f, i1[perm], i2[perm], block=3000)
    np.testing.assert_array_equal(got.view(np.int64), ref[perm].view(np.int64))


def test_index_summary_finds_range_and_order():
    from arface_repro.eval.numpy_order_dot import _index_summary

    assert _index_summary(np.array([0, 0, 3, 5]), np.array([9, 1, 2, 0])) == (0, 9, True)
    assert _index_summary(np.array([2, 3, 1]), np.array([4, 4, 4])) == (1, 4, False)
    assert _index_summary(np.array([-2], np.int32), np.array([7], np.int32)) == (-2, 7, True)
