"""Lookup-table positions of template ids (IJB pair lists): the same positions as a binary search, misses named."""

from __future__ import annotations

import numpy as np
import pytest

from arface_repro.eval.id_positions import MAX_TABLE_ID, table_positions


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint32])
def test_positions_equal_binary_search_and_misses_are_listed(dtype):
    rng = np.random.default_rng(7)
    ids = np.unique(rng.integers(1, 50_000, 3000))
    query = rng.choice(ids, 200_000).astype(dtype)
    pos, bad = table_positions(ids, query)
    assert pos.dtype == np.int32 and bad.size == 0
    np.testing.assert_array_equal(pos, np.searchsorted(ids, query))
    absent = np.setdiff1d(np.arange(60_000), ids)[[0, 5, -1]]      # below, inside and past the table's range
    query[[3, 10, 199_999]] = absent.astype(dtype)
    pos, bad = table_positions(ids, query)
    assert bad.tolist() == [3, 10, 199_999] and (pos[bad] == -1).all()


def test_negative_ids_are_misses_and_large_ids_are_refused():
    pos, bad = table_positions(np.array([0, 2, 9]), np.array([-1, 2, 9, 10, 0]))
    assert pos.tolist() == [-1, 1, 2, -1, 0] and bad.tolist() == [0, 3]
    with pytest.raises(ValueError, match="lookup table"):
        table_positions(np.array([1, MAX_TABLE_ID]), np.array([1]))
    assert table_positions(np.array([1, 2]), np.empty(0, np.int64))[0].size == 0
