"""The resolution of each protocol: how big one pair / probe / trial is, and what that says about a difference.

`describe_difference(protocol, metric, delta)` words the size of a printed difference in the protocol's own
units, e.g. "0.06 points = 4 of 6000 pairs: within noise whatever the per-pair decisions (McNemar p >= 0.125)".
Counts are the protocols' own, from their definitions (`counts` in protocols/<name>.yaml: LFW View 2, BLUFR
config, IJB-B/C 1:1 lists); tests check the BLUFR and LFW ones against the files in ../shared when present.
"""

from __future__ import annotations

from arface_repro.eval.protocols.spec import load_spec, spec_names
from arface_repro.paper.stats import ALPHA, mcnemar_min_p


def counts(protocol: str) -> dict[str, float]:
    """The protocol's own sizes (`counts` of protocols/<protocol>.yaml; empty for an unknown protocol)."""
    return load_spec(protocol).counts if protocol in spec_names() else {}


def pairs_of(protocol: str, delta_points: float) -> float:
    return abs(delta_points) * counts(protocol)["pairs"] / 100.0


def describe_difference(protocol: str, metric: str, delta_points: float) -> str:
    """Short words for a printed difference (in percentage points) in the protocol's own units."""
    d = abs(delta_points)
    c = counts(protocol)
    if "pairs" in c and metric.startswith("Acc"):
        n = c["pairs"]
        k = round(pairs_of(protocol, d))
        if k == 0:
            return f"0 of {n} pairs: no difference"
        p = mcnemar_min_p(k)
        if p >= ALPHA:
            return f"{k} of {n} pairs: within noise (McNemar p >= {p:.3g} whatever the pairs)"
        return f"{k} of {n} pairs: testable only with per-pair decisions (McNemar p >= {p:.2g} at best)"
    if "genuine_pairs" in c and metric.startswith("VR"):   # BLUFR: per-trial means
        g = c["genuine_pairs"]
        return f"{d * g / 100:.0f} of ~{g:,.0f} genuine pairs/trial; no trial spread printed"
    if "genuine_probes" in c and metric.startswith("DIR"):
        g = c["genuine_probes"]
        return f"{d * g / 100:.0f} of ~{g:,.0f} genuine probes/trial; no trial spread printed"
    if "genuine_template_pairs" in c:   # IJB-B/C 1:1
        g = c["genuine_template_pairs"]
        return f"{d * g / 100:.0f} of {g:,} genuine template pairs; no scores printed"
    return "per-item counts unknown; not testable from the printed numbers"


def within_resolution(protocol: str, metric: str, delta_points: float, last_digit: float = 0.01) -> bool:
    """Is a printed difference within the paper's own resolution, i.e. a tie rather than a claim?

    LFW-type pair protocols: when McNemar's exact test could not reach p < 0.05 whatever the per-pair decisions
    (fewer than 6 discordant pairs: <= 0.08 points on LFW's 6000). Other protocols, whose printed numbers carry no
    spread: a difference of at most one unit of the last printed digit (`last_digit`, in the same units as
    `delta_points`)."""
    d = abs(delta_points)
    if "pairs" in counts(protocol) and metric.startswith("Acc"):
        k = round(pairs_of(protocol, d))
        return k == 0 or mcnemar_min_p(k) >= ALPHA
    return d <= abs(last_digit) * (1 + 1e-9)
