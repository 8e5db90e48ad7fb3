"""Paired tests between two results over the same trials: pairs, BLUFR trials, seeds.

An evaluation-level module: `arface compare` and the paper layer (`paper.stats`, the tables) both use it.

- McNemar's exact test on two models' per-pair decisions over the same pair list (LFW-type protocols).
  `mcnemar_min_p(k)`: the smallest p-value a difference of k pairs can ever reach (all discordant pairs on
  one side): a printed difference below 6 pairs of 6000 (0.1 points on LFW) can never be significant at 5 %.
- Paired t-test over matched values (BLUFR's 10 trials; synthetic seeds).
- Paired bootstrap of a TAR@FAR difference over pairs (genuine and impostor pairs resampled separately,
  the same draws for both models).

numpy + scipy.special only; every function takes plain arrays and returns plain numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from arface_repro.errors import FormatError
from arface_repro.eval.chunked import tar_at_far_from_top

ALPHA = 0.05


# ----------------------------------------------------------------------------- McNemar (exact)

def _binom_two_sided(k: int, n: int) -> float:
    """Exact two-sided p of k successes in n Bernoulli(0.5) trials: min(1, 2 P(X <= min(k, n-k)))."""
    if n == 0:
        return 1.0
    m = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(m + 1))
    return min(1.0, (2 * tail) / (1 << n))   # int / int is correctly rounded for any size


@dataclass(frozen=True)
class McNemar:
    n: int            # pairs
    b: int            # A right, B wrong
    c: int            # A wrong, B right
    p: float          # exact two-sided p (binomial on the b + c discordant pairs)

    @property
    def diff_pairs(self) -> int:
        return self.b - self.c


def parse_correct(bits: str, where: str) -> np.ndarray:
    if not isinstance(bits, str) or not bits or set(bits) - {"0", "1"}:
        raise FormatError(f"{where}: per_pair.correct must be a non-empty string of '0'/'1' characters")
    return np.frombuffer(bits.encode(), np.uint8) == ord("1")


def mcnemar(correct_a, correct_b) -> McNemar:
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape:
        raise FormatError(f"McNemar needs the same pairs: {a.size} and {b.size} decisions")
    nb, nc = int(np.sum(a & ~b)), int(np.sum(~a & b))
    return McNemar(int(a.size), nb, nc, _binom_two_sided(nb, nb + nc))


def mcnemar_min_p(k_pairs: int) -> float:
    """The smallest two-sided McNemar p a difference of k pairs can have (k discordant pairs, all one way)."""
    k = abs(int(k_pairs))
    return 1.0 if k == 0 else min(1.0, 2.0 * 0.5 ** k)


def min_significant_pairs(alpha: float = ALPHA) -> int:
    """Smallest k with mcnemar_min_p(k) < alpha (6 at alpha = 0.05)."""
    k = 1
    while mcnemar_min_p(k) >= alpha:
        k += 1
    return k


# ----------------------------------------------------------------------------- paired t-test

@dataclass(frozen=True)
class PairedT:
    n: int
    mean: float       # mean of a - b
    sd: float         # sd (ddof 1) of a - b
    t: float
    p: float          # two-sided
    agree: int        # how many differences have the sign of the mean (ties count as disagreeing)


def paired_t(a, b) -> PairedT:
    """Two-sided paired t-test of a - b (Student, n - 1 degrees of freedom)."""
    from scipy.special import stdtr

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise FormatError(f"paired test needs two equally long lists, got {a.shape} and {b.shape}")
    d = a - b
    n = d.size
    mean = float(d.mean()) if n else float("nan")
    agree = int(np.sum(np.sign(d) == np.sign(mean))) if n and mean != 0 else 0
    if n < 2:
        return PairedT(n, mean, float("nan"), float("nan"), float("nan"), agree)
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        p = 1.0 if mean == 0.0 else 0.0
        return PairedT(n, mean, 0.0, math.copysign(math.inf, mean) if mean else 0.0, p, agree)
    t = mean / (sd / math.sqrt(n))
    p = float(2.0 * stdtr(n - 1, -abs(t)))
    return PairedT(n, mean, sd, float(t), p, agree)


# ----------------------------------------------------------------------------- bootstrap TAR@FAR

def tar_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> float:
    """TAR at FAR (higher score = more similar), this package's strict rule (`chunked.tar_at_far_from_top`, the
    one implementation Trillion-Pairs and the large protocols use): accept iff score > the (m+1)-th largest
    impostor score, m = floor(far * N_imp), so at most m impostors are accepted."""
    s, lab = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    imp = np.sort(s[~lab])[::-1]
    gen = s[lab]
    if imp.size == 0 or gen.size == 0:
        raise FormatError("TAR@FAR needs genuine and impostor pairs")
    return tar_at_far_from_top(gen, imp, imp.size, far)[0]


@dataclass(frozen=True)
class Bootstrap:
    diff: float       # TAR_a - TAR_b on all pairs (fraction)
    se: float
    lo: float         # 95 % percentile interval
    hi: float
    p: float          # two-sided: 2 min(P(d* <= 0), P(d* >= 0)), at most 1
    reps: int


def paired_bootstrap_tar(scores_a, scores_b, labels, far: float, reps: int = 1000, seed: int = 0) -> Bootstrap:
    """Resample genuine and impostor pairs (separately, with replacement; the same draws for A and B)."""
    sa, sb = np.asarray(scores_a, np.float64), np.asarray(scores_b, np.float64)
    lab = np.asarray(labels).astype(bool)
    if not (sa.shape == sb.shape == lab.shape) or sa.ndim != 1:
        raise FormatError(f"bootstrap needs scores of the same pairs: {sa.shape}, {sb.shape}, labels {lab.shape}")
    gi, ii = np.flatnonzero(lab), np.flatnonzero(~lab)
    rng = np.random.default_rng(seed)
    diffs = np.empty(reps)
    for r in range(reps):
        idx = np.concatenate([gi[rng.integers(0, gi.size, gi.size)], ii[rng.integers(0, ii.size, ii.size)]])
        diffs[r] = tar_at_far(sa[idx], lab[idx], far) - tar_at_far(sb[idx], lab[idx], far)
    d = tar_at_far(sa, lab, far) - tar_at_far(sb, lab, far)
    p = min(1.0, 2.0 * min(np.mean(diffs <= 0), np.mean(diffs >= 0)))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return Bootstrap(float(d), float(diffs.std(ddof=1)), float(lo), float(hi), float(p), reps)


# ----------------------------------------------------------------------------- wording

def fmt_p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "p n/a"
    return "p < 1e-4" if p < 1e-4 else f"p = {p:.3g}"
