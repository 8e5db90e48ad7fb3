"""The resolution of each protocol: how big one pair / probe / trial is, and what that says about a difference.

`describe_difference(protocol, metric, delta)` words the size of a printed difference in the protocol's own
units, e.g. "0.06 points = 4 of 6000 pairs: within noise whatever the per-pair decisions (McNemar p >= 0.125)".
Counts are the protocols' own (LFW View 2, BLUFR config, IJB-B/C 1:1 lists); tests check the BLUFR and LFW
ones against the files in ../shared when present.
"""

from __future__ import annotations

from arface_repro.paper.stats import ALPHA, mcnemar_min_p

# 10-fold pair protocols: number of pairs
PAIR_COUNTS = {"lfw": 6000, "calfw": 6000, "cplfw": 6000, "cfp-fp": 7000, "cfp-ff": 7000, "ytf": 5000, "agedb30": 6000}
# BLUFR (blufr_lfw_config.mat): per-trial means over the 10 trials
BLUFR_GENUINE_PAIRS = 156915.4        # genuine pairs of a test set (the paper prints 156,915)
BLUFR_GENUINE_PROBES = 4350.6         # genuine probes of the open-set split
BLUFR_IMPOSTOR_PROBES = 4357.7        # impostor probes: DIR@FAR=1% rests on ~44 of them
# IJB 1:1 (template pairs of the protocols' *_template_pair_label.txt)
IJB_GENUINE = {"ijbb": 10270, "ijbc": 19557}
IJB_IMPOSTOR = {"ijbb": 8000000, "ijbc": 15638932}


def pairs_of(protocol: str, delta_points: float) -> float:
    return abs(delta_points) * PAIR_COUNTS[protocol] / 100.0


def describe_difference(protocol: str, metric: str, delta_points: float) -> str:
    """Short words for a printed difference (in percentage points) in the protocol's own units."""
    d = abs(delta_points)
    if protocol in PAIR_COUNTS and metric.startswith("Acc"):
        n = PAIR_COUNTS[protocol]
        k = round(pairs_of(protocol, d))
        if k == 0:
            return f"0 of {n} pairs: no difference"
        p = mcnemar_min_p(k)
        if p >= ALPHA:
            return f"{k} of {n} pairs: within noise (McNemar p >= {p:.3g} whatever the pairs)"
        return f"{k} of {n} pairs: testable only with per-pair decisions (McNemar p >= {p:.2g} at best)"
    if protocol == "blufr" and metric.startswith("VR"):
        return f"{d * BLUFR_GENUINE_PAIRS / 100:.0f} of ~{BLUFR_GENUINE_PAIRS:,.0f} genuine pairs/trial; no trial spread printed"
    if protocol == "blufr" and metric.startswith("DIR"):
        return f"{d * BLUFR_GENUINE_PROBES / 100:.0f} of ~{BLUFR_GENUINE_PROBES:,.0f} genuine probes/trial; no trial spread printed"
    if protocol in IJB_GENUINE:
        g = IJB_GENUINE[protocol]
        return f"{d * g / 100:.0f} of {g:,} genuine template pairs; no scores printed"
    return "per-item counts unknown; not testable from the printed numbers"


def within_resolution(protocol: str, metric: str, delta_points: float, last_digit: float = 0.01) -> bool:
    """Is a printed difference within the paper's own resolution, i.e. a tie rather than a claim?

    LFW-type pair protocols: when McNemar's exact test could not reach p < 0.05 whatever the per-pair decisions
    (fewer than 6 discordant pairs: <= 0.08 points on LFW's 6000). Other protocols, whose printed numbers carry no
    spread: a difference of at most one unit of the last printed digit (`last_digit`, in the same units as
    `delta_points`)."""
    d = abs(delta_points)
    if protocol in PAIR_COUNTS and metric.startswith("Acc"):
        k = round(pairs_of(protocol, d))
        return k == 0 or mcnemar_min_p(k) >= ALPHA
    return d <= abs(last_digit) * (1 + 1e-9)
