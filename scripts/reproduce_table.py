#!/usr/bin/env python
"""Regenerate a table of the ARFace paper (Zhang et al., IEEE T-BIOM 4(1), 2022) beside the paper's values.

    python scripts/reproduce_table.py X                        # Table X: a summary here, the report in results/tables/
    python scripts/reproduce_table.py X --wide                 # the full tables here as well
    python scripts/reproduce_table.py 11 --format md           # print the Markdown report instead of the summary
    python scripts/reproduce_table.py 2 --targets-only --format csv   # the paper's Table II alone, as printed
    python scripts/reproduce_table.py X --steps 20 --seeds 0   # quick mode (a few steps, one seed)
    python scripts/reproduce_table.py X --lfw-scale            # + the LFW-scale columns (needs ../shared or --data-root)
    python scripts/reproduce_table.py VI --run --data DATA.yaml   # evaluate / train what DATA.yaml makes possible
    python scripts/reproduce_table.py X --strict               # exit 1 when a measured cell is off or not current

Every run writes the report results/tables/table_NN.md and a self-contained table_NN.html (figures embedded;
the Markdown links them under table_NN_figures/) and prints a summary of at most 100 columns and the report's
path. Quick or partial runs (--steps, fewer seeds than the manifest's) say so in the titles.

For every cell: the paper's value (protocols/paper/table_XX.yaml), the measured value from the result record
the run manifest names (protocols/paper/manifest.yaml: <runs>/paper/<run>/<protocol>.json), the difference
and a status (within tolerance / OFF / missing). Then, for every pair of rows the paper compares, the
difference in the protocol's resolution and, where two results exist, a paired test. Tables X and XI are
also trained at small scale on the built-in synthetic occluded-face generator (several seeds; records are
reused when config, overrides, seed, the code identity and the environment match: after any change to the
package's source they are trained again). A measured cell whose record was made by other code ('stale') or
by another model than the row's ('other model', 'model unverified') is flagged. Exit status: 0, 1 with
--strict when a filled cell is off or flagged, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_TABLES = ROOT / "results" / "tables"

from arface_repro.errors import ArfaceError  # noqa: E402


def _write_table(out: Path, text: str, log) -> None:
    from arface_repro.utils.atomic import atomic_open

    try:
        with atomic_open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:  # a full disk: name the table (a buffered write's error carries no file name)
        raise OSError(exc.errno, exc.strerror or str(exc), str(out)) from None
    log(f"written: {out}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("table", nargs="?", help="table number, 1..11 or I..XI")
    ap.add_argument("--targets-only", action="store_true", help="print the paper's table alone, as printed")
    ap.add_argument("--format", choices=("text", "md", "csv"), default="text",
                    help="text: a summary (--wide: the full tables); md: print the Markdown report; csv: print the "
                         "cells as CSV and also write results/tables/table_XX.csv")
    ap.add_argument("--wide", action="store_true", help="print the full tables (wider than 100 columns)")
    ap.add_argument("--runs-dir", default=str(ROOT / "results" / "runs"), help="result records (default results/runs)")
    ap.add_argument("--tables-dir", default=str(DEFAULT_TABLES),
                    help="where the reports go (default results/tables)")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 when a measured cell is outside its tolerance, or its record is stale (made by other "
                         "code) or not from the row's model")
    g = ap.add_argument_group("small-scale reproductions (Tables X and XI)")
    g.add_argument("--no-synthetic", action="store_true", help="do not train / show the synthetic rows")
    g.add_argument("--seeds", help="seeds, e.g. 0,1,2 or 0-4 (default: the manifest's, 0-4)")
    g.add_argument("--steps", type=int, help="training steps per small-scale run (quick mode)")
    g.add_argument("--override", action="append", default=[], metavar="KEY=VALUE", help="config override for every small-scale run")
    g.add_argument("--workers", type=int, help="parallel training processes (default: the CPUs, at most 8)")
    g.add_argument("--rerun", action="store_true", help="train again even when a matching record exists")
    g.add_argument("--extras", action="store_true", help="also the extra rows (per-image reward), not part of the paper")
    g.add_argument("--full", action="store_true", help="all the table's synthetic blocks (default: the manifest's "
                                                        "default_blocks, the MobileFaceNet block, + diagnostic rows)")
    g.add_argument("--lfw-scale", action="store_true", help="also train the LFW-scale rows (LFW + BLUFR from ../shared)")
    g.add_argument("--data-root", help="LFW-scale data root laid out like ../shared/data (lfw/aligned-112x96, lfw/pairs.txt, "
                                       "blufr/blufr_lfw_config.mat); implies --lfw-scale")
    g = ap.add_argument_group("filling measured cells")
    g.add_argument("--run", action="store_true", help="train / evaluate the missing cells DATA.yaml makes possible")
    g.add_argument("--data", help="DATA.yaml: dataset roots, training data and checkpoints (paths only)")
    g.add_argument("--trust-torchscript", action="store_true",
                   help="let DATA.yaml name torchscript: checkpoints (a TorchScript file is a program; refused otherwise)")
    ap.add_argument("--check-paper", metavar="PAPER.txt", help="compare every transcribed table with a text copy of the paper")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args(argv)
    try:
        return run(args)
    except ArfaceError as exc:
        print(f"reproduce_table: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system refused (read-only or full --tables-dir / --runs-dir, ...)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"reproduce_table: error: {where}{exc.strerror or _one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: workers are stopped (utils.process_pool); one line, the shell's status
        print("reproduce_table: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def run(args) -> int:
    from arface_repro.errors import ConfigError
    from arface_repro.paper import render
    from arface_repro.paper.targets import get_table, table_id, table_number

    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    if args.check_paper:
        from arface_repro.paper.check import check_transcription

        problems = check_transcription(args.check_paper)
        for p in problems:
            print(p)
        print(f"{len(problems)} difference(s) between protocols/paper/ and {args.check_paper}")
        return 1 if problems else 0
    if not args.table:
        raise ConfigError("give a table number (1..11 or I..XI)")
    tid = table_id(args.table)
    t = get_table(tid)
    num = table_number(tid)
    tables_dir = Path(args.tables_dir)
    if args.format != "text" or not args.targets_only:   # checked before any work starts
        from arface_repro.utils.outputs import Output, check_outputs

        from arface_repro.paper.report_files import report_paths

        md_out, html_out, fig_out = report_paths(tables_dir, num)
        check_outputs([Output(tables_dir, "--tables-dir", kind="dir"), Output(md_out, "the Markdown report"),
                       Output(html_out, "the HTML report"), Output(fig_out, "the report's figures", kind="dir")], [])
        tables_dir.mkdir(parents=True, exist_ok=True)

    if args.targets_only:
        text = {"text": render.targets_text, "md": render.targets_md, "csv": render.targets_csv}[args.format](t)
        print(text, end="")
        if args.format != "text":
            _write_table(tables_dir / f"table_{num:02d}_paper.{args.format}", text, log)
        return 0

    if args.run:
        from arface_repro.paper.run_missing import execute, load_data_spec

        if not args.data:
            raise ConfigError("--run needs --data DATA.yaml (dataset roots, training data, checkpoints)")
        data = load_data_spec(args.data, trust_torchscript=args.trust_torchscript)
        t0 = time.time()
        log(f"Table {tid}: filling missing cells with {args.data} ...")
        execute(tid, data, args.runs_dir, log=log, quiet=args.quiet)
        log(f"  ({time.time() - t0:.0f} s)")

    from arface_repro.paper.report import build_report
    from arface_repro.paper.small_scale import (LFW_SCALE_TITLE, SYNTHETIC_TITLE, diagnostic_row_ids, lfw_scale_rows,
                                                parse_seeds, synthetic_budget, synthetic_diagnostic_sections, synthetic_rows)
    from arface_repro.paper.manifest import load_manifest
    from arface_repro.paper.report_files import write_report
    from arface_repro.paper.report_summary import run_kind, terminal_summary

    m = load_manifest()
    overrides = list(args.override)
    if args.steps:
        overrides.append(f"train.steps={args.steps}")
    scales, titles, extra_lines, extra_sections = {}, {}, [], []
    kind = None
    if m.scale_cells("synthetic", tid) and not args.no_synthetic:
        seeds = parse_seeds(args.seeds, m.scale_seeds("synthetic"))
        kind = run_kind(args.steps, seeds, m.scale_seeds("synthetic"))
        log(f"Table {tid}: synthetic small-scale rows, seeds {seeds} ...")
        rows, extras, secs = synthetic_rows(tid, args.runs_dir, seeds, overrides, args.workers, args.rerun, args.extras, log,
                                            full=args.full)
        scales["synthetic"] = rows
        titles["synthetic"] = SYNTHETIC_TITLE
        extra_lines.append(f"synthetic rows: {secs:.0f} s wall time for this call "
                           f"({sum(len(r.records) for r in [*rows.values(), *extras.values()])} row-seed results)")
        extra_lines.append(synthetic_budget(rows, extras, seeds, args.full))
        paper_extras = {k: v for k, v in extras.items() if k not in diagnostic_row_ids(tid)}
        if paper_extras:
            extra_sections.append(_extra_section(tid, paper_extras, rows))
        extra_sections += synthetic_diagnostic_sections(tid, rows, extras)
    if (args.lfw_scale or args.data_root) and m.scale_cells("lfw_scale", tid):
        root = args.data_root
        if root is None:
            from arface_repro.shared_data import shared_path

            root = shared_path("data")
            if root is None:
                raise ConfigError("--lfw-scale needs ../shared (or $ARFACE_SHARED) or --data-root")
        seeds = parse_seeds(args.seeds, m.scale_seeds("lfw_scale"))
        kind = kind or run_kind(args.steps, seeds, m.scale_seeds("lfw_scale"))
        log(f"Table {tid}: LFW-scale rows from {root}, seeds {seeds} ...")
        rows, secs = lfw_scale_rows(tid, root, args.runs_dir, seeds, overrides, args.workers or 1, args.rerun, log)
        scales["LFW-scale"] = rows
        titles["LFW-scale"] = LFW_SCALE_TITLE
        extra_lines.append(f"LFW-scale rows: {secs:.0f} s wall time for this call")
    elif m.scale_cells("lfw_scale", tid) and not args.quiet:
        from arface_repro.shared_data import shared_path

        if shared_path("data", "blufr", "blufr_lfw_config.mat") is not None:
            extra_lines.append("LFW-scale rows not run: add --lfw-scale (LFW + BLUFR from the shared folder; "
                               "tens of minutes on 2 CPU cores)")

    from arface_repro.utils.provenance import code_summary

    extra_lines.append(f"code: {code_summary()} (measured records made by other code are flagged 'stale')")
    report = build_report(tid, args.runs_dir, scales, titles)
    report.sections[len(report.sections):] = extra_sections
    md_path, html_path = write_report(report, scales, tables_dir, num, kind, extra_lines, args.runs_dir, overrides)
    if args.format == "csv":
        text = render.report_csv(report)
        _write_table(tables_dir / f"table_{num:02d}.csv", text, log)
    elif args.format == "md":
        text = md_path.read_text(encoding="utf-8")
    elif args.wide:
        text = render.report_text(report, extra_lines)
        text += f"report: {md_path}\n        {html_path}\n"
    else:
        text = terminal_summary(report, kind, extra_lines, [md_path, html_path])
    print(text, end="")
    n_off = sum(1 for c in report.cells.values() if c.status == "OFF")
    flagged = [c for c in report.cells.values() if c.flags]
    if args.strict and (n_off or flagged):
        if n_off:
            log(f"--strict: {n_off} measured cell(s) outside tolerance")
        for c in flagged:
            log(f"--strict: refused {c.record_path}: " + "; ".join(c.flags))
        return 1
    return 0


def _extra_section(tid, extras, rows):
    from arface_repro.paper.report import Section
    from arface_repro.paper.targets import get_table

    t = get_table(tid)
    from arface_repro.paper.manifest import load_manifest
    from arface_repro.paper.report import _drops

    labels = {e["id"]: e["label"] for e in (load_manifest().synthetic.get("extra_rows") or {}).get(tid, [])}
    m_rows = []
    for rid, sr in extras.items():
        m_rows.append([labels.get(rid, rid), sr.config] + [sr.summary(c.metric) for c in t.columns]
                      + [_drops(sr) if sr.values("drop_occluded") else ""])
    return Section(f"Table {tid} - extra synthetic rows (not in the paper)",
                   ["row", "config", *[c.header for c in t.columns],
                    "test-time drops %: occluded nose by seed | clean cells"], m_rows,
                   ["mean ± sd over the same seeds as the table's synthetic rows"])


if __name__ == "__main__":
    raise SystemExit(main())
