"""The table path without full-length arrays (eval.roc_table) gives the numbers of the full sklearn-equal curve
(`_fast_roc` below + eval.roc's rules), and its parts (bucket sort, kept-point walk, strict point) those of theirs.

`_fast_roc` is the package's previous IJB curve (the full ROC, sorted and merged from the top), kept here
only as the reference: the package has one ROC/TAR implementation, `eval.roc_table`. The reference itself is
checked against `sklearn.metrics.roc_curve` (`test_reference_curve_equals_sklearn_with_ties`)."""

from __future__ import annotations

import numpy as np
import pytest

from arface_repro.errors import FormatError
from arface_repro.eval import bucket_sort
from arface_repro.eval.bucket_sort import sort_bucketed
from arface_repro.eval.roc import downsample_curve, tar_at_far_from_roc
from arface_repro.eval.roc_merge import kept_roc_counts, split_scores, strict_counts
from arface_repro.eval.roc_table import roc_table

FARS = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 0.25, 0.5, 1.0, 0.0, 2.0, -0.1]


def roc_counts(imp: np.ndarray, gen: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fps, tps, keep) of the full ROC from ascending impostor and genuine scores, by plain numpy: per distinct
    score v (descending; -0.0 and 0.0 one value, as ==) the counts of impostor/genuine scores >= v, after the
    leading (0, 0); keep = both ends and every inner point where fps or tps changes slope (sklearn's
    drop_intermediate)."""
    v = np.unique(np.concatenate([imp, gen]))[::-1]
    fps = np.concatenate([[0], imp.size - np.searchsorted(imp, v, side="left")]).astype(np.int64)
    tps = np.concatenate([[0], gen.size - np.searchsorted(gen, v, side="left")]).astype(np.int64)
    keep = np.ones(fps.size, bool)
    if fps.size > 3:
        d2f = fps[3:] - 2 * fps[2:-1] + fps[1:-2]
        d2t = tps[3:] - 2 * tps[2:-1] + tps[1:-2]
        keep[2:-1] = (d2f != 0) | (d2t != 0)
    return fps, tps, keep


def _fast_roc(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, keep): the full ROC exactly as `sklearn.metrics.roc_curve(labels, scores,
    drop_intermediate=False)` returns it, and the mask of the points sklearn keeps with its default
    drop_intermediate=True. The impostor and genuine scores are sorted apart (in their dtype) and merged from
    the top (`roc_counts` above): per distinct score value (descending) tps/fps are the numbers of
    genuine/impostor scores >= it, the integers sklearn accumulates; the rates are the same float64 divisions."""
    scores = np.asarray(scores).ravel()
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    labels = np.asarray(labels).ravel()
    if labels.shape != scores.shape:
        raise FormatError(f"{labels.size} labels for {scores.size} scores")
    imp, gen, finite = split_scores(scores, labels if labels.dtype == np.bool_ else labels != 0)
    if not finite:
        raise FormatError("scores contain NaN or inf")
    imp = np.sort(imp)
    gen = np.sort(gen)
    if imp.size == 0 or gen.size == 0:
        raise FormatError("a ROC needs both genuine and impostor scores")
    fps, tps, keep = roc_counts(imp, gen)
    fps = fps.astype(np.float64)
    tps = tps.astype(np.float64)
    return fps / fps[-1], tps / tps[-1], keep


def _full_curve_table(scores, labels, fars, max_points):
    """The previous implementation: the full curve of _fast_roc, the rules and the curve applied to it."""
    fpr, tpr, keep = _fast_roc(scores, labels)
    out = {"nearest": tar_at_far_from_roc(fpr[keep], tpr[keep], fars, "nearest"),
           "strict": tar_at_far_from_roc(fpr, tpr, fars, "strict")}
    return out, downsample_curve(fpr[keep], tpr[keep], max_points)


def _scores(rng, n, dtype, decimals, p_gen):
    labels = rng.random(n) < p_gen
    labels[:2] = [True, False]
    scores = rng.standard_normal(n) + 1.5 * labels
    if decimals is not None:                       # many ties, between and across the two sides
        scores = np.round(scores, decimals)
    scores[rng.random(n) < 0.02] = 0.0
    scores[rng.random(n) < 0.02] = -0.0            # signed zeros beside zeros
    return scores.astype(dtype), labels


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n,decimals,p_gen", [(200_000, None, 0.01), (150_000, 3, 0.05), (100_000, 1, 0.3),
                                              (5000, 2, 0.5), (40, 1, 0.2), (3, None, 0.5)])
def test_table_and_curve_equal_the_full_curve(dtype, n, decimals, p_gen):
    rng = np.random.default_rng(n + (decimals or 0))
    scores, labels = _scores(rng, n, dtype, decimals, p_gen)
    for max_points in (2000, 50):
        got, curve = roc_table(scores, labels, FARS, max_points=max_points)
        ref, ref_curve = _full_curve_table(scores, labels, FARS, max_points)
        assert got == ref
        assert curve == ref_curve


def test_reference_curve_equals_sklearn_with_ties():
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(4)
    for n, decimals in ((5000, 2), (3000, 6), (12, 1)):
        labels = rng.random(n) < 0.2
        labels[:2] = [True, False]
        scores = np.round(rng.standard_normal(n) + labels, decimals).astype(np.float32)
        fpr, tpr, keep = _fast_roc(scores, labels)
        f0, t0, _ = roc_curve(labels, scores, drop_intermediate=False)
        f1, t1, _ = roc_curve(labels, scores)
        np.testing.assert_array_equal(fpr, f0)
        np.testing.assert_array_equal(tpr, t0)
        np.testing.assert_array_equal(fpr[keep], f1)
        np.testing.assert_array_equal(tpr[keep], t1)


def test_one_rule_without_curve_and_the_checks():
    rng = np.random.default_rng(3)
    scores, labels = _scores(rng, 30_000, np.float64, 2, 0.1)
    strict_only = {"strict": _full_curve_table(scores, labels, FARS, 10)[0]["strict"]}
    assert roc_table(scores, labels, FARS, ("strict",), 0) == (strict_only, None)
    bad = scores.copy()
    bad[7] = np.nan
    with pytest.raises(FormatError, match="NaN or inf"):
        roc_table(bad, labels, FARS)
    with pytest.raises(FormatError, match="both genuine and impostor"):
        roc_table(scores, np.zeros(scores.size, bool), FARS)
    with pytest.raises(FormatError, match="labels for"):
        roc_table(scores, labels[:-1], FARS)


def test_kept_points_equal_the_full_walk_filtered():
    rng = np.random.default_rng(11)
    for n, decimals in ((50_000, 2), (20_000, None), (7, 0), (2, None)):
        scores, labels = _scores(rng, n, np.float64, decimals, 0.2)
        imp, gen = np.sort(scores[~labels]), np.sort(scores[labels])
        fps, tps, keep = roc_counts(imp, gen)
        kf, kt = kept_roc_counts(imp, gen)
        np.testing.assert_array_equal(kf, fps[keep])
        np.testing.assert_array_equal(kt, tps[keep])


def test_strict_point_is_the_last_qualifying_point_of_the_full_curve():
    rng = np.random.default_rng(12)
    scores, labels = _scores(rng, 100_003, np.float64, 2, 0.05)
    imp, gen = np.sort(scores[~labels]), np.sort(scores[labels])
    fps, tps, _ = roc_counts(imp, gen)
    fpr = fps / float(imp.size)
    # targets exactly at, just below and just above achievable FPRs, where a rounded count would slip
    exact = [float(k) / imp.size for k in (1, 7, 95, 950, 9500)]
    fars = exact + [np.nextafter(f, 0) for f in exact] + [np.nextafter(f, 1) for f in exact] + [1e-5, 0.3]
    got = strict_counts(imp, gen, fars)
    for far, t in zip(fars, got):
        n_ok = int(np.searchsorted(fpr, far, side="right"))
        assert t == int(tps[n_ok - 1])


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bucket_sort_gives_np_sort_values(monkeypatch, threads, dtype):
    monkeypatch.setattr(bucket_sort, "MIN_SIZE", 100)   # small arrays take the bucket path too
    rng = np.random.default_rng(threads)
    for n in (100, 1001, 65_537, 300_001):
        x = rng.standard_normal(n).astype(dtype)
        x[rng.random(n) < 0.1] = 0.5          # ties
        x[rng.random(n) < 0.03] = -0.0        # signed zeros beside zeros
        x[rng.random(n) < 0.03] = 0.0
        x[rng.random(n) < 0.001] = 40.0       # far values: a few large buckets (the quicksort branch)
        got, ref = sort_bucketed(x, threads), np.sort(x)
        assert got.dtype == ref.dtype and got.shape == ref.shape
        np.testing.assert_array_equal(got, ref)


def test_bucket_sort_falls_back_on_nan_and_extreme_ranges(monkeypatch):
    monkeypatch.setattr(bucket_sort, "MIN_SIZE", 10)
    x = np.random.default_rng(0).standard_normal(1000)
    for special in ([np.nan], [1e308, -1e308], [5e-324]):
        y = x * 1e-320 if special == [5e-324] else x.copy()
        y[:len(special)] = special
        np.testing.assert_array_equal(sort_bucketed(y), np.sort(y))
    assert np.array_equal(sort_bucketed(np.full(500, 2.0)), np.full(500, 2.0))
