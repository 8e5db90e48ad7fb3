"""Render reports and the paper's tables as text (aligned columns), Markdown or CSV."""

from __future__ import annotations

import csv
import io
import textwrap
from collections.abc import Sequence

from arface_repro.paper.report import Report, Section
from arface_repro.paper.targets import Table


def _text_table(header: list[str], rows: list[list[str]], max_width: int = 60) -> str:
    cols = len(header)
    rows = [list(r) + [""] * (cols - len(r)) for r in rows]
    widths = [min(max_width, max([len(header[i])] + [len(r[i]) for r in rows])) for i in range(cols)]

    def cut(s: str, w: int) -> list[str]:
        return textwrap.wrap(s, w) or [""] if len(s) > w else [s]

    out = []
    for r in [header, ["-" * w for w in widths]] + rows:
        parts = [cut(str(x), w) for x, w in zip(r, widths)]
        for k in range(max(len(p) for p in parts)):
            out.append("  ".join((p[k] if k < len(p) else "").ljust(w) for p, w in zip(parts, widths)).rstrip())
    return "\n".join(out)


def section_text(s: Section) -> str:
    lines = [s.title, "=" * min(len(s.title), 100), _text_table(s.header, s.rows)]
    for n in s.notes:
        lines.append(textwrap.fill(n, 110, initial_indent="  * ", subsequent_indent="    "))
    return "\n".join(lines)


def _md_cell(x: str) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def section_md(s: Section) -> str:
    lines = [f"### {s.title}", "", "| " + " | ".join(_md_cell(h) for h in s.header) + " |",
             "|" + "---|" * len(s.header)]
    lines += ["| " + " | ".join(_md_cell(x) for x in r) + " |" for r in s.rows]
    lines.append("")
    lines += [f"- {n}" for n in s.notes]
    return "\n".join(lines) + "\n"


def report_text(r: Report, extra: Sequence[str] = ()) -> str:
    parts = [section_text(s) for s in r.sections]
    if r.summary or extra:
        parts.append("Summary\n=======\n" + "\n".join(f"  {x}" for x in [*r.summary, *extra]))
    return "\n\n".join(parts) + "\n"


def report_md(r: Report, extra: Sequence[str] = ()) -> str:
    parts = [section_md(s) for s in r.sections]
    if r.summary or extra:
        parts.append("### Summary\n\n" + "\n".join(f"- {x}" for x in [*r.summary, *extra]) + "\n")
    return "\n".join(parts)


def rows_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def report_csv(r: Report) -> str:
    return rows_csv(r.csv_rows)


# ----------------------------------------------------------------------------- the paper's table alone

def targets_csv(t: Table) -> str:
    """The printed table: header line(s), then every row, cells exactly as printed."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(t.printed_lines())
    return buf.getvalue()


def targets_text(t: Table) -> str:
    title = f"Table {t.id}: {t.title}"
    body = _text_table(t.header[0], [*t.header[1:], *(r.printed for r in t.rows)], max_width=60)
    return f"{title}\n{body}\n"


def targets_md(t: Table) -> str:
    head = [" / ".join(x for x in col if x) for col in zip(*t.header)] if len(t.header) > 1 else t.header[0]
    if len(t.header) > 1:   # a group header spans the cells after it: "TAR on IJB-B dataset / FAR=0.0001"
        groups, cur = [], ""
        for g in t.header[0]:
            cur = g or cur
            groups.append(cur)
        head = [f"{g} / {h}" if g and h and g != h else (g or h) for g, h in zip(groups, t.header[-1])]
        head[0] = t.header[0][0]
    lines = [f"**Table {t.id}: {t.title}**", "", "| " + " | ".join(_md_cell(h) for h in head) + " |",
             "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_md_cell(x) for x in r.printed) + " |" for r in t.rows]
    return "\n".join(lines) + "\n"
