"""One table of the paper beside what was measured: cells, orderings, and what would fill the rest.

Sections (each a small table; rendered as text, Markdown or CSV by `arface_repro.paper.render`):
1. the paper's table in its own structure, per value column: paper | measured | measured - paper | status
   (within tolerance / off / missing; literature rows: reported only);
2. Tables X and XI: the synthetic small-scale reproduction beside the paper's rows (mean ± sd over seeds),
   and the LFW-scale runs when present;
3. the orderings: for every row pair the paper compares, per column: the paper's difference and its size
   in the protocol's resolution, the sentences that claim an ordering there, and, where two measured or
   synthetic results exist, the measured difference with its paired test;
4. what would fill each missing cell (config, training data, evaluation data, record path).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from arface_repro.errors import FormatError
from arface_repro.io.npz_file import read_npz
from arface_repro.io.records import load_record
from arface_repro.paper import stats as S
from arface_repro.paper.manifest import Manifest, load_claims, load_manifest, record_path
from arface_repro.paper.record_check import record_flags
from arface_repro.paper.resolution import describe_difference, within_resolution
from arface_repro.paper.targets import Column, Row, Table, get_table, load_notes
from arface_repro.utils.hashing import sha256_file

WITHIN, OFF, MISSING, LITERATURE = "within", "OFF", "missing", "literature"


@dataclass
class Section:
    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    kind: str = "table"            # table | text


@dataclass
class Cell:
    row: Row
    col: Column
    status: str
    measured: float | None = None  # paper units
    diff: float | None = None
    tol: float | None = None       # paper units
    run: str | None = None
    record: dict | None = None
    record_path: Path | None = None
    spread: str = ""
    flags: list = field(default_factory=list)   # why the record may not be current (record_check): stale, other model


def _fmt(v: float | None, dec: int, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:+.{dec}f}" if sign else f"{v:.{dec}f}"


def _spread(rec: dict, col: Column) -> str:
    """The measured record's own noise: fold std (pair protocols) or trial std (BLUFR), in paper units."""
    pf = rec.get("per_fold") or {}
    pt = rec.get("per_trial") or {}
    if col.metric in pf and len(pf[col.metric]) > 1:
        v = np.asarray(pf[col.metric], float)
        return f"folds sd {col.from_record_units(float(v.std())):.2f}"
    if col.metric in pt and len(pt[col.metric]) > 1:
        v = np.asarray(pt[col.metric], float)
        return f"trials sd {col.from_record_units(float(v.std(ddof=1))):.2f}"
    return ""


def measure_cells(t: Table, m: Manifest, runs_dir: str | os.PathLike) -> dict[tuple[str, str], Cell]:
    out = {}
    for row in t.rows:
        run = m.run_for(t.id, row.id)
        for col in t.columns:
            if row.source == "literature" or run is None:
                out[row.id, col.id] = Cell(row, col, LITERATURE)
                continue
            tol = col.from_record_units(m.tolerance(col.protocol, col.metric).abs)
            path = record_path(runs_dir, run.id, col.protocol)
            if not path.is_file():
                out[row.id, col.id] = Cell(row, col, MISSING, tol=tol, run=run.id, record_path=path)
                continue
            rec = load_record(path)
            if rec["protocol"] != col.protocol:
                raise FormatError(f"{path}: a record of protocol {rec['protocol']!r} where {col.protocol!r} is expected")
            v = (rec.get("metrics") or {}).get(col.metric)
            if not isinstance(v, (int, float)):
                raise FormatError(f"{path}: metric {col.metric!r} missing or not a number (has {sorted(rec.get('metrics') or {})})")
            meas = col.from_record_units(float(v))
            diff = meas - row.value(col)
            status = WITHIN if abs(diff) <= tol + 1e-12 else OFF
            out[row.id, col.id] = Cell(row, col, status, meas, diff, tol, run.id, rec, path, _spread(rec, col),
                                       record_flags(rec, run.config))
    return out


# ----------------------------------------------------------------------------- measured paired tests

def _sidecar_scores(rec: dict, where: Path):
    sc = ((rec.get("sidecars") or {}).get("scores") or {})
    if not sc.get("path"):
        return None, "no scores sidecar in the record"
    p = (where.parent / sc["path"]).resolve()
    if not p.is_file():
        return None, f"scores sidecar {p} is missing"
    if sc.get("sha256"):

        if sha256_file(p) != sc["sha256"]:
            raise FormatError(f"{where}: sidecar {p} does not match its sha256")

    z = read_npz(p, "scores sidecar", None)[0]  # every member's header checked before its array is allocated
    if "scores" not in z or "labels" not in z:
        raise FormatError(f"{p}: scores sidecar needs arrays 'scores' and 'labels'")
    return (np.asarray(z["scores"], np.float64), np.asarray(z["labels"]).astype(bool)), ""


def measured_test(ca: Cell, cb: Cell) -> str:
    """The paired test between two measured cells of one column, or why there is none."""
    if ca.record is None or cb.record is None:
        return ""
    ra, rb, col = ca.record, cb.record, ca.col
    if col.protocol == "blufr":
        ta, tb = (ra.get("per_trial") or {}).get(col.metric), (rb.get("per_trial") or {}).get(col.metric)
        if not ta or not tb:
            return "paired trial test unavailable: a record lacks per_trial"
        if (ra["per_trial"].get("trial") or []) != (rb["per_trial"].get("trial") or []):
            return "paired trial test unavailable: the records ran different trials"
        r = S.paired_t(ta, tb)
        return f"paired t over {r.n} trials: {r.mean:+.2f} (sd {r.sd:.2f}), {S.fmt_p(r.p)}"
    if col.metric.startswith("Acc"):
        pa, pb = (ra.get("per_pair") or {}).get("correct"), (rb.get("per_pair") or {}).get("correct")
        if not pa or not pb:
            return "McNemar unavailable: a record lacks per_pair.correct"
        x = S.mcnemar(S.parse_correct(pa, str(ca.record_path)), S.parse_correct(pb, str(cb.record_path)))
        return f"McNemar on {x.n} pairs: {x.b} vs {x.c} discordant, {S.fmt_p(x.p)}"
    if col.metric.startswith("TAR@FAR="):
        far = float(col.metric.split("=", 1)[1])
        if ca.record_path is None or cb.record_path is None:  # a measured cell's record was read from its file
            return "bootstrap unavailable: a record has no file"
        sa, why_a = _sidecar_scores(ra, ca.record_path)
        sb, why_b = _sidecar_scores(rb, cb.record_path)
        if sa is None or sb is None:
            return f"bootstrap unavailable: {why_a or why_b}"
        if not np.array_equal(sa[1], sb[1]):
            return "bootstrap unavailable: the two score files do not hold the same pairs"
        b = S.paired_bootstrap_tar(sa[0], sb[0], sa[1], far)
        return f"paired bootstrap ({b.reps}): {b.diff:+.4f}, 95% CI [{b.lo:+.4f}, {b.hi:+.4f}], {S.fmt_p(b.p)}"
    return "no paired test defined for this metric"


# ----------------------------------------------------------------------------- synthetic / LFW-scale

@dataclass
class SeedRuns:
    """Records of one row over seeds (synthetic or LFW-scale): {seed: record}."""
    label: str
    config: str
    records: dict[int, dict]

    def values(self, metric: str) -> dict[int, float]:
        return {s: float(r["metrics"][metric]) for s, r in self.records.items()
                if isinstance((r.get("metrics") or {}).get(metric), (int, float))}

    def summary(self, metric: str) -> str:
        v = np.array(list(self.values(metric).values()))
        if v.size == 0:
            return "-"
        return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if v.size > 1 else f"{v[0]:.2f}"


def drops_summary(sr: SeedRuns) -> str:
    """The test-time drop rates of a row: the occluded nose's drop % for each seed, then the mean over clean cells."""
    occ = sr.values("drop_occluded")
    clean = np.array(list(sr.values("drop_clean").values()))
    return " / ".join(f"{occ[s]:.0f}" for s in sorted(occ)) + f" | {clean.mean():.0f}"


def seed_test(a: SeedRuns, b: SeedRuns, metric: str) -> S.PairedT | None:
    va, vb = a.values(metric), b.values(metric)
    seeds = sorted(set(va) & set(vb))
    if not seeds:
        return None
    return S.paired_t([va[s] for s in seeds], [vb[s] for s in seeds])


# ----------------------------------------------------------------------------- the report

@dataclass
class Report:
    table: Table
    cells: dict
    sections: list[Section]
    csv_rows: list[dict]
    orderings: list[dict]
    summary: list[str]


def _short(row: Row) -> str:
    s = row.short_label
    return "baseline" if s == "—" else s.replace("num_layers = ", "l")


def _row_labels(t: Table, row: Row) -> list[str]:
    return list(row.printed[: t.label_columns])


def _block_rows(t: Table):
    """Rows grouped by block (one group of all rows when the table has none)."""
    if not t.blocks:
        yield None, t.rows
        return
    for b in t.blocks:
        yield b, [r for r in t.rows if r.block == b.id]


def build_report(tid: str, runs_dir: str | os.PathLike, scales: dict[str, dict[str, SeedRuns]] | None = None,
                 scale_titles: dict[str, str] | None = None) -> Report:
    """`scales`: {scale name: {row id: SeedRuns}} for the small-scale reproductions (synthetic, LFW-scale)."""
    t = get_table(tid)
    m = load_manifest()
    cells = measure_cells(t, m, runs_dir)
    scales = scales or {}
    scale_titles = scale_titles or {}
    csv_rows = _csv_rows(t, cells, scales)
    sections = [paper_section(t, cells)]
    sections += [scale_section(t, scale, runs, scale_titles.get(scale, scale), csv_rows) for scale, runs in scales.items()]
    orderings, section = orderings_section(t, cells, scales, load_claims())
    if section is not None:
        sections.append(section)
    section = missing_cells_section(t, m, cells, runs_dir)
    if section is not None:
        sections.append(section)
    return Report(t, cells, sections, csv_rows, orderings, ordering_summary(scales, orderings))


def _column_name(c: Column) -> str:
    return c.header if not c.group else f"{c.group}: {c.header}"


def _status_text(cell: Cell) -> str:
    shown = cell.status if cell.status != WITHIN else f"within ±{cell.tol:g}"
    if cell.flags:  # 'stale', 'other model', 'model unverified': never shown as a plain result
        shown += " (" + ", ".join(f.split(":", 1)[0] for f in cell.flags) + ")"
    return shown


def _csv_rows(t: Table, cells: dict, scales: dict) -> list[dict]:
    """One CSV row per cell of the paper's table (the scales' means are filled in by `scale_section`)."""
    out = []
    for _, brows in _block_rows(t):
        for row in brows:
            for c in t.columns:
                cell = cells[row.id, c.id]
                dec = row.decimals(c)
                out.append({"table": t.id, "block": row.block or "", "row": row.id, "labels": row.label,
                            "column": _column_name(c), "paper": row.text(c),
                            "measured": _fmt(cell.measured, dec + 2), "diff": _fmt(cell.diff, dec + 2, True),
                            "status": cell.status, "tolerance": "" if cell.tol is None else f"{cell.tol:g}",
                            "source": row.source, "run": cell.run or "", "record": str(cell.record_path or ""),
                            "spread": cell.spread, "flags": "; ".join(cell.flags),
                            **{f"{k} (mean)": "" for k in scales}})
    return out


def paper_section(t: Table, cells: dict) -> Section:
    """Section 1: the paper's table in its own structure, each value column beside its measured cell."""
    header = [*t.header[-1][: t.label_columns]]
    for c in t.columns:
        head = f"{c.group}: {c.header}" if c.group else c.header
        header += [head, "measured", "diff", "status"]
    rows = []
    for block, brows in _block_rows(t):
        if block is not None:
            rows.append([block.label] + [""] * (len(header) - 1))
        for row in brows:
            line = _row_labels(t, row)
            if block is not None:
                line[0] = ""
            for c in t.columns:
                cell = cells[row.id, c.id]
                dec = row.decimals(c)
                if cell.status == LITERATURE:
                    line += [row.text(c), "", "", "reported"]
                else:
                    line += [row.text(c), _fmt(cell.measured, dec), _fmt(cell.diff, dec, True), _status_text(cell)]
            rows.append(line)
    return Section(f"Table {t.id}: {t.title}  [{t.location}]", header, rows, _paper_notes(t, cells))


def _paper_notes(t: Table, cells: dict) -> list[str]:
    n_rep = sum(1 for c in cells.values() if c.status != LITERATURE)
    n_fill = sum(1 for c in cells.values() if c.status in (WITHIN, OFF))
    n_off = sum(1 for c in cells.values() if c.status == OFF)
    notes = [f"{n_fill} of {n_rep} reproducible cells measured ({n_off} off); literature rows are reported values only.",
             "measured = the result record <runs>/paper/<run>/<protocol>.json named by protocols/paper/manifest.yaml; "
             "status: within = |measured - paper| <= the metric's tolerance (manifest.yaml, `tolerances`), "
             "OFF = beyond it, missing = no record."]
    notes_file = load_notes()
    touching = [e for sec in ("contradictions", "readings") for e in notes_file[sec] if t.id in (e.get("affects") or [])]
    if touching:
        notes.append("the paper's contradictions and readings for this table (protocols/paper/contradictions.yaml): "
                     + "; ".join(f"{e['id']} {e['topic']}" for e in touching))
    flagged = [f"{row.id} {c.header}: {'; '.join(cells[row.id, c.id].flags)}" for row in t.rows for c in t.columns
               if cells[row.id, c.id].flags]
    if flagged:
        notes.append(f"{len(flagged)} measured cell(s) from records that may not be current (--strict refuses them): "
                     + " | ".join(flagged))
    spreads = [f"{row.id} {c.header}: {cells[row.id, c.id].spread}" for row in t.rows for c in t.columns
               if cells[row.id, c.id].spread]
    if spreads:
        notes.append("noise of the measured records: " + "; ".join(spreads))
    return notes


def scale_section(t: Table, scale: str, runs: dict[str, SeedRuns], title: str, csv_rows: list[dict]) -> Section:
    """Section 2: one small-scale reproduction (synthetic, LFW-scale) in the paper's structure; fills the
    scale's mean column of `csv_rows`."""
    header = [*t.header[-1][: t.label_columns], "config"]
    for c in t.columns:
        header += [f"paper {c.header}", scale]
    drop = any(sr.values("drop_occluded") for sr in runs.values())
    if drop:
        header += ["test-time drops %: occluded nose by seed | clean cells"]
    rows = []
    for block, brows in _block_rows(t):
        if block is not None:
            rows.append([block.label] + [""] * (len(header) - 1))
        for row in brows:
            sr = runs.get(row.id)
            line = _row_labels(t, row)
            if block is not None:
                line[0] = ""
            line.append(sr.config if sr else "-")
            for c in t.columns:
                line += [row.text(c), sr.summary(c.metric) if sr else "-"]
            if drop:
                line.append(drops_summary(sr) if sr and sr.values("drop_occluded") else "")
            rows.append(line)
            for c in t.columns:
                for cr in csv_rows:
                    if cr["row"] == row.id and cr["column"] == _column_name(c):
                        cr[f"{scale} (mean)"] = sr.summary(c.metric) if sr else ""
    nseeds = sorted({s for sr in runs.values() for s in sr.records})
    notes = [title,
             (f"mean ± sd over seeds {nseeds} (sd with ddof 1)" if len(nseeds) > 1 else
              f"one seed ({nseeds[0] if nseeds else '-'}): single values, no spread")
             + "; absolute values are not comparable with the paper's - "
             "what is compared is each ordering (next section)."]
    return Section(f"Table {t.id} - {scale} reproduction (beside the paper's values)", header, rows, notes)


ORDERING_NOTES = [
    "paper a-b from the printed values. LFW-type protocols: one pair = 1/6000 = 0.0167 points on LFW; "
    "McNemar's exact test cannot reach p < 0.05 with fewer than 6 discordant pairs, so a printed difference "
    "under 0.10 points on LFW is within noise whatever the per-pair decisions ('p >=' = the best case). "
    "BLUFR: the paper prints (mean - std) over 10 trials without the spread, so its differences cannot be "
    "tested; one genuine pair of a trial is ~0.0006 points of VR, one genuine probe ~0.023 points of DIR.",
    "measured a-b: McNemar on the two records' per-pair decisions (LFW-type), paired t over the 10 BLUFR "
    "trials, paired bootstrap over pairs for TAR@FAR (needs a scores sidecar); unavailable tests say why."]
SCALE_VERDICT_NOTE = ("small-scale verdicts: 'holds (robust)' = the mean difference has the paper's sign, every seed "
                      "agrees and the paired t-test over seeds gives p < 0.05; 'holds (not significant)' = the sign only; "
                      "'reversed' likewise with the opposite sign. With 3 seeds the t-test has 2 degrees of freedom "
                      "(--seeds 0-4 for more power).")


def orderings_section(t: Table, cells: dict, scales: dict[str, dict[str, SeedRuns]],
                      claims) -> tuple[list[dict], Section | None]:
    """Section 3: every row pair the paper compares, per column (None when the table compares none); also
    the orderings as entries (paper sign, text claims, each scale's paired test and verdict)."""
    orderings = []
    header = ["a vs b", "column", "paper a-b", "size in the protocol's resolution", "text claim", "measured a-b (paired test)"]
    for scale in scales:
        header += [f"{scale} a-b: mean ± sd (seeds agreeing, paired t)", f"{scale} verdict"]
    rows = []
    last_block = None
    for a, b in claims.comparisons.get(t.id, []):
        ra, rb = t.row(a), t.row(b)
        if ra.block and ra.block != last_block:
            rows.append([t.block(ra.block).label] + [""] * (len(header) - 1))
            last_block = ra.block
        for ci, c in enumerate(t.columns):
            line, entry = _ordering(t, ra, rb, c, cells, scales, claims)
            if ci:
                line[0] = ""
            orderings.append(entry)
            rows.append(line)
    if not rows:
        return orderings, None
    notes = list(ORDERING_NOTES) + ([SCALE_VERDICT_NOTE] if scales else [])
    return orderings, Section(f"Table {t.id} - the orderings the paper's table sets up", header, rows, notes)


def _ordering(t: Table, ra: Row, rb: Row, c: Column, cells: dict, scales: dict, claims) -> tuple[list[str], dict]:
    """One row pair in one column: the report's line and the ordering entry."""
    a, b = ra.id, rb.id
    pa, pb = ra.value(c), rb.value(c)
    dec = max(ra.decimals(c), rb.decimals(c))
    delta = round(pa - pb, dec)
    psign = int(np.sign(delta))
    res = describe_difference(c.protocol, c.metric, c.to_record_units(delta))
    tc = claims.for_cell(t.id, a, b, c.id)
    tc_txt = "; ".join(f"{x.id}: a {'>' if s > 0 else '<'} b" + ("" if s == psign else " (the paper's numbers disagree)")
                       for x, s in tc)
    ca, cb = cells[a, c.id], cells[b, c.id]
    if ca.measured is not None and cb.measured is not None:
        mt = f"{ca.measured - cb.measured:+.{dec}f} ({measured_test(ca, cb)})"
    else:
        mt = "-"
    line = [f"{_short(ra)} vs {_short(rb)}", _column_name(c), f"{delta:+.{dec}f}", res, tc_txt or "-", mt]
    entry: dict[str, Any] = {"table": t.id, "a": a, "b": b, "column": c.id, "paper_delta": delta, "paper_sign": psign,
                             "text_claims": [(x.id, s) for x, s in tc], "scales": {}}
    for scale, runs in scales.items():
        sa, sb = runs.get(a), runs.get(b)
        test = seed_test(sa, sb, c.metric) if sa and sb else None
        if test is None:
            line += ["-", "-"]
            continue
        v = S.verdict(psign, test)
        if psign and within_resolution(c.protocol, c.metric, c.to_record_units(delta), c.to_record_units(10.0 ** -dec)):
            v = f"paper: tie (within its resolution; measured {v})"
        if test.n > 1 and math.isfinite(test.sd):
            line += [f"{test.mean:+.2f} ± {test.sd:.2f} ({test.agree}/{test.n}, {S.fmt_p(test.p)})", v]
        else:  # one seed: no spread and no test, not a "± 0.00"
            line += [f"{test.mean:+.2f} (1 seed: no spread, no test)", v]
        entry["scales"][scale] = {"mean": test.mean, "sd": test.sd, "n": test.n, "agree": test.agree, "p": test.p,
                                  "verdict": v}
    return line, entry


def missing_cells_section(t: Table, m: Manifest, cells: dict, runs_dir: str | os.PathLike) -> Section | None:
    """Section 4: what would fill each missing cell (None when no cell is missing)."""
    missing: dict[str, set[str]] = {}
    for cell in cells.values():
        if cell.status == MISSING:
            missing.setdefault(cell.run, set()).add(cell.col.protocol)
    if not missing:
        return None
    rows = []
    for run_id, protos in missing.items():
        run = m.runs[run_id]
        rows_of = [r.id for r in t.rows if (run_of := m.run_for(t.id, r.id)) is not None and run_of.id == run_id]
        needs = sorted({k for p in protos for k in m.evaluation_data.get(p, [])})
        rows.append([run_id, ", ".join(rows_of), f"configs/{run.config}.yaml", f"training_data.{run.data} (or checkpoints.{run_id})",
                     ", ".join(sorted(protos)), ", ".join(f"datasets.{k}" for k in needs),
                     f"paper/{run_id}/{{{','.join(sorted(protos))}}}.json"])
    return Section(f"Table {t.id} - what fills the missing cells", ["run", "rows", "config", "a DATA.yaml names",
                                                                    "protocols", "evaluation data", "record (under the runs folder)"], rows,
                   [f"runs folder: {runs_dir}. `python scripts/reproduce_table.py N --run --data DATA.yaml` trains "
                    "(or takes the named checkpoint) and evaluates each run; a record made elsewhere (`arface "
                    "evaluate ... --out`) can be put at the record path."])


def ordering_summary(scales: dict, orderings: list[dict]) -> list[str]:
    """Per scale: how many orderings hold, are reversed or tie (the report's summary lines)."""
    summary = []
    for scale in scales:
        verdicts = [o["scales"][scale]["verdict"] for o in orderings if scale in o["scales"]]
        if verdicts:
            counts = {v: verdicts.count(v) for v in dict.fromkeys(verdicts)}
            summary.append(f"{scale}: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + f" (of {len(verdicts)} orderings)")
    return summary
