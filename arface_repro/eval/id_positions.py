"""Positions of many ids in a short sorted id list, by a lookup table, in one compiled pass (numba).

For IJB's pair lists (15.6M template ids against 23k sorted template ids): `table_positions` writes each
query's position (int32) into the result, -1 where the id is not in the list, reading every query once and
writing every position once (numpy's clip, gather and masks make five passes over arrays of that length).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

MAX_TABLE_ID = 1 << 27     # largest id for which a lookup table (int32, one entry per id) is built


@njit(cache=True, nogil=True, parallel=True)
def _lookup(table, query, out):
    n_table = table.shape[0]
    missing = 0
    for k in prange(query.shape[0]):
        q = query[k]
        p = np.int32(-1)
        if q >= 0 and q < n_table:
            p = table[q]
        out[k] = p
        if p < 0:
            missing += 1
    return missing


def table_positions(sorted_ids: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions, indices of the queries not found): positions[k] = i where sorted_ids[i] == query[k] (int32),
    -1 where no id matches. `sorted_ids`: ascending, distinct, non-negative integers up to MAX_TABLE_ID;
    `query`: integers."""
    sorted_ids = np.asarray(sorted_ids)
    if sorted_ids.size and (sorted_ids[0] < 0 or sorted_ids[-1] >= MAX_TABLE_ID):
        raise ValueError(f"ids outside 0 .. {MAX_TABLE_ID - 1}: no lookup table")
    table = np.full(int(sorted_ids[-1]) + 1 if sorted_ids.size else 0, -1, np.int32)
    table[sorted_ids] = np.arange(sorted_ids.size, dtype=np.int32)
    query = np.ascontiguousarray(query)
    if query.dtype.kind not in "iu":
        query = query.astype(np.int64)
    pos = np.empty(query.shape, np.int32)
    missing = _lookup(table, query.ravel(), pos.ravel()) if query.size else 0
    return pos, (np.flatnonzero(pos < 0) if missing else np.empty(0, np.int64))
