"""Run (or reuse) the small-scale reproductions of a table's rows and group their records per row.

`synthetic_rows(tid, ...)` and `lfw_scale_rows(tid, ...)` return {row id: SeedRuns} for
`arface_repro.paper.report.build_report(scales=...)`; the row -> config mapping and the default seeds come
from protocols/paper/manifest.yaml (`synthetic`, `lfw_scale`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable

from arface_repro.errors import ConfigError
from arface_repro.paper import lfw_scale, synthetic_runs
from arface_repro.paper.manifest import load_manifest
from arface_repro.paper.report import SeedRuns
from arface_repro.paper.synthetic_diagnostics import diagnostics_section, room_section
from arface_repro.paper.synthetic_runs import Job
from arface_repro.paper.targets import get_table

SYNTHETIC_TITLE = ("synthetic small-scale reproduction: tiny backbones trained on the built-in synthetic occluded-face "
                   "generator (arface_repro/data/occluded_faces.py; identities in groups that differ only by the nose; in 30 % of "
                   "the faces the nose replaced by another identity's at 3x contrast), CPU, paper's REINFORCE settings (batch reward, EMA baseline 0.99 updated first; entropy weight "
                   "1e-4, a choice from ENAS); columns measured on held-out synthetic identities: LFW-layout 6000-pair 10-fold "
                   "accuracy, BLUFR-style VR@FAR=0.1% and DIR@FAR=1% (arface_repro/paper/synthetic_task.py)")
LFW_SCALE_TITLE = ("LFW-scale reproduction: the small backbone trained from scratch on BLUFR trial 1's training "
                   "identities of LFW (2,952 images of 1,500 people); Acc on the LFW View-2 pairs of untrained people "
                   "(3,918 of 6,000), VR/DIR on BLUFR trial 1 (arface_repro/paper/lfw_scale.py)")


def parse_seeds(text: str | None, default: Iterable[int]) -> list[int]:
    """'0,1,2' or '0-4' -> [0, 1, 2] / [0, 1, 2, 3, 4]; None -> default."""

    if text is None:
        return list(default)
    out = []
    try:
        for part in str(text).split(","):
            if "-" in part.strip()[1:]:
                a, b = part.split("-", 1)
                out += list(range(int(a), int(b) + 1))
            elif part.strip():
                out.append(int(part))
    except ValueError:
        raise ConfigError(f"--seeds must look like 0,1,2 or 0-4, got {text!r}") from None
    if not out:
        raise ConfigError("--seeds names no seed")
    return list(dict.fromkeys(out))


def _group(cells: dict[str, str], seeds, records: dict[Job, dict], overrides) -> dict[str, SeedRuns]:
    out = {}
    for row, cfg in cells.items():
        recs = {s: records[Job(cfg, s, tuple(overrides))] for s in seeds if Job(cfg, s, tuple(overrides)) in records}
        out[row] = SeedRuns(row, cfg, recs)
    return out


def _in_blocks(row_id: str, blocks) -> bool:
    return blocks is None or row_id.split(".", 1)[0] in blocks


def synthetic_blocks(full: bool = False) -> list[str] | None:
    """The blocks the default synthetic run trains (manifest `synthetic.default_blocks`); None (all) with `full`."""
    if full:
        return None
    blocks = load_manifest().synthetic.get("default_blocks")
    return list(blocks) if blocks else None


def synthetic_rows(tid: str, runs_dir: str | os.PathLike, seeds: list[int] | None = None, overrides: Iterable[str] = (),
                   workers: int | None = None, rerun: bool = False, extras: bool = False,
                   log: Callable[[str], None] = print, full: bool = False, diagnostics: bool = True
                   ) -> tuple[dict[str, SeedRuns], dict[str, SeedRuns], float]:
    """({row id: SeedRuns} of the table, {extra row id: SeedRuns}, seconds).

    Without `full` only the manifest's `default_blocks` are trained; the extra rows (with `extras`) and the
    diagnostic rows (manifest `diagnostic_rows`, with `diagnostics`) of those blocks come in the second dict."""

    m = load_manifest()
    blocks = synthetic_blocks(full)
    cells = {r: c for r, c in m.scale_cells("synthetic", tid).items() if _in_blocks(r, blocks)}
    extra = {e["id"]: e["config"] for e in ((m.synthetic.get("extra_rows") or {}).get(tid) or [])} if extras else {}
    if diagnostics:
        extra.update({e["id"]: e["config"] for e in ((m.synthetic.get("diagnostic_rows") or {}).get(tid) or [])})
    extra = {r: c for r, c in extra.items() if _in_blocks(r, blocks)}
    seeds = list(seeds if seeds is not None else m.scale_seeds("synthetic"))
    ov = tuple(overrides)
    jobs = [Job(cfg, s, ov) for s in seeds for cfg in dict.fromkeys([*cells.values(), *extra.values()])]
    t0 = time.time()
    recs = synthetic_runs.run_jobs(jobs, runs_dir, workers=workers, rerun=rerun, log=log)
    return _group(cells, seeds, recs, ov), _group(extra, seeds, recs, ov), time.time() - t0


def lfw_scale_rows(tid: str, root: str | os.PathLike, runs_dir: str | os.PathLike, seeds: list[int] | None = None,
                   overrides: Iterable[str] = (), workers: int = 1, rerun: bool = False,
                   log: Callable[[str], None] = print) -> tuple[dict[str, SeedRuns], float]:
    m = load_manifest()
    cells = m.scale_cells("lfw_scale", tid)
    if not cells:
        return {}, 0.0
    seeds = list(seeds if seeds is not None else m.scale_seeds("lfw_scale"))
    ov = tuple([*lfw_scale.DEFAULT_OVERRIDES, *overrides])
    jobs = [Job(cfg, s, ov) for s in seeds for cfg in dict.fromkeys(cells.values())]
    t0 = time.time()
    recs = lfw_scale.run_jobs(jobs, root, runs_dir, workers=workers, rerun=rerun, log=log)
    return _group(cells, seeds, recs, ov), time.time() - t0


def diagnostic_row_ids(tid: str) -> set[str]:
    """Row ids of the manifest's synthetic `diagnostic_rows` of a table (fixed-mask rows; not in the paper)."""
    return {e["id"] for e in ((load_manifest().synthetic.get("diagnostic_rows") or {}).get(tid) or [])}


def synthetic_budget(rows: dict[str, SeedRuns], extras: dict[str, SeedRuns], seeds, full: bool) -> str:
    """One line: the budget the synthetic rows used (blocks, steps, identities, seeds, runs, CPU time)."""
    recs = [r for sr in [*rows.values(), *extras.values()] for r in sr.records.values()]
    budgets = sorted({json.dumps(r.get("budget") or {}, sort_keys=True) for r in recs})
    held = sorted({ids for r in recs if (ids := (r.get("counts") or {}).get("identities")) is not None})
    per_run = "; ".join(
        f"{b['steps']} steps x batch {b['batch_size']} on {b['identities']} identities x {b['images_per_identity']} images"
        for b in map(json.loads, budgets) if b) or "-"
    cpu = sum(float(r.get("train_cpu_seconds") or 0.0) for r in recs)
    blocks = "all blocks (--full)" if full else f"blocks {synthetic_blocks(False) or 'all'} (--full for all)"
    return (f"synthetic budget: {blocks}; per run {per_run}; held-out identities {held}; seeds {list(seeds)}; "
            f"{len(recs)} runs; training + evaluation CPU time (user+sys, summed over runs) {cpu:.0f} s")


def synthetic_diagnostic_sections(tid: str, rows: dict[str, SeedRuns], extras: dict[str, SeedRuns]) -> list:
    """The diagnostics and the fixed-policy room of the synthetic rows (sections not in the paper; Table X only)."""

    diag = diagnostic_row_ids(tid)
    if not diag:
        return []
    t = get_table(tid)
    m = load_manifest()
    labels = {e["id"]: e["label"] for e in ((m.synthetic.get("diagnostic_rows") or {}).get(tid) or [])}
    ordered = {}
    for row in t.rows:
        if row.id in rows:
            label = "baseline (plain)" if row.short_label == "—" else row.short_label
            ordered[row.id] = (f"{row.block}: {label}" if row.block else label, rows[row.id])
    for rid, sr in extras.items():
        ordered[rid] = (labels.get(rid, rid), sr)
    out = [diagnostics_section(tid, ordered)]
    for block in dict.fromkeys(r.split(".", 1)[0] for r in rows):
        fixed = {rid.rsplit("_", 1)[1]: sr for rid, sr in extras.items() if rid in diag and rid.startswith(block + ".fixed_")}
        if not fixed:
            continue
        arface = {rid: ordered[rid] for rid, sr in rows.items() if rid.startswith(block + ".") and sr.values("policy_entropy")}
        out.append(room_section(tid, rows.get(f"{block}.baseline"), rows.get(f"{block}.random_l0"), fixed, arface))
    return out
