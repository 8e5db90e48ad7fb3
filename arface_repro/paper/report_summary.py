"""What the terminal shows of a table run (the written report holds the rest): the title, the cell counts, the
OFF cells, the ordering verdicts per small-scale reproduction, what is missing, and the report's paths; every
line at most 100 columns. Also the run's kind (`run_kind`): a quick or partial run says so in the title of the
summary and of the written report."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from arface_repro.paper.report import LITERATURE, MISSING, OFF, WITHIN, Report
from arface_repro.paper.synthetic_diagnostics import POLICY_COLUMN

WIDTH = 100
_MAX_LISTED = 8


def run_kind(steps: int | None, seeds: Sequence[int] | None, default_seeds: Sequence[int] | None) -> str | None:
    """'quick run: ...' / 'partial run: ...' when the small-scale rows were trained with fewer steps or seeds than
    the manifest's, else None."""
    parts = []
    if steps:
        parts.append(f"{steps} training steps per run")
    if seeds is not None and default_seeds is not None and len(seeds) < len(default_seeds):
        parts.append(f"seed{'s' * (len(seeds) != 1)} {', '.join(map(str, seeds))} of "
                     f"{', '.join(map(str, default_seeds))}" + (" (no spread)" if len(seeds) == 1 else ""))
    if not parts:
        return None
    return ("quick run" if steps else "partial run") + ": " + "; ".join(parts) + " - not the full reproduction"


def report_title(report: Report, kind: str | None) -> str:
    t = report.table
    title = f"Table {t.id}: {t.title}"
    return f"{title} [{kind.split(':', 1)[0].upper()}]" if kind else title


def _wrap(line: str, indent: str = "") -> list[str]:
    return textwrap.wrap(line, WIDTH, subsequent_indent=indent + "  ", break_long_words=True) or [""]


def glance(report: Report) -> list[str]:
    """The cell counts and the OFF cells (at most 8), unwrapped: the first lines of the summary and the report."""
    rep = [c for c in report.cells.values() if c.status != LITERATURE]
    n_within = sum(c.status == WITHIN for c in rep)
    n_off = sum(c.status == OFF for c in rep)
    n_miss = sum(c.status == MISSING for c in rep)
    lines = [f"measured cells: {n_within + n_off} of {len(rep)} reproducible ({n_within} within tolerance, "
             f"{n_off} OFF, {n_miss} missing); literature rows: reported values only"]
    offs = [c for c in rep if c.status == OFF]
    for c in offs[:_MAX_LISTED]:
        dec = c.row.decimals(c.col)
        col = f"{c.col.group}: {c.col.header}" if c.col.group else c.col.header
        lines.append(f"OFF {c.row.id} | {col}: {c.measured:.{dec}f} vs paper {c.row.text(c.col)} "
                     f"({c.diff:+.{dec}f}, tolerance {c.tol:g})")
    if len(offs) > _MAX_LISTED:
        lines.append(f"... and {len(offs) - _MAX_LISTED} more OFF cells")
    flagged = [c for c in rep if c.flags]   # stale / other model / model unverified: never a plain result
    for c in flagged[:_MAX_LISTED]:
        col = f"{c.col.group}: {c.col.header}" if c.col.group else c.col.header
        lines.append(f"FLAGGED {c.row.id} | {col}: " + "; ".join(c.flags))
    if len(flagged) > _MAX_LISTED:
        lines.append(f"... and {len(flagged) - _MAX_LISTED} more flagged cells")
    robust = [(scale, o) for o in report.orderings for scale, v in o["scales"].items()
              if v.get("verdict") == "reversed (robust)"]   # the not significant ones are only counted
    for scale, o in robust[:_MAX_LISTED]:
        lines.append(f"{scale}: {o['a']} vs {o['b']} ({o['column']}): reversed (robust)")
    if len(robust) > _MAX_LISTED:
        lines.append(f"... and {len(robust) - _MAX_LISTED} more robustly reversed orderings")
    if n_miss:
        lines.append(f"{n_miss} missing cells: the report lists the run, config and data that fill each "
                     "(`--run --data DATA.yaml` fills them)")
    return lines


def terminal_summary(report: Report, kind: str | None, extra: Sequence[str], paths: Sequence[str]) -> str:
    lines = _wrap(report_title(report, kind) + f"  [{report.table.location}]")
    if kind:
        lines += _wrap(kind[0].upper() + kind[1:])
    for x in glance(report):
        lines += _wrap(x, "  " if x.startswith(("OFF ", "FLAGGED ", "... ")) else "")
    for s in report.summary:
        lines += _wrap(f"orderings, {s}")
    for sec in report.sections:  # a learned policy's state (synthetic diagnostics): one line per row that has one
        if POLICY_COLUMN in sec.header:
            i, k = sec.header.index(POLICY_COLUMN), sec.header.index("config")
            for row in sec.rows:
                if row[i]:
                    lines += _wrap(f"policy {row[k]}: {row[i]}", "  ")
    for x in extra:
        lines += _wrap(x)
    for i, p in enumerate(paths):
        lines += _wrap(("report: " if i == 0 else "        ") + str(p))
    lines.append("--wide prints the full tables here")
    return "\n".join(lines) + "\n"
