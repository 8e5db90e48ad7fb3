"""Run (or reuse) the small-scale reproductions of a table's rows and group their records per row.

`synthetic_rows(tid, ...)` and `lfw_scale_rows(tid, ...)` return {row id: SeedRuns} for
`arface_repro.paper.report.build_report(scales=...)`; the row -> config mapping and the default seeds come
from protocols/paper/manifest.yaml (`synthetic`, `lfw_scale`).
"""

from __future__ import annotations

import os
import time
from typing import Callable, Iterable

from arface_repro.paper.manifest import load_manifest
from arface_repro.paper.report import SeedRuns
from arface_repro.paper.synthetic import Job

SYNTHETIC_TITLE = ("synthetic small-scale reproduction: tiny backbones trained on the built-in synthetic occluded-face "
                   "generator (arface_repro/data/synthetic.py; the nose patch of some faces replaced by another "
                   "identity's), CPU, paper's REINFORCE settings (batch reward, EMA baseline 0.99 updated first, no "
                   "entropy bonus); columns measured on held-out synthetic identities: LFW-layout 6000-pair 10-fold "
                   "accuracy, BLUFR-style VR@FAR=0.1% and DIR@FAR=1% (arface_repro/paper/synthetic_eval.py)")
LFW_SCALE_TITLE = ("LFW-scale reproduction: the small backbone trained from scratch on BLUFR trial 1's training "
                   "identities of LFW (2,952 images of 1,500 people); Acc on the LFW View-2 pairs of untrained people "
                   "(3,918 of 6,000), VR/DIR on BLUFR trial 1 (arface_repro/paper/lfw_scale.py)")


def parse_seeds(text: str | None, default: Iterable[int]) -> list[int]:
    """'0,1,2' or '0-4' -> [0, 1, 2] / [0, 1, 2, 3, 4]; None -> default."""
    from arface_repro.errors import ConfigError

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


def synthetic_rows(tid: str, runs_dir: str | os.PathLike, seeds: list[int] | None = None, overrides: Iterable[str] = (),
                   workers: int | None = None, rerun: bool = False, extras: bool = False,
                   log: Callable[[str], None] = print) -> tuple[dict[str, SeedRuns], dict[str, SeedRuns], float]:
    """({row id: SeedRuns} of the table, {extra row id: SeedRuns}, seconds)."""
    from arface_repro.paper.synthetic import run_jobs

    m = load_manifest()
    cells = m.scale_cells("synthetic", tid)
    extra = {e["id"]: e["config"] for e in ((m.synthetic.get("extra_rows") or {}).get(tid) or [])} if extras else {}
    seeds = list(seeds if seeds is not None else m.scale_seeds("synthetic"))
    ov = tuple(overrides)
    jobs = [Job(cfg, s, ov) for s in seeds for cfg in dict.fromkeys([*cells.values(), *extra.values()])]
    t0 = time.time()
    recs = run_jobs(jobs, runs_dir, workers=workers, rerun=rerun, log=log)
    return _group(cells, seeds, recs, ov), _group(extra, seeds, recs, ov), time.time() - t0


def lfw_scale_rows(tid: str, root: str | os.PathLike, runs_dir: str | os.PathLike, seeds: list[int] | None = None,
                   overrides: Iterable[str] = (), workers: int = 1, rerun: bool = False,
                   log: Callable[[str], None] = print) -> tuple[dict[str, SeedRuns], float]:
    from arface_repro.paper.lfw_scale import DEFAULT_OVERRIDES, run_jobs

    m = load_manifest()
    cells = m.scale_cells("lfw_scale", tid)
    if not cells:
        return {}, 0.0
    seeds = list(seeds if seeds is not None else m.scale_seeds("lfw_scale"))
    ov = tuple([*DEFAULT_OVERRIDES, *overrides])
    jobs = [Job(cfg, s, ov) for s in seeds for cfg in dict.fromkeys(cells.values())]
    t0 = time.time()
    recs = run_jobs(jobs, root, runs_dir, workers=workers, rerun=rerun, log=log)
    return _group(cells, seeds, recs, ov), time.time() - t0
