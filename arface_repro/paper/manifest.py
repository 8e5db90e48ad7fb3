"""The run manifest (protocols/paper/manifest.yaml) and the paper's claimed orderings (claims.yaml).

manifest: run id -> (config, training-data key); (table, row) -> run id; tolerances per protocol and metric;
where a cell's measured record lives: `<runs dir>/paper/<run id>/<protocol>.json`.
claims: the row pairs each table compares, and the sentences that state an ordering.
Safe YAML only; nothing named in these files is imported or executed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from arface_repro.errors import FormatError
from arface_repro.eval.protocols.spec import paper_routes
from arface_repro.paper.targets import ROMAN, get_table, paper_dir, table_id
from arface_repro.utils.textfile import read_yaml_mapping

MANIFEST_FORMAT = "arface-paper-manifest/1"
CLAIMS_FORMAT = "arface-paper-claims/1"
RECORDS_SUBDIR = "paper"


@dataclass(frozen=True)
class Run:
    id: str
    config: str
    data: str

    def config_path(self, configs_dir: Path) -> Path:
        return configs_dir / f"{self.config}.yaml"


@dataclass(frozen=True)
class Tolerance:
    protocols: tuple
    metrics: tuple
    abs: float
    why: str


@dataclass
class Manifest:
    training_data: dict
    evaluation_data: dict
    tolerances: list[Tolerance]
    runs: dict[str, Run]
    cells: dict[str, dict[str, str]]     # roman -> row id -> run id
    figures: dict
    source: str
    synthetic: dict = field(default_factory=dict)
    lfw_scale: dict = field(default_factory=dict)
    optional_evaluation_data: dict = field(default_factory=dict)

    def evaluation_keys(self) -> set[str]:
        """Every DATA.yaml `datasets` key: the required ones and the optional file locations."""
        return {k for sec in (self.evaluation_data, self.optional_evaluation_data) for keys in sec.values() for k in keys}

    def scale_cells(self, scale: str, table: str) -> dict[str, str]:
        """row id -> config name of a small-scale reproduction ('synthetic' or 'lfw_scale') of one table."""
        sec = self.synthetic if scale == "synthetic" else self.lfw_scale
        return dict((sec.get("cells") or {}).get(table) or {})

    def scale_seeds(self, scale: str) -> list[int]:
        sec = self.synthetic if scale == "synthetic" else self.lfw_scale
        return [int(s) for s in sec.get("seeds") or [0, 1, 2]]

    def run_for(self, table: str, row_id: str) -> Run | None:
        rid = self.cells.get(table, {}).get(row_id)
        return self.runs[rid] if rid else None

    def tolerance(self, protocol: str, metric: str) -> Tolerance:
        for t in self.tolerances:
            if protocol in t.protocols and metric in t.metrics:
                return t
        raise FormatError(f"{self.source}: no tolerance for protocol {protocol!r} metric {metric!r}")

    def config_names(self) -> set[str]:
        return {r.config for r in self.runs.values()}


def record_path(runs_dir: str | os.PathLike, run_id: str, protocol: str) -> Path:
    """Where the record of one run on one protocol lives."""
    return Path(runs_dir) / RECORDS_SUBDIR / run_id / f"{protocol}.json"


def parse_manifest(data: dict, source: str) -> Manifest:
    if data.get("format") != MANIFEST_FORMAT:
        raise FormatError(f"{source}: format must be {MANIFEST_FORMAT!r}")
    for key in ("evaluation_data", "optional_evaluation_data"):
        if key in data:
            raise FormatError(f"{source}: {key} is no longer kept here: each protocol's DATA.yaml keys are the "
                              f"`paper` section of its protocols/<name>.yaml")
    for key in ("training_data", "tolerances", "runs", "cells"):
        if key not in data:
            raise FormatError(f"{source}: missing key {key!r}")
    runs = {}
    for rid, r in (data["runs"] or {}).items():
        if not isinstance(r, dict) or not isinstance(r.get("config"), str) or not isinstance(r.get("data"), str):
            raise FormatError(f"{source}: runs.{rid} must be {{config: NAME, data: KEY}}")
        if r["data"] not in data["training_data"]:
            raise FormatError(f"{source}: runs.{rid}: training data {r['data']!r} is not in training_data")
        if "/" in r["config"] or "\\" in r["config"] or r["config"].startswith("."):
            raise FormatError(f"{source}: runs.{rid}: config must be a bare name under configs/, got {r['config']!r}")
        runs[str(rid)] = Run(str(rid), r["config"], r["data"])
    tols = []
    for i, t in enumerate(data["tolerances"]):
        try:
            tols.append(Tolerance(tuple(t["protocols"]), tuple(t["metrics"]), float(t["abs"]), str(t["why"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{source}: tolerances[{i}] needs protocols, metrics, abs, why ({exc})") from exc
    cells: dict[str, dict[str, str]] = {}
    for tab, rows in (data["cells"] or {}).items():
        tid = table_id(tab)
        cells[tid] = {}
        for row_id, run_id in (rows or {}).items():
            if run_id not in runs:
                raise FormatError(f"{source}: cells.{tab}.{row_id}: run {run_id!r} is not in runs")
            cells[tid][str(row_id)] = run_id
    scales = {}
    for name in ("synthetic", "lfw_scale"):
        sec = data.get(name) or {}
        if not isinstance(sec, dict):
            raise FormatError(f"{source}: {name} must be a mapping")
        sc: dict[str, dict[str, str]] = {}
        for tab, rows in (sec.get("cells") or {}).items():
            tid = table_id(tab)
            sc[tid] = {}
            for row_id, cfg in (rows or {}).items():
                if not isinstance(cfg, str) or "/" in cfg or cfg.startswith("."):
                    raise FormatError(f"{source}: {name}.cells.{tab}.{row_id}: a bare config name, got {cfg!r}")
                sc[tid][str(row_id)] = cfg
        scales[name] = {**sec, "cells": sc}
    routes = paper_routes()   # the DATA.yaml keys of each protocol: its definition's `paper` section
    return Manifest(dict(data["training_data"]), {p: r.required_keys for p, r in routes.items()}, tols, runs, cells,
                    _figures(data.get("figures"), runs, source), source, scales["synthetic"], scales["lfw_scale"],
                    {p: r.optional_keys for p, r in routes.items() if r.optional_keys})


def _figures(sec, runs: dict[str, Run], source: str) -> dict:
    """`figures`: {figure: {group: {key: run id}}} (fig5: protocol -> curve label -> run; fig6: architecture ->
    num_layers -> run); every run named must be in `runs`."""
    if sec is None:
        return {}
    if not isinstance(sec, dict):
        raise FormatError(f"{source}: figures must be a mapping")
    for fig, groups in sec.items():
        if not isinstance(groups, dict):
            raise FormatError(f"{source}: figures.{fig} must be a mapping")
        for group, entries in groups.items():
            if not isinstance(entries, dict):
                raise FormatError(f"{source}: figures.{fig}.{group} must be a mapping of runs")
            for key, run_id in entries.items():
                if not isinstance(run_id, str) or run_id not in runs:
                    raise FormatError(f"{source}: figures.{fig}.{group}.{key}: run {run_id!r} is not in runs")
    return dict(sec)


def check_against_tables(m: Manifest) -> None:
    """Every manifest row exists and is reproducible; every reproducible row has a run; tolerances cover
    every column of the manifest's tables; every protocol has its evaluation data listed."""
    for tid in ROMAN:
        t = get_table(tid)
        mapped = m.cells.get(tid, {})
        for rid in mapped:
            row = t.row(rid)
            if row.source != "reproducible":
                raise FormatError(f"{m.source}: cells.{tid}.{rid} maps a {row.source} row")
        for row in t.rows:
            if row.source == "reproducible" and row.id not in mapped:
                raise FormatError(f"{m.source}: reproducible row {tid}.{row.id} has no run in cells")
        for scale in ("synthetic", "lfw_scale"):
            for rid in m.scale_cells(scale, tid):
                t.row(rid)
        for c in t.columns:
            m.tolerance(c.protocol, c.metric)
            if mapped and c.protocol not in m.evaluation_data:
                raise FormatError(f"{m.source}: protocol {c.protocol} (table {tid}) has no `paper` section in protocols/{c.protocol}.yaml (no evaluation data)")


@cache
def _manifest(directory: str) -> Manifest:
    path = Path(directory) / "manifest.yaml"
    m = parse_manifest(read_yaml_mapping(path, "run manifest"), str(path))
    check_against_tables(m)
    return m


def load_manifest(directory: str | os.PathLike | None = None) -> Manifest:
    return _manifest(str(Path(directory) if directory is not None else paper_dir()))


# ----------------------------------------------------------------------------- claims

@dataclass(frozen=True)
class TextClaim:
    id: str
    table: str
    quote: str
    where: str
    pairs: tuple          # ((a, b), ...): a > b claimed ("<": a < b)
    columns: tuple
    direction: str = ">"

    def claimed_sign(self, a: str, b: str) -> int | None:
        """+1 if the claim says a above b, -1 if below, None if the pair is not covered."""
        s = 1 if self.direction == ">" else -1
        for x, y in self.pairs:
            if (x, y) == (a, b):
                return s
            if (x, y) == (b, a):
                return -s
        return None


@dataclass
class Claims:
    comparisons: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    text: list[TextClaim] = field(default_factory=list)

    def for_cell(self, table: str, a: str, b: str, column: str) -> list[tuple[TextClaim, int]]:
        out = []
        for c in self.text:
            if c.table == table and column in c.columns:
                s = c.claimed_sign(a, b)
                if s is not None:
                    out.append((c, s))
        return out


@cache
def _claims(directory: str) -> Claims:
    path = Path(directory) / "claims.yaml"
    data = read_yaml_mapping(path, "claims file")
    if data.get("format") != CLAIMS_FORMAT:
        raise FormatError(f"{path}: format must be {CLAIMS_FORMAT!r}")
    out = Claims()
    for tab, pairs in (data.get("comparisons") or {}).items():
        tid = table_id(tab)
        t = get_table(tid)
        lst = []
        for p in pairs:
            if not (isinstance(p, list) and len(p) == 2):
                raise FormatError(f"{path}: comparisons.{tab}: each entry is [row a, row b], got {p!r}")
            t.row(p[0]), t.row(p[1])
            lst.append((p[0], p[1]))
        out.comparisons[tid] = lst
    for i, c in enumerate(data.get("text_claims") or []):
        where = f"{path}: text_claims[{i}]"
        try:
            tid = table_id(c["table"])
            t = get_table(tid)
            pairs = tuple((a, b) for a, b in c["pairs"])
            for a, b in pairs:
                t.row(a), t.row(b)
            cols = tuple(c["columns"])
            for col in cols:
                t.column(col)
            claim = TextClaim(str(c["id"]), tid, str(c["quote"]), str(c["where"]), pairs, cols, str(c.get("direction", ">")))
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{where}: needs id, table, quote, where, pairs [[a, b], ...], columns ({exc})") from exc
        if claim.direction not in (">", "<"):
            raise FormatError(f"{where}: direction must be '>' or '<'")
        out.text.append(claim)
    return out


def load_claims(directory: str | os.PathLike | None = None) -> Claims:
    return _claims(str(Path(directory) if directory is not None else paper_dir()))
