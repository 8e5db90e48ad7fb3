"""The figures of a table's written report (PNG, matplotlib Agg, written atomically), from the report's own data:

- values by row: one panel per value column, the paper's printed values beside the measured records (one x
  position per row that has a value);
- per small-scale reproduction (synthetic, LFW-scale): the same panels with the mean ± sd over seeds (error bars
  only where there are several seeds) on the left axis and the paper's values, on their own scale, on the right;
- Table X: Fig. 6 itself (LFW accuracy / BLUFR VR / BLUFR DIR against num_layers) from the synthetic sweep's
  records beside Table X's printed points, when that sweep has records;
- the ROC curves of the measured records behind the table's cells (one figure per protocol; records with a
  `curves.roc`).

`report_figures` returns [(caption, path)]; a figure with nothing to draw is not written (and not listed).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from arface_repro.eval.plots import plot_roc
from arface_repro.paper.figures import fig6_layers, paper_layer_points, synthetic_layer_series
from arface_repro.paper.report import LITERATURE, Report, SeedRuns
from arface_repro.utils.atomic import atomic_path

_MAX_PANELS_PER_ROW = 3


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path) -> Path:
    plt = _pyplot()
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return out


def _row_name(row) -> str:
    s = row.short_label
    label = "baseline" if s == "—" else s.replace("num_layers = ", "l")
    if row.block:
        label = f"{row.block}: {label}"
    return label if len(label) <= 36 else label[:35] + "…"


def _grid(n: int):
    cols = min(n, _MAX_PANELS_PER_ROW)
    rows = math.ceil(n / cols)
    return rows, cols


def _panels(table, shows) -> list:
    """[(column, rows)] for every column with at least one row for which `shows(row, column)`."""
    panels = []
    for c in table.columns:
        rows = [r for r in table.rows if shows(r, c)]
        if rows:
            panels.append((c, rows))
    return panels


def values_figure(report: Report, out: Path) -> Path | None:
    """Paper vs measured, one panel per column; None when no row has a printed value."""
    t = report.table
    panels = _panels(t, _has_value)
    if not panels:
        return None
    plt = _pyplot()
    nr, nc = _grid(len(panels))
    n_rows_max = max(len(rows) for _, rows in panels)
    fig, axes = plt.subplots(nr, nc, figsize=(4.6 * nc, 0.9 + 0.22 * n_rows_max + 2.4) if nr == 1 else
                             (4.6 * nc, nr * (2.6 + 0.22 * n_rows_max)), dpi=110, squeeze=False)
    for k, (c, rows) in enumerate(panels):
        ax = axes[k // nc, k % nc]
        y = np.arange(len(rows))
        paper = [r.value(c) for r in rows]
        ax.plot(paper, y, "o", color="0.35", ms=5, label="paper")
        meas = [(i, report.cells[r.id, c.id].measured) for i, r in enumerate(rows)
                if report.cells[r.id, c.id].measured is not None]
        if meas:
            ax.plot([v for _, v in meas], [i for i, _ in meas], "D", color="tab:red", ms=5, mfc="none",
                    label="measured")
        ax.set_yticks(y)
        ax.set_yticklabels([_row_name(r) for r in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{c.group}: {c.header}" if c.group else c.header, fontsize=9)
        ax.grid(True, axis="x", ls=":", lw=0.5)
        ax.tick_params(axis="x", labelsize=8)
        ax.legend(fontsize=7, loc="best")
    for k in range(len(panels), nr * nc):
        axes[k // nc, k % nc].axis("off")
    fig.suptitle(f"Table {t.id}: the paper's values and the measured records", fontsize=10)
    fig.tight_layout()
    return _save(fig, out)


def _has_value(row, col) -> bool:
    try:
        return math.isfinite(row.value(col))
    except (ValueError, IndexError):
        return False


def scale_figure(report: Report, scale: str, runs: dict[str, SeedRuns], out: Path) -> Path | None:
    """One panel per column: the scale's mean ± sd per row (left axis) and the paper's values (right axis)."""
    t = report.table
    panels = _panels(t, lambda r, c: r.id in runs and bool(runs[r.id].values(c.metric)))
    if not panels:
        return None
    plt = _pyplot()
    nr, nc = _grid(len(panels))
    n_rows_max = max(len(rows) for _, rows in panels)
    fig, axes = plt.subplots(nr, nc, figsize=(4.8 * nc, nr * (2.4 + 0.22 * n_rows_max)), dpi=110, squeeze=False)
    seeds = sorted({s for sr in runs.values() for s in sr.records})
    for k, (c, rows) in enumerate(panels):
        ax = axes[k // nc, k % nc]
        y = np.arange(len(rows))
        vals = [np.array(list(runs[r.id].values(c.metric).values()), np.float64) for r in rows]
        means = [v.mean() for v in vals]
        sds = [v.std(ddof=1) if v.size > 1 else 0.0 for v in vals]
        ax.errorbar(means, y, xerr=sds if any(sds) else None, fmt="s", color="tab:blue", ms=5, capsize=3,
                    label=f"{scale} ({'mean ± sd, ' if len(seeds) > 1 else ''}{len(seeds)} seed{'s' * (len(seeds) > 1)})")
        ax.set_yticks(y)
        ax.set_yticklabels([_row_name(r) for r in rows], fontsize=7)
        ax.invert_yaxis()
        ax.tick_params(axis="x", labelsize=8, colors="tab:blue")
        paper = [(i, r.value(c)) for i, r in enumerate(rows) if _has_value(r, c)]
        if paper:
            tw = ax.twiny()
            tw.plot([v for _, v in paper], [i for i, _ in paper], "o", color="0.4", ms=4, mfc="none", label="paper")
            tw.tick_params(axis="x", labelsize=7, colors="0.4")
            tw.set_ylim(ax.get_ylim())
        ax.set_title(f"{c.header}  (blue: {scale}, bottom axis; grey: paper, top axis)", fontsize=8)
        ax.grid(True, axis="x", ls=":", lw=0.5)
    for k in range(len(panels), nr * nc):
        axes[k // nc, k % nc].axis("off")
    fig.suptitle(f"Table {t.id}: {scale} reproduction beside the paper (each on its own scale)", fontsize=10)
    fig.tight_layout()
    return _save(fig, out)


def roc_figures(report: Report, out_dir: Path, stem: str) -> list[tuple[str, Path]]:
    """One ROC figure per protocol over the measured records behind the table's cells that carry a curve."""
    seen: set[str] = set()
    by_proto: dict[str, list[tuple[str, dict]]] = {}  # protocol -> (run, record)
    for cell in report.cells.values():
        if cell.status == LITERATURE or cell.record is None or cell.record_path is None:
            continue
        key = str(cell.record_path)
        if key in seen or not ((cell.record.get("curves") or {}).get("roc") or {}).get("fpr"):
            continue
        seen.add(key)
        rec = dict(cell.record, _path=key)
        by_proto.setdefault(str(rec.get("protocol")), []).append((cell.run or "", rec))
    out = []
    for proto, items in sorted(by_proto.items()):
        path = out_dir / f"{stem}_roc_{proto}.png"
        labels = [run or Path(rec["_path"]).stem for run, rec in items]
        plot_roc([rec for _, rec in items], path, labels=labels,
                 title=f"Table {report.table.id}: ROC of the measured {proto} records")
        out.append((f"ROC curves of the measured {proto} records (one per run)", path))
    return out


def fig6_figure(runs_dir: str | os.PathLike, overrides: Sequence[str], out: Path) -> Path | None:
    """Fig. 6 from the synthetic num_layers sweep's records (those trained with `overrides`), or None."""

    series = synthetic_layer_series(runs_dir, overrides)
    if not series:
        return None
    return fig6_layers(series, out, "Fig. 6, synthetic small-scale reproduction (top) and the paper's Table X "
                                    "points (bottom)", paper=paper_layer_points())


def report_figures(report: Report, scales: dict[str, dict[str, SeedRuns]], out_dir: str | os.PathLike, stem: str,
                   runs_dir: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> list[tuple[str, Path]]:
    """Every figure of the report written under `out_dir` as `<stem>_*.png`; [(caption, path)]."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figs: list[tuple[str, Path]] = []
    p = values_figure(report, out_dir / f"{stem}_values.png")
    if p:
        figs.append(("The paper's values (grey) and the measured records (red), per column", p))
    for scale, runs in scales.items():
        p = scale_figure(report, scale, runs, out_dir / f"{stem}_{scale.lower().replace(' ', '_')}.png")
        if p:
            figs.append((f"The {scale} reproduction beside the paper's values (each on its own axis)", p))
    if report.table.id == "X" and "synthetic" in scales and runs_dir is not None:
        p = fig6_figure(runs_dir, overrides, out_dir / f"{stem}_fig6_synthetic.png")
        if p:
            figs.append(("Fig. 6: the effect of num_layers, synthetic sweep beside the paper's points", p))
    figs += roc_figures(report, out_dir, stem)
    return figs
