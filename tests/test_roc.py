import numpy as np
import pytest
from sklearn.metrics import roc_curve

from arface_repro.errors import FormatError
from arface_repro.eval.metric_keys import rate_key, rate_text
from arface_repro.eval.roc import downsample_curve
from arface_repro.eval.roc_table import roc_table


def tar_at_far(scores, labels, fars, rule="nearest"):
    """One rule's table from the package's ROC path."""
    return roc_table(np.asarray(scores, np.float64), np.asarray(labels), fars, (rule,), 0)[0][rule]


def roc_points(scores, labels, max_points=2000):
    return roc_table(scores, labels, (), (), max_points)[1]


def insightface_nearest(scores, labels, fars):
    """insightface's IJB table loop, written out."""
    fpr, tpr, _ = roc_curve(labels, scores)
    fpr, tpr = np.flipud(fpr), np.flipud(tpr)
    out = {}
    for f in fars:
        _, idx = min(zip(abs(fpr - f), range(len(fpr))))
        out[f] = tpr[idx]
    return out


def test_nearest_rule_matches_insightface_loop_on_ties():
    rng = np.random.default_rng(0)
    scores = np.round(rng.standard_normal(5000), 1)      # many tied scores
    labels = rng.random(5000) < 0.3
    scores[labels] += 1.0
    fars = [1e-4, 1e-3, 1e-2, 1e-1, 0.5]
    got = tar_at_far(scores, labels, fars, "nearest")
    ref = insightface_nearest(scores, labels, fars)
    for f in fars:
        assert got[f] == ref[f]


def test_strict_rule_on_crafted_scores():
    # impostors 0.9, 0.8, 0.7, 0.6 (4), genuines 0.95, 0.85, 0.8, 0.5 (4)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.95, 0.85, 0.8, 0.5])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    strict = tar_at_far(scores, labels, [0.0, 0.25, 0.5, 1.0], "strict")
    # FAR 0: threshold above 0.9 -> only 0.95 accepted
    assert strict[0.0] == 0.25
    # FAR 0.25: the most permissive threshold admitting one impostor is 0.85 -> genuines 0.95, 0.85
    assert strict[0.25] == 0.5
    # FAR 0.5: threshold 0.8 admits 0.9 and 0.8 (tied genuine 0.8 also accepted) -> 3 of 4
    assert strict[0.5] == 0.75
    assert strict[1.0] == 1.0
    nearest = tar_at_far(scores, labels, [0.3], "nearest")
    assert nearest[0.3] in (0.25, 0.5, 0.75)


def test_bad_inputs():
    with pytest.raises(FormatError, match="both genuine"):
        tar_at_far([0.1, 0.2], [1, 1], [1e-3])
    with pytest.raises(ValueError, match="rule"):
        tar_at_far([0.1, 0.2], [1, 0], [1e-3], rule="interp")
    with pytest.raises(FormatError, match="NaN"):
        tar_at_far([np.nan, 0.2], [1, 0], [1e-3])


def test_downsampled_curve_keeps_ends_and_is_monotone():
    rng = np.random.default_rng(1)
    s = rng.standard_normal(200000)
    y = rng.random(200000) < 0.5
    s[y] += 2
    c = roc_points(s, y, max_points=300)
    fpr, tpr, _ = roc_curve(y, s)
    assert c == downsample_curve(fpr, tpr, 300)   # sklearn's points, downsampled
    assert len(c["fpr"]) <= 300
    assert c["fpr"][0] == 0.0 and c["fpr"][-1] == 1.0 and c["tpr"][-1] == 1.0
    assert np.all(np.diff(c["fpr"]) >= 0) and np.all(np.diff(c["tpr"]) >= 0)
    small = downsample_curve([0, 0.5, 1], [0, 0.7, 1], 300)
    assert small == {"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.7, 1.0]}


def test_metric_keys_one_spelling():
    assert rate_text(1e-3) == "1e-3" and rate_text(1e-6) == "1e-6" and rate_text(0.05) == "0.05"
    assert rate_text(1e-9) == "1e-9" and rate_text(0.1) == "1e-1" and rate_text(0.3) == "0.3"
    assert rate_key("TAR@FAR", 1e-4) == "TAR@FAR=1e-4" and rate_key("Id@FPR", 1e-3) == "Id@FPR=1e-3"
