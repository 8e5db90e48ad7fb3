"""The synthetic Table X's diagnostics (not in the paper): what the trained networks and the Attention-Nets did.

Two sections for `arface_repro.paper.report` structures (rendered by the existing table code):

1. "diagnostic rows and columns": per synthetic row (the table's, then the manifest's `diagnostic_rows`: the
   fixed-mask rows) the held-out Acc, the training accuracy's level (mean over the last 10 % of the steps; for
   ARFace this is the REINFORCE reward), the same network's Acc under the diagnostic test masks (off, oracle,
   nose dropped: `synthetic_task.TEST_MASKS`), and for ARFace rows the policy's state on held-out images: mean
   entropy against ln 31 (the uniform policy), P(drop nose | occluded) and P(drop nose | clean) in percent with
   the mean 95 % interval over images, and a verdict per seed (below).
2. "the room a conditional policy has": paired differences over seeds between the three fixed policies
   (never drop = the plain row, always drop the nose, the oracle: drop it iff occluded), Random vs plain, and
   each ARFace row against the same network with its test mask off.

Policy verdict of one seed (choice, this package's thresholds): `uniform` when the entropy is at least 95 % of
ln 31; `conditional` when P(drop | occluded) - P(drop | clean) exceeds both 10 points and the sum of the two
95 % half-widths; otherwise `unconditional` (the policy moved, but onto a mode that does not depend on the
occlusion, e.g. a collapse onto one mode). The reward is `saturated` when its level is >= 95 %: the batch reward
R then hardly varies between batches, so R - b carries little signal for REINFORCE.
"""

from __future__ import annotations

import numpy as np

from arface_repro.paper import stats as S
from arface_repro.paper.report import Section, SeedRuns
from arface_repro.paper.synthetic_task import LN_MODES, TEST_MASKS

UNIFORM_FRACTION = 0.95      # entropy >= 95 % of ln 31: the policy is (still) uniform
CONDITIONAL_GAP = 10.0       # points of P(drop | occluded) - P(drop | clean)
SATURATED_REWARD = 95.0      # training accuracy level (percent) at or above which the batch reward is saturated


def policy_verdict(metrics: dict) -> str:
    """uniform / conditional / unconditional for one ARFace record's metrics ('' when it has no policy state)."""
    if not isinstance(metrics.get("policy_entropy"), (int, float)):
        return ""
    if metrics["policy_entropy"] >= UNIFORM_FRACTION * LN_MODES:
        return "uniform"
    gap = metrics.get("p_drop_occluded", 0.0) - metrics.get("p_drop_clean", 0.0)
    half = metrics.get("p_drop_occluded.ci95", 0.0) + metrics.get("p_drop_clean.ci95", 0.0)
    return "conditional" if gap > max(CONDITIONAL_GAP, half) else "unconditional"


def _mean_sd(v) -> str:
    v = np.asarray(list(v), np.float64)
    if v.size == 0:
        return "-"
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if v.size > 1 else f"{v[0]:.2f}"


def _metric(sr: SeedRuns, name: str) -> str:
    return _mean_sd(sr.values(name).values())


def _drop(sr: SeedRuns, which: str) -> str:
    v, h = sr.values(f"p_drop_{which}"), sr.values(f"p_drop_{which}.ci95")
    if not v:
        return ""
    return f"{np.mean(list(v.values())):.1f} (±{np.mean(list(h.values())):.1f})"


def _verdicts(sr: SeedRuns) -> str:
    per_seed = [policy_verdict(r.get("metrics") or {}) for _, r in sorted(sr.records.items())]
    per_seed = [v for v in per_seed if v]
    counts = {v: per_seed.count(v) for v in dict.fromkeys(per_seed)}
    out = ", ".join(f"{v} {n}/{len(per_seed)}" for v, n in counts.items())
    level = list(sr.values("train_acc_tail").values())
    if per_seed and level:
        sat = sum(x >= SATURATED_REWARD for x in level)
        out += f"; reward saturated {sat}/{len(level)}"
    return out


POLICY_COLUMN = "policy per seed"
HEADER = ["row", "config", "Acc", "train acc (last 10 %)", *TEST_MASKS.values(),
          f"policy entropy (ln 31 = {LN_MODES:.3f})", "P(drop nose | occluded) %", "P(drop nose | clean) %",
          POLICY_COLUMN]


def diagnostics_section(tid: str, rows: dict[str, tuple[str, SeedRuns]]) -> Section:
    """`rows`: {row id: (label, SeedRuns)} in print order."""
    out = []
    for _, (label, sr) in rows.items():
        out.append([label, sr.config, _metric(sr, "Acc"), _metric(sr, "train_acc_tail"),
                    *[_metric(sr, name) for name in TEST_MASKS.values()],
                    _metric(sr, "policy_entropy") if sr.values("policy_entropy") else "",
                    _drop(sr, "occluded"), _drop(sr, "clean"), _verdicts(sr)])
    notes = ["NOT IN THE PAPER. Acc = held-out 10-fold accuracy with the row's own test mask (ARFace: the "
             "Attention-Net's argmax; fixed-mask rows: their fixed mask; others: none); the next three columns are the "
             "same network under a given test mask. Mean ± sd over seeds.",
             "train acc = mean training accuracy over the last 10 % of the steps (on the masked batch: for ARFace this "
             "is the REINFORCE reward). Policy columns: mean over seeds of the held-out mean entropy and of "
             "P(drop nose) (± the mean 95 % half-width over images). Policy per seed: uniform = entropy >= 95 % of "
             "ln 31; conditional = P(drop | occluded) - P(drop | clean) > max(10 points, both half-widths); "
             "unconditional = neither (e.g. collapsed onto one mode); reward saturated = its level >= 95 %."]
    return Section(f"Table {tid} - synthetic diagnostics (not in the paper)", HEADER, out, notes)


def _test(a: dict[int, float], b: dict[int, float]) -> str:
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return "-"
    t = S.paired_t([a[s] for s in seeds], [b[s] for s in seeds])
    sd = t.sd if np.isfinite(t.sd) else 0.0
    return f"{t.mean:+.2f} ± {sd:.2f} ({t.agree}/{t.n}, {S.fmt_p(t.p)})"


def room_section(tid: str, plain: SeedRuns | None, random: SeedRuns | None, fixed: dict[str, SeedRuns],
                 arface: dict[str, tuple[str, SeedRuns]]) -> Section:
    """Paired differences over seeds: the fixed policies, Random vs plain, ARFace's argmax test mask vs off."""
    rows = []
    never = plain.values("Acc") if plain else {}
    oracle = fixed["oracle"].values("Acc") if "oracle" in fixed else {}
    drop = fixed["drop"].values("Acc") if "drop" in fixed else {}
    rows.append(["fixed: oracle (drop the nose iff occluded) - never drop (plain)", _test(oracle, never)])
    rows.append(["fixed: oracle - always drop the nose", _test(oracle, drop)])
    rows.append(["fixed: always drop the nose - never drop (plain)", _test(drop, never)])
    if plain is not None:
        rows.append(["plain with the nose dropped at test - plain", _test(plain.values(TEST_MASKS["drop"]), never)])
        rows.append(["plain with the oracle test mask - plain", _test(plain.values(TEST_MASKS["oracle"]), never)])
    if random is not None:
        rows.append(["Random - plain", _test(random.values("Acc"), never)])
    for label, sr in arface.values():
        rows.append([f"{label}: argmax test mask - test mask off", _test(sr.values("Acc"), sr.values(TEST_MASKS["off"]))])
        rows.append([f"{label} - fixed oracle", _test(sr.values("Acc"), oracle)])
    notes = ["NOT IN THE PAPER. Held-out Acc differences, mean ± sd over the seeds both rows have (seeds agreeing with "
             "the mean's sign / seeds, two-sided paired t-test over seeds). The first three lines are the room an ideal "
             "Attention-Net has: the oracle must beat both unconditional policies for a conditional mask to be worth "
             "learning."]
    return Section(f"Table {tid} - the room a conditional policy has (synthetic, not in the paper)",
                   ["a - b", "Acc a - b: mean ± sd (seeds agreeing, paired t)"], rows, notes)
