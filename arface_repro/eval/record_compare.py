"""Two or more result records of one protocol side by side, each against the first with the paired test the
protocol allows (the tests of `eval.paired_tests`):

- accuracy of a pair protocol (LFW, CFP, ... `per_pair.correct`): McNemar's exact test on the per-pair decisions;
- TAR@FAR of a record with a scores sidecar: paired bootstrap over pairs (genuine and impostor pairs resampled
  separately, the same draws for both records; TAR read with the strict rule of `tar_at_far`);
- a metric with per-trial values (BLUFR's 10 trials): paired t-test over the trials both ran.

Records are refused (ConfigError naming both files) when their protocols differ, or when the protocol files they
were evaluated on differ: every input other than the features / model (the pair list, the BLUFR config, the IJB
metadata, ...) must have the same sha256 in both, and pair counts must agree. A metric without such a test is
shown with its difference and the reason no test applies.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from arface_repro.errors import ConfigError, FormatError
from arface_repro.eval import paired_tests as T
from arface_repro.io.record_sniff import check_record_file
from arface_repro.io.records import load_record, load_sidecar

_NOT_PROTOCOL_FILES = {"features", "model", "distractor_features", "probe_features", "gallery_features"}
_FAR = re.compile(r"@FAR=([0-9.]+(?:e-?[0-9]+)?)(%?)$", re.IGNORECASE)


def read_records(paths: Sequence[str]) -> list[dict]:
    recs = []
    for p in paths:
        check_record_file(p)
        rec = load_record(p)
        rec["_path"] = str(p)
        recs.append(rec)
    return recs


def _protocol_files(rec: dict) -> dict[str, str | None]:
    inputs = rec.get("inputs") or {}
    if not isinstance(inputs, dict):
        return {}
    return {role: (v or {}).get("sha256") if isinstance(v, dict) else None
            for role, v in inputs.items() if role not in _NOT_PROTOCOL_FILES and not role.endswith("features")}


def check_comparable(a: dict, b: dict) -> None:
    """ConfigError unless a and b are records of one protocol over the same protocol files and pairs."""
    pa, pb = a["_path"], b["_path"]
    if a.get("protocol") != b.get("protocol"):
        raise ConfigError(f"{pb} is a {b.get('protocol')!r} record and {pa} a {a.get('protocol')!r} record: "
                          f"compare needs records of one protocol")
    fa, fb = _protocol_files(a), _protocol_files(b)
    for role in sorted(set(fa) | set(fb)):
        if fa.get(role) != fb.get(role):
            raise ConfigError(f"{pb} and {pa} were evaluated on different {role} files "
                              f"({'sha256 ' + str(fb.get(role))[:12] if role in fb else 'none'} vs "
                              f"{'sha256 ' + str(fa.get(role))[:12] if role in fa else 'none'}): not the same pairs")
    ca, cb = a.get("counts"), b.get("counts")
    if isinstance(ca, dict) and isinstance(cb, dict):
        for k in sorted(set(ca) & set(cb)):
            if ca[k] != cb[k]:
                raise ConfigError(f"{pb} and {pa} differ in counts.{k} ({cb[k]} vs {ca[k]}): not the same pairs")


@dataclass
class MetricComparison:
    metric: str
    values: list                  # per record (None where absent)
    tests: list = field(default_factory=list)   # per record after the first: text


def _far_of(metric: str) -> float | None:
    m = _FAR.search(metric)
    if not m:
        return None
    v = float(m.group(1)) / (100.0 if m.group(2) else 1.0)
    return v if 0 < v < 1 else None


def _scores(rec: dict):
    if not (rec.get("sidecars") or {}).get("scores"):
        return None
    z = load_sidecar(rec)
    if "scores" not in z or "labels" not in z:
        raise FormatError(f"{rec['_path']}: its scores sidecar lacks 'scores' or 'labels'")
    return np.asarray(z["scores"], np.float64), np.asarray(z["labels"]).astype(bool)


def paired_test(a: dict, b: dict, metric: str, reps: int = 1000) -> str:
    """The paired test of record b against record a on `metric`, as text (or why there is none)."""
    if metric.rsplit(".", 1)[-1] in ("std", "se", "sd"):
        return "no test: a spread over folds or trials, not a rate"
    ta = (a.get("per_trial") or {}).get(metric)
    tb = (b.get("per_trial") or {}).get(metric)
    if isinstance(ta, list) and isinstance(tb, list) and ta and tb:
        if (a["per_trial"].get("trial") or []) != (b["per_trial"].get("trial") or []):
            return "no paired test: the records ran different trials"
        r = T.paired_t(tb, ta)
        sd = f"sd {r.sd:.3f}" if math.isfinite(r.sd) else "sd n/a"
        return f"paired t over {r.n} trials: {r.mean:+.3f} ({sd}), {T.fmt_p(r.p)}"
    if metric.startswith("Acc"):
        ba, bb = (a.get("per_pair") or {}).get("correct"), (b.get("per_pair") or {}).get("correct")
        if not ba or not bb:
            return "no McNemar: a record lacks per_pair.correct"
        x = T.mcnemar(T.parse_correct(bb, b["_path"]), T.parse_correct(ba, a["_path"]))
        return f"McNemar on {x.n} pairs: {x.b} B-only vs {x.c} A-only correct, {T.fmt_p(x.p)}"
    far = _far_of(metric)
    if far is not None:
        sa, sb = _scores(a), _scores(b)
        if sa is None or sb is None:
            return "no bootstrap: a record has no scores sidecar"
        if not np.array_equal(sa[1], sb[1]):
            raise ConfigError(f"{b['_path']} and {a['_path']}: their scores sidecars hold different pair labels: "
                              f"not the same pairs")
        bs = T.paired_bootstrap_tar(sb[0], sa[0], sa[1], far, reps=reps)
        return (f"paired bootstrap ({bs.reps}): {100 * bs.diff:+.3f}, 95% CI [{100 * bs.lo:+.3f}, "
                f"{100 * bs.hi:+.3f}], {T.fmt_p(bs.p)}")
    return "no paired test for this metric"


def compare_records(records: Sequence[dict], reps: int = 1000) -> list[MetricComparison]:
    """Every numeric metric of the first record: its value in each record and each record's test against it."""
    if len(records) < 2:
        raise ConfigError("compare needs at least two records")
    first = records[0]
    for r in records[1:]:
        check_comparable(first, r)
    out = []
    for k, v in (first.get("metrics") or {}).items():
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        vals = [(r.get("metrics") or {}).get(k) for r in records]
        vals = [x if isinstance(x, (int, float)) and not isinstance(x, bool) else None for x in vals]
        mc = MetricComparison(k, vals)
        for r, x in zip(records[1:], vals[1:]):
            mc.tests.append("-" if x is None else paired_test(first, r, k, reps))
        out.append(mc)
    return out


def format_comparison(records: Sequence[dict], rows: Sequence[MetricComparison], labels: Sequence[str]) -> str:
    """A table (metric, value per record, B - A) then the tests, one line each."""
    lines = [f"protocol {records[0].get('protocol')}"]
    for i, (r, lab) in enumerate(zip(records, labels)):
        lines.append(f"  {chr(65 + i) if i < 26 else i}: {lab}  (rule {r.get('rule')}; {r['_path']})")
    names = [chr(65 + i) if i < 26 else str(i) for i in range(len(records))]
    width = max([len(m.metric) for m in rows] + [6])
    head = f"  {'metric':<{width}}" + "".join(f"{n:>10}" for n in names) + "".join(
        f"{n + '-A':>10}" for n in names[1:])
    lines += ["", head]
    for m in rows:
        line = f"  {m.metric:<{width}}" + "".join(f"{'-' if v is None else f'{v:.4f}':>10}" for v in m.values)
        for v in m.values[1:]:
            d = None if v is None or m.values[0] is None else v - m.values[0]
            line += f"{'-' if d is None else f'{d:+.4f}':>10}"
        lines.append(line)
    lines += ["", "paired tests (each record against A; differences in points):"]
    for m in rows:
        for n, t in zip(names[1:], m.tests):
            lines.append(f"  {m.metric} {n} vs A: {t}")
    return "\n".join(lines)
