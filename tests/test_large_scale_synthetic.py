"""The synthetic IJB pair list: the round-by-round draw with a table of kept pairs gives, for every seed, the
pairs and order of the loop it replaced (which deduplicated everything kept so far in each round: hours when
the pair count covers the whole gallery × probe grid, as at `make_synthetic_large.py ijbc --scale 0.05`).
That loop is kept here, copied, as the reference."""

from __future__ import annotations

import numpy as np
import pytest

from arface_repro.eval import large_scale_synthetic as synth


def _previous_impostor_keys(rng, n_imp, n_subjects, n_templates, gen_t1, gen_t2):
    """The previous loop of `synth_ijb`, verbatim apart from its packaging as a function."""
    gen_key = gen_t1.astype(np.int64) * n_templates + gen_t2
    imp = np.empty(0, np.int64)
    while imp.size < n_imp:
        k = n_imp - imp.size
        draw = rng.integers(0, n_subjects, k).astype(np.int64) * n_templates + rng.integers(n_subjects, n_templates, k)
        cand = np.concatenate([imp, draw])
        _, first = np.unique(cand, return_index=True)
        cand = cand[np.sort(first)]
        imp = cand[~np.isin(cand, gen_key)]
    return imp


@pytest.mark.parametrize("n_subjects,n_templates,n_pairs,seed", [
    (3, 9, 10, 0),        # fewer pairs than the grid
    (6, 20, 10_000, 1),   # the whole grid (the case that was slow)
    (20, 90, 800, 2),
    (40, 200, 7_000, 3),  # the whole grid minus a few pairs
    (5, 12, 0, 4),        # genuine pairs only
])
def test_impostor_draw_equals_previous_loop(n_subjects, n_templates, n_pairs, seed):
    subj_rng = np.random.default_rng(seed + 100)
    subj = np.concatenate([np.arange(n_subjects), subj_rng.integers(0, n_subjects, n_templates - n_subjects)])
    gen_t2 = np.arange(n_subjects, n_templates)
    gen_t1 = subj[gen_t2]
    n_probe = n_templates - n_subjects
    n_imp = min(max(0, n_pairs - n_probe), n_subjects * n_probe - n_probe)
    got = synth._impostor_keys(np.random.default_rng(seed), n_imp, n_subjects, n_templates, gen_t1, gen_t2)
    ref = _previous_impostor_keys(np.random.default_rng(seed), n_imp, n_subjects, n_templates, gen_t1, gen_t2)
    assert got.dtype == ref.dtype == np.int64
    np.testing.assert_array_equal(got, ref)
    assert np.unique(got).size == got.size == n_imp
    assert not np.isin(got, gen_t1.astype(np.int64) * n_templates + gen_t2).any()


def test_synth_ijb_whole_grid_is_every_pair_once():
    """At a size whose pair count exceeds the grid, every gallery × probe template pair appears exactly once."""
    data = synth.synth_ijb(n_images=400, n_templates=60, n_pairs=10**6, n_subjects=12, seed=7)
    keys = (data.t1.astype(np.int64) - 1) * 60 + (data.t2 - 1)
    assert keys.size == 12 * 48 == np.unique(keys).size
    assert data.labels.sum() == 48   # one genuine pair per probe template
