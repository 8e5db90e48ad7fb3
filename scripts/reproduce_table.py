#!/usr/bin/env python
"""Regenerate a table of the ARFace paper (T-BIOM 2022) from result records.

    python scripts/reproduce_table.py X            # ablation rows, trained on the synthetic default
    python scripts/reproduce_table.py XI --steps 60 --format md

Tables X and XI (the ablations) are trained at small scale on the built-in synthetic occluded-face
generator when nothing else is configured (minutes on 2 CPU cores; reused from results/runs/ on the
next call). For the other tables this prints the measured records present under results/runs/.
The paper's printed values are not transcribed in this package yet, so no paper column is shown; the
rows are labelled by method variant.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arface_repro.errors import ArfaceError  # noqa: E402
from arface_repro.io.records import load_records  # noqa: E402
from arface_repro.tables.synthetic_ablation import TABLES, run_table  # noqa: E402
from arface_repro.utils.atomic import atomic_open  # noqa: E402

ROMAN = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI"]


def table_id(text: str) -> str:
    t = text.strip().upper()
    if t.isdigit() and 1 <= int(t) <= 11:
        return ROMAN[int(t) - 1]
    if t in ROMAN:
        return t
    raise SystemExit(f"unknown table {text!r}: give 1..11 or I..XI")


def render(header: list[str], rows: list[list[str]], fmt: str) -> str:
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(header)
        w.writerows(rows)
        return buf.getvalue()
    if fmt == "md":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines) + "\n"
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]) + "\n"


def fmt_num(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def synthetic_table(tid: str, args) -> tuple[list[str], list[list[str]]]:
    overrides = list(args.override or [])
    if args.steps:
        overrides.append(f"train.steps={args.steps}")
    t0 = time.time()
    done = run_table(tid, Path(args.runs_dir), overrides, rerun=args.rerun,
                     log=(lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr)))
    if not args.quiet:
        print(f"  ({time.time() - t0:.0f} s)", file=sys.stderr)
    header = ["row", "config", "synthetic Acc (%)", "drop occluded (%)", "drop clean (%)", "record"]
    rows = [[row.label, row.config, fmt_num(rec["metrics"].get("Acc")), fmt_num(rec["metrics"].get("drop_occluded")),
             fmt_num(rec["metrics"].get("drop_clean")), Path(rec["_path"]).name] for row, rec in done]
    return header, rows


def records_table(args) -> tuple[list[str], list[list[str]]]:
    rows = []
    for rec in load_records(args.runs_dir):
        metrics = ", ".join(f"{k} {v:.2f}" for k, v in rec["metrics"].items() if isinstance(v, (int, float)))
        rows.append([rec["protocol"], rec["rule"], str(rec.get("model") or "-"), metrics, Path(rec["_path"]).name])
    return ["protocol", "rule", "model", "metrics (%)", "record"], rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("table", help="table number, 1..11 or I..XI")
    ap.add_argument("--format", choices=("text", "md", "csv"), default="text",
                    help="text prints; md/csv also write results/tables/table_XX.{md,csv}")
    ap.add_argument("--runs-dir", default=str(ROOT / "results" / "runs"))
    ap.add_argument("--tables-dir", default=str(ROOT / "results" / "tables"))
    ap.add_argument("--steps", type=int, help="training steps per synthetic row (quick mode)")
    ap.add_argument("--override", action="append", help="config override key=value for every synthetic row")
    ap.add_argument("--rerun", action="store_true", help="train again even when a matching record exists")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    tid = table_id(args.table)
    try:
        if tid in TABLES:
            title = (f"Table {tid} — synthetic small-scale reproduction (built-in occluded-face generator, "
                     f"tiny backbone, CPU); not comparable in absolute value with the paper's numbers")
            header, rows = synthetic_table(tid, args)
        else:
            title = (f"Table {tid} — the paper's values are not transcribed in this package; "
                     f"measured records under {args.runs_dir}:")
            header, rows = records_table(args)
    except ArfaceError as exc:
        print(f"reproduce_table: error: {exc}", file=sys.stderr)
        return 2
    text = render(header, rows, args.format)
    print(title)
    print(text if rows else "(no records yet: run `arface evaluate ...` first)\n", end="")
    if args.format in ("md", "csv"):
        out = Path(args.tables_dir) / f"table_{ROMAN.index(tid) + 1:02d}.{args.format}"
        with atomic_open(out, "w", encoding="utf-8") as fh:
            fh.write((f"# {title}\n\n" if args.format == "md" else "") + text)
        print(f"written: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
