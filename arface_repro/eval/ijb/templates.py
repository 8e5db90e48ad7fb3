"""IJB template pooling in one compiled pass (numba), in the float32 arithmetic of insightface's scripts.

For each template (in parallel over templates) and each of its media in order: every image's combined
feature f + g ('add' flip mode; f alone for 'none') times its faceness score, in float32; the media's images
added left to right in float32 and, for more than one image, divided by their count in float32 (np.mean);
the media results added left to right in float32; the sum stored in float64. These are the operations
arface_repro.eval.ijb.metric's numpy path performs (and the reference's loops), one float32 rounding each, in the
same order, with fastmath off: the results are bit-identical (tests/test_ijb_reference.py). Rows are read
where they lie (a memory-mapped store is not copied).
"""

from __future__ import annotations

import numpy as np
from numba import get_parallel_chunksize, njit, prange, set_parallel_chunksize

TEMPLATE_CHUNK = 64      # templates per piece of the parallel loop


@njit(cache=True, nogil=True, fastmath=False, parallel=True)
def _pool(features, flip, use_flip, weights, use_weights, rows, m_start, m_count, t_first_media, out):
    d = features.shape[1]
    for t in prange(t_first_media.shape[0] - 1):
        acc = np.zeros(d, np.float32)
        med = np.zeros(d, np.float32)
        for j in range(t_first_media[t], t_first_media[t + 1]):
            first_image = m_start[j]
            for k in range(first_image, first_image + m_count[j]):
                r = rows[k]
                w = weights[k]
                for c in range(d):
                    v = features[r, c]
                    if use_flip:
                        v = v + flip[r, c]
                    if use_weights:
                        v = v * w
                    if k == first_image:
                        med[c] = v
                    else:
                        med[c] = med[c] + v
            if m_count[j] > 1:
                cnt = np.float32(m_count[j])
                for c in range(d):
                    med[c] = med[c] / cnt
            if j == t_first_media[t]:
                for c in range(d):
                    acc[c] = med[c]
            else:
                for c in range(d):
                    acc[c] = acc[c] + med[c]
        for c in range(d):
            out[t, c] = np.float64(acc[c])


def pool_templates(features: np.ndarray, flip: np.ndarray | None, weights: np.ndarray | None, rows: np.ndarray,
                   m_start: np.ndarray, m_count: np.ndarray, t_first_media: np.ndarray) -> np.ndarray:
    """(templates, d) float64 sums of media means (see the module docstring).

    Image k of the pooling order is feature row rows[k] (of `features` and `flip`, float32 C-contiguous)
    with faceness weights[k] (None: no weighting); media j = images m_start[j] .. + m_count[j] - 1;
    template t = media t_first_media[t] .. t_first_media[t + 1] - 1."""
    use_flip = flip is not None
    use_weights = weights is not None
    flip_arr = flip if use_flip else features
    w = np.ascontiguousarray(weights, np.float32) if use_weights else np.zeros(len(rows), np.float32)
    out = np.empty((t_first_media.size - 1, features.shape[1]), np.float64)
    before = get_parallel_chunksize()
    # templates handed out TEMPLATE_CHUNK at a time (dynamic schedule): templates differ in size, and a thread
    # slowed by other work takes fewer
    set_parallel_chunksize(TEMPLATE_CHUNK)
    try:
        _pool(features, flip_arr, use_flip, w, use_weights, np.ascontiguousarray(rows, np.int64),
              np.ascontiguousarray(m_start, np.int64), np.ascontiguousarray(m_count, np.int64),
              np.ascontiguousarray(t_first_media, np.int64), out)
    finally:
        set_parallel_chunksize(before)
    return out
