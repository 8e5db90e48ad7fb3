"""How sure is a difference: McNemar, paired t, paired bootstrap, resolutions and verdicts, against
values computed independently here (scipy.stats, brute force)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as ss

from arface_repro.errors import FormatError
from arface_repro.paper import stats as S
from arface_repro.paper.resolution import describe_difference


def test_mcnemar_matches_scipy_binomtest():
    rng = np.random.default_rng(0)
    for n, flip in ((6000, 0.01), (600, 0.05), (40, 0.3)):
        a = rng.random(n) > 0.05
        b = np.where(rng.random(n) < flip, ~a, a)
        x = S.mcnemar(a, b)
        nb, nc = int(np.sum(a & ~b)), int(np.sum(~a & b))
        assert (x.b, x.c, x.n) == (nb, nc, n)
        assert x.p == pytest.approx(ss.binomtest(nb, nb + nc, 0.5).pvalue, rel=1e-9)
    assert S.mcnemar([True, False], [True, False]).p == 1.0
    with pytest.raises(FormatError, match="same pairs"):
        S.mcnemar([True], [True, False])


def test_mcnemar_min_p_and_least_significant_difference():
    assert S.mcnemar_min_p(0) == 1.0 and S.mcnemar_min_p(1) == 1.0
    assert S.mcnemar_min_p(5) == pytest.approx(ss.binomtest(0, 5).pvalue)     # 0.0625
    assert S.mcnemar_min_p(6) == pytest.approx(ss.binomtest(0, 6).pvalue)     # 0.03125
    assert S.min_significant_pairs() == 6


def test_parse_correct():
    assert S.parse_correct("1101", "r").tolist() == [True, True, False, True]
    for bad in ("", "10x", None):
        with pytest.raises(FormatError, match="per_pair.correct"):
            S.parse_correct(bad, "r")


def test_paired_t_matches_scipy():
    rng = np.random.default_rng(1)
    a = rng.normal(size=10)
    b = a + rng.normal(0.3, 0.5, 10)
    r = S.paired_t(a, b)
    ref = ss.ttest_rel(a, b)
    assert r.t == pytest.approx(ref.statistic) and r.p == pytest.approx(ref.pvalue) and r.n == 10
    assert r.mean == pytest.approx(np.mean(a - b)) and r.sd == pytest.approx(np.std(a - b, ddof=1))
    assert r.agree == int(np.sum(np.sign(a - b) == np.sign(np.mean(a - b))))
    same = S.paired_t([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])   # constant difference: sd 0
    assert same.p == 0.0 and same.agree == 3
    one = S.paired_t([1.0], [0.5])
    assert one.n == 1 and np.isnan(one.p)


def _tar_bruteforce(scores, labels, far):
    imp = sorted(scores[~labels], reverse=True)
    m = int(np.floor(far * len(imp) + 1e-9))
    thr = imp[m] if m < len(imp) else -np.inf
    return float(np.mean([s > thr for s in scores[labels]]))


def test_tar_at_far_and_bootstrap():
    rng = np.random.default_rng(2)
    labels = np.r_[np.ones(400, bool), np.zeros(4000, bool)]
    a = np.where(labels, rng.normal(2.0, 1, labels.size), rng.normal(0, 1, labels.size))
    b = np.where(labels, rng.normal(1.0, 1, labels.size), rng.normal(0, 1, labels.size))
    for far in (1e-3, 1e-2, 0.1):
        assert S.tar_at_far(a, labels, far) == _tar_bruteforce(a, labels, far)
    boot = S.paired_bootstrap_tar(a, b, labels, 1e-2, reps=200, seed=3)
    # the same resampling done here by hand
    g, i = np.flatnonzero(labels), np.flatnonzero(~labels)
    r = np.random.default_rng(3)
    diffs = []
    for _ in range(200):
        idx = np.concatenate([g[r.integers(0, g.size, g.size)], i[r.integers(0, i.size, i.size)]])
        diffs.append(_tar_bruteforce(a[idx], labels[idx], 1e-2) - _tar_bruteforce(b[idx], labels[idx], 1e-2))
    diffs = np.array(diffs)
    assert boot.diff == pytest.approx(_tar_bruteforce(a, labels, 1e-2) - _tar_bruteforce(b, labels, 1e-2))
    assert boot.se == pytest.approx(diffs.std(ddof=1)) and boot.lo == pytest.approx(np.percentile(diffs, 2.5))
    assert boot.p == pytest.approx(min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))))
    assert boot.diff > 0.2 and boot.lo > 0 and boot.p < 0.01
    same = S.paired_bootstrap_tar(a, a, labels, 1e-2, reps=50)
    assert same.diff == 0 and same.p == 1.0 and same.lo == same.hi == 0


def test_verdicts():
    t = S.paired_t([90.0, 91.0, 92.0], [89.0, 89.5, 90.0])
    assert S.verdict(+1, t) == "holds (robust)" and S.verdict(-1, t) == "reversed (robust)"
    noisy = S.paired_t([90.0, 88.0, 92.0], [89.0, 89.5, 90.0])
    assert S.verdict(+1, noisy) == "holds (not significant)"
    assert S.verdict(0, t) == "paper: tie"
    assert S.verdict(+1, S.paired_t([1.0, 2.0], [1.0, 2.0])) == "tie (not reproduced)"


def test_describe_difference_in_protocol_resolution():
    s = describe_difference("lfw", "Acc", 0.06)          # Table X: Attention-net l0 98.83 vs Random l0 98.77
    assert s.startswith("4 of 6000 pairs: within noise") and "p >= 0.125" in s
    assert describe_difference("lfw", "Acc", 0.25).startswith("15 of 6000 pairs: testable only with per-pair decisions")
    assert describe_difference("lfw", "Acc", 0.0).startswith("0 of 6000 pairs")
    assert describe_difference("ytf", "Acc", 0.24).startswith("12 of 5000 pairs")
    assert "genuine probes" in describe_difference("blufr", "DIR@FAR=1%", 1.0)
    assert "genuine template pairs" in describe_difference("ijbb", "TAR@FAR=1e-4", 1.2)
