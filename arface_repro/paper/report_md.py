"""A table's written report as Markdown: the title (quick or partial runs say so), the run notes, every section
of the report (whatever rows and columns it holds) as a Markdown table with its notes, and the figures, linked
by their path relative to the Markdown file."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from arface_repro.paper.report import Report


def md_cell(x) -> str:
    return str(x).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    n = len(header)
    lines = ["| " + " | ".join(md_cell(h) for h in header) + " |", "|" + "---|" * n]
    for r in rows:
        cells = list(r) + [""] * (n - len(r))
        lines.append("| " + " | ".join(md_cell(c) for c in cells[:n]) + " |")
    return "\n".join(lines)


def report_markdown(report: Report, title: str, intro: Sequence[str], figures: Sequence[tuple[str, Path]],
                    md_path: str | os.PathLike) -> str:
    base = Path(md_path).resolve().parent
    out = [f"# {md_cell(title)}", ""]
    out += [f"- {md_cell(line)}" for line in intro]
    if report.summary:
        out += [f"- orderings, {md_cell(s)}" for s in report.summary]
    out.append("")
    for s in report.sections:
        out += [f"## {md_cell(s.title)}", ""]
        if s.kind == "text":
            out += [md_cell(" ".join(" ".join(r) for r in s.rows)), ""]
        else:
            out += [md_table(s.header, s.rows), ""]
        out += [f"- {md_cell(n)}" for n in s.notes]
        out.append("")
    if figures:
        out += ["## Figures", ""]
        for caption, path in figures:
            rel = os.path.relpath(Path(path).resolve(), base)
            out += [f"![{md_cell(caption)}]({Path(rel).as_posix()})", "", f"*{md_cell(caption)}*", ""]
    return "\n".join(out).rstrip() + "\n"
