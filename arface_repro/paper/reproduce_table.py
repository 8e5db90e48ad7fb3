"""Regenerate one table of the paper beside what was measured: the work behind `arface paper table X` (and its
wrapper `python scripts/reproduce_table.py X`).

`reproduce_table(TableOptions(...))` checks the outputs, optionally fills missing cells (`run_missing`), runs or
reuses the small-scale reproductions (`small_scale`), builds the report (`report.build_report`), writes it
(`report_files`), prints the requested view on stdout and returns the exit status (0; 1 with `strict` when a
measured cell is off or flagged). Progress goes to `log` (stderr by default). Bad input raises ArfaceError /
OSError; the command-line adapter (`arface_repro.commands.paper`) turns them into one line and exit status 2.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from arface_repro.errors import ConfigError
from arface_repro.paper import render
from arface_repro.paper.check import check_transcription
from arface_repro.paper.manifest import Manifest, load_manifest
from arface_repro.paper.report import Report, Section, SeedRuns, build_report, drops_summary
from arface_repro.paper.report_files import report_paths, write_report
from arface_repro.paper.report_summary import run_kind, terminal_summary
from arface_repro.paper.run_missing import execute, load_data_spec
from arface_repro.paper.small_scale import (
    LFW_SCALE_TITLE,
    SYNTHETIC_TITLE,
    diagnostic_row_ids,
    lfw_scale_rows,
    parse_seeds,
    synthetic_budget,
    synthetic_diagnostic_sections,
    synthetic_rows,
)
from arface_repro.paper.targets import get_table, table_id, table_number
from arface_repro.shared_data import REPO_ROOT, shared_path
from arface_repro.utils.atomic import atomic_open
from arface_repro.utils.outputs import Output, check_outputs
from arface_repro.utils.provenance import code_summary

# Defaults beside the checkout (an editable install runs from it), as `python scripts/reproduce_table.py` always had.
DEFAULT_RUNS = REPO_ROOT / "results" / "runs"
DEFAULT_TABLES = REPO_ROOT / "results" / "tables"


@dataclass
class TableOptions:
    """What `arface paper table` takes (one field per command-line option; see `commands/paper.py`)."""
    table: str | None = None
    targets_only: bool = False
    format: str = "text"                  # text | md | csv
    wide: bool = False
    runs_dir: str | None = None           # None: DEFAULT_RUNS
    tables_dir: str | None = None         # None: DEFAULT_TABLES
    strict: bool = False
    no_synthetic: bool = False
    seeds: str | None = None
    steps: int | None = None
    override: list[str] = field(default_factory=list)
    workers: int | None = None
    rerun: bool = False
    extras: bool = False
    full: bool = False
    lfw_scale: bool = False
    data_root: str | None = None
    run: bool = False
    data: str | None = None
    trust_torchscript: bool = False
    check_paper: str | None = None
    quiet: bool = False

    @property
    def runs(self) -> str:
        """The runs folder (`runs_dir`, else DEFAULT_RUNS)."""
        return str(self.runs_dir or DEFAULT_RUNS)

    @property
    def tables(self) -> str:
        """The output folder of the tables (`tables_dir`, else DEFAULT_TABLES)."""
        return str(self.tables_dir or DEFAULT_TABLES)

    @classmethod
    def from_namespace(cls, ns) -> TableOptions:
        return cls(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(cls) if hasattr(ns, f.name)})


@dataclass
class SmallScale:
    """The small-scale reproductions run for a table: {scale: {row id: SeedRuns}}, their titles, the lines
    and sections they add to the report, and the run kind (quick / partial / None) for the titles."""
    scales: dict[str, dict[str, SeedRuns]] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    kind: str | None = None


def stderr_log(quiet: bool) -> Callable[[str], None]:
    return (lambda s: None) if quiet else (lambda s: print(s, file=sys.stderr, flush=True))


def reproduce_table(opts: TableOptions, log: Callable[[str], None] | None = None) -> int:
    log = log or stderr_log(opts.quiet)
    opts = dataclasses.replace(opts, runs_dir=opts.runs, tables_dir=opts.tables)
    if opts.check_paper:
        return _check_paper(opts.check_paper)
    if not opts.table:
        raise ConfigError("give a table number (1..11 or I..XI)")
    tid = table_id(opts.table)
    num = table_number(tid)
    tables_dir = Path(opts.tables)
    if opts.format != "text" or not opts.targets_only:   # checked before any work starts
        _check_report_outputs(tables_dir, num)
    if opts.targets_only:
        return _print_targets(tid, num, opts.format, tables_dir, log)
    if opts.run:
        _fill_missing(tid, opts, log)
    m = load_manifest()
    overrides = list(opts.override) + ([f"train.steps={opts.steps}"] if opts.steps else [])
    small = SmallScale()
    _add_synthetic(small, m, tid, opts, overrides, log)
    _add_lfw_scale(small, m, tid, opts, overrides, log)
    small.lines.append(f"code: {code_summary()} (measured records made by other code are flagged 'stale')")
    report = build_report(tid, opts.runs, small.scales, small.titles)
    report.sections[len(report.sections):] = small.sections
    md_path, html_path = write_report(report, small.scales, tables_dir, num, small.kind, small.lines, opts.runs,
                                      overrides)
    print(_view(report, opts, small, tables_dir, num, md_path, html_path, log), end="")
    return _strict_status(report, log) if opts.strict else 0


def _check_paper(paper_txt: str) -> int:
    problems = check_transcription(paper_txt)
    for p in problems:
        print(p)
    print(f"{len(problems)} difference(s) between protocols/paper/ and {paper_txt}")
    return 1 if problems else 0


def _check_report_outputs(tables_dir: Path, num: int) -> None:
    md_out, html_out, fig_out = report_paths(tables_dir, num)
    check_outputs([Output(tables_dir, "--tables-dir", kind="dir"), Output(md_out, "the Markdown report"),
                   Output(html_out, "the HTML report"), Output(fig_out, "the report's figures", kind="dir")], [])
    tables_dir.mkdir(parents=True, exist_ok=True)


def _print_targets(tid: str, num: int, fmt: str, tables_dir: Path, log) -> int:
    """The paper's table alone, as printed (text, Markdown or CSV; the last two also written to a file)."""
    text = {"text": render.targets_text, "md": render.targets_md, "csv": render.targets_csv}[fmt](get_table(tid))
    print(text, end="")
    if fmt != "text":
        write_text(tables_dir / f"table_{num:02d}_paper.{fmt}", text, log)
    return 0


def _fill_missing(tid: str, opts: TableOptions, log) -> None:
    if not opts.data:
        raise ConfigError("--run needs --data DATA.yaml (dataset roots, training data, checkpoints)")
    data = load_data_spec(opts.data, trust_torchscript=opts.trust_torchscript)
    t0 = time.time()
    log(f"Table {tid}: filling missing cells with {opts.data} ...")
    execute(tid, data, opts.runs, log=log, quiet=opts.quiet)
    log(f"  ({time.time() - t0:.0f} s)")


def _add_synthetic(small: SmallScale, m: Manifest, tid: str, opts: TableOptions, overrides: list[str], log) -> None:
    """Tables X and XI: train (or reuse) the synthetic rows over the seeds."""
    if not m.scale_cells("synthetic", tid) or opts.no_synthetic:
        return
    seeds = parse_seeds(opts.seeds, m.scale_seeds("synthetic"))
    small.kind = run_kind(opts.steps, seeds, m.scale_seeds("synthetic"))
    log(f"Table {tid}: synthetic small-scale rows, seeds {seeds} ...")
    rows, extras, secs = synthetic_rows(tid, opts.runs, seeds, overrides, opts.workers, opts.rerun, opts.extras, log,
                                        full=opts.full)
    small.scales["synthetic"] = rows
    small.titles["synthetic"] = SYNTHETIC_TITLE
    small.lines.append(f"synthetic rows: {secs:.0f} s wall time for this call "
                       f"({sum(len(r.records) for r in [*rows.values(), *extras.values()])} row-seed results)")
    small.lines.append(synthetic_budget(rows, extras, seeds, opts.full))
    paper_extras = {k: v for k, v in extras.items() if k not in diagnostic_row_ids(tid)}
    if paper_extras:
        small.sections.append(extra_rows_section(tid, paper_extras, m))
    small.sections += synthetic_diagnostic_sections(tid, rows, extras)


def _add_lfw_scale(small: SmallScale, m: Manifest, tid: str, opts: TableOptions, overrides: list[str], log) -> None:
    """The LFW-scale rows when asked for (--lfw-scale / --data-root); otherwise a hint when the data is there."""
    if not m.scale_cells("lfw_scale", tid):
        return
    if not (opts.lfw_scale or opts.data_root):
        if not opts.quiet and shared_path("data", "blufr", "blufr_lfw_config.mat") is not None:
            small.lines.append("LFW-scale rows not run: add --lfw-scale (LFW + BLUFR from the shared folder; "
                               "tens of minutes on 2 CPU cores)")
        return
    root: str | Path | None = opts.data_root
    if root is None:
        root = shared_path("data")
        if root is None:
            raise ConfigError("--lfw-scale needs ../shared (or $ARFACE_SHARED) or --data-root")
    seeds = parse_seeds(opts.seeds, m.scale_seeds("lfw_scale"))
    small.kind = small.kind or run_kind(opts.steps, seeds, m.scale_seeds("lfw_scale"))
    log(f"Table {tid}: LFW-scale rows from {root}, seeds {seeds} ...")
    rows, secs = lfw_scale_rows(tid, root, opts.runs, seeds, overrides, opts.workers or 1, opts.rerun, log)
    small.scales["LFW-scale"] = rows
    small.titles["LFW-scale"] = LFW_SCALE_TITLE
    small.lines.append(f"LFW-scale rows: {secs:.0f} s wall time for this call")


def extra_rows_section(tid: str, extras: dict[str, SeedRuns], m: Manifest) -> Section:
    """The extra synthetic rows (manifest `synthetic.extra_rows`, e.g. per-image reward): not part of the paper."""
    t = get_table(tid)
    labels = {e["id"]: e["label"] for e in (m.synthetic.get("extra_rows") or {}).get(tid, [])}
    rows = [[labels.get(rid, rid), sr.config] + [sr.summary(c.metric) for c in t.columns]
            + [drops_summary(sr) if sr.values("drop_occluded") else ""] for rid, sr in extras.items()]
    return Section(f"Table {tid} - extra synthetic rows (not in the paper)",
                   ["row", "config", *[c.header for c in t.columns],
                    "test-time drops %: occluded nose by seed | clean cells"], rows,
                   ["mean ± sd over the same seeds as the table's synthetic rows"])


def _view(report: Report, opts: TableOptions, small: SmallScale, tables_dir: Path, num: int, md_path: Path,
          html_path: Path, log) -> str:
    """What stdout shows: the CSV cells (also written), the Markdown report, the full tables or the summary."""
    if opts.format == "csv":
        text = render.report_csv(report)
        write_text(tables_dir / f"table_{num:02d}.csv", text, log)
        return text
    if opts.format == "md":
        return md_path.read_text(encoding="utf-8")
    if opts.wide:
        return render.report_text(report, small.lines) + f"report: {md_path}\n        {html_path}\n"
    return terminal_summary(report, small.kind, small.lines, [str(md_path), str(html_path)])


def _strict_status(report: Report, log) -> int:
    """--strict: 1 when a measured cell is outside its tolerance or its record is flagged, else 0."""
    n_off = sum(1 for c in report.cells.values() if c.status == "OFF")
    flagged = [c for c in report.cells.values() if c.flags]
    if n_off:
        log(f"--strict: {n_off} measured cell(s) outside tolerance")
    for c in flagged:
        log(f"--strict: refused {c.record_path}: " + "; ".join(c.flags))
    return 1 if n_off or flagged else 0


def write_text(out: Path, text: str, log) -> None:
    """Write a table file atomically; a full disk's error names the file (a buffered write's carries no name)."""
    try:
        with atomic_open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(out)) from None
    log(f"written: {out}")
