"""Write a table's report: `<tables>/table_NN.md`, the self-contained `<tables>/table_NN.html` and the figures
under `<tables>/table_NN_figures/` (the Markdown links them; the HTML embeds them). Each file is written to a
temp file and renamed."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from arface_repro.paper.report import Report, SeedRuns
from arface_repro.paper.report_figures import report_figures
from arface_repro.paper.report_html import report_html
from arface_repro.paper.report_md import report_markdown
from arface_repro.paper.report_summary import glance, report_title
from arface_repro.utils.atomic import atomic_open


def report_paths(tables_dir: str | os.PathLike, num: int) -> tuple[Path, Path, Path]:
    d = Path(tables_dir)
    return d / f"table_{num:02d}.md", d / f"table_{num:02d}.html", d / f"table_{num:02d}_figures"


def write_report(report: Report, scales: dict[str, dict[str, SeedRuns]], tables_dir: str | os.PathLike, num: int,
                 kind: str | None, intro: Sequence[str], runs_dir: str | os.PathLike | None = None,
                 overrides: Sequence[str] = ()) -> tuple[Path, Path]:
    """Figures, then the Markdown and HTML reports; returns (md path, html path)."""
    md_path, html_path, fig_dir = report_paths(tables_dir, num)
    figures = report_figures(report, scales, fig_dir, f"table_{num:02d}", runs_dir, overrides)
    title = report_title(report, kind)
    lines = glance(report) + list(intro)
    md = report_markdown(report, title, ([kind] if kind else []) + lines, figures, md_path)
    page = report_html(report, title, lines, figures, banner=kind)
    with atomic_open(md_path, "w", encoding="utf-8") as fh:
        fh.write(md)
    with atomic_open(html_path, "w", encoding="utf-8") as fh:
        fh.write(page)
    return md_path, html_path
