"""A table's written report as one self-contained HTML file: the same content as the Markdown report, status
colours on the cells (within / OFF / missing / reported; ordering verdicts), and every figure embedded as a
`data:image/png;base64,...` URI, so the file can be mailed or archived alone.

The section tables are rendered from whatever rows and columns the report's sections hold; a cell is coloured
by its text alone (`cell_class`)."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from arface_repro.errors import FormatError
from arface_repro.paper.report import Report

_MIME = {".png": "image/png", ".svg": "image/svg+xml"}

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.8em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.within, td.holds-robust { background: #d9f2d9; }
td.holds { background: #eef8e4; }
td.off, td.reversed-robust { background: #f8d0d0; }
td.reversed { background: #fbe8d4; }
td.missing { background: #eeeeee; color: #777; }
td.reported { background: #e4ecf7; }
tr.block td { background: #fafafa; font-weight: bold; }
ul.notes { font-size: 0.85em; color: #444; }
.banner { background: #fff3cd; border: 1px solid #e0c36c; padding: 0.5em 1em; }
figure { margin: 1em 0; } figcaption { font-size: 0.85em; color: #444; }
img { max-width: 100%; border: 1px solid #ddd; }
"""


def cell_class(text: str) -> str:
    """The colour class of a cell from its text ('' for none)."""
    t = str(text).strip()
    if t.startswith("within"):
        return "within"
    if t == "OFF":
        return "off"
    if t == "missing":
        return "missing"
    if t == "reported":
        return "reported"
    if t.startswith("holds (robust)"):
        return "holds-robust"
    if t.startswith("holds"):
        return "holds"
    if t.startswith("reversed (robust)"):
        return "reversed-robust"
    if t.startswith("reversed"):
        return "reversed"
    return ""


def data_uri(path: str | Path) -> str:
    p = Path(path)
    mime = _MIME.get(p.suffix.lower())
    if mime is None:
        raise FormatError(f"{p}: a report figure must be .png or .svg")
    return f"data:{mime};base64,{base64.b64encode(p.read_bytes()).decode('ascii')}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    n = len(header)
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"]
    for r in rows:
        cells = list(r) + [""] * (n - len(r))
        block = bool(str(cells[0]).strip()) and not any(str(c).strip() for c in cells[1:])
        tds = []
        for c in cells[:n]:
            cls = cell_class(c)
            tds.append(f"<td class=\"{cls}\">{html.escape(str(c))}</td>" if cls else f"<td>{html.escape(str(c))}</td>")
        out.append(("<tr class=\"block\">" if block else "<tr>") + "".join(tds) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def report_html(report: Report, title: str, intro: Sequence[str], figures: Sequence[tuple[str, Path]],
                banner: str | None = None) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">", f"<title>{e(title)}</title>",
           f"<style>{_CSS}</style></head><body>", f"<h1>{e(title)}</h1>"]
    if banner:
        out.append(f"<p class=\"banner\">{e(banner)}</p>")
    items = list(intro) + [f"orderings, {s}" for s in report.summary]
    if items:
        out.append("<ul>" + "".join(f"<li>{e(x)}</li>" for x in items) + "</ul>")
    for s in report.sections:
        out.append(f"<h2>{e(s.title)}</h2>")
        if s.kind == "text":
            out.append("<p>" + e(" ".join(" ".join(r) for r in s.rows)) + "</p>")
        else:
            out.append(_table(s.header, s.rows))
        if s.notes:
            out.append("<ul class=\"notes\">" + "".join(f"<li>{e(n)}</li>" for n in s.notes) + "</ul>")
    if figures:
        out.append("<h2>Figures</h2>")
        for caption, path in figures:
            out.append(f"<figure><img src=\"{data_uri(path)}\" alt=\"{e(caption)}\">"
                       f"<figcaption>{e(caption)}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
