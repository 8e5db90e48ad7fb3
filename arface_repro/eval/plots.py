"""ROC plots from result records (matplotlib only, Agg backend, written atomically)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

from arface_repro.errors import ConfigError, FormatError
from arface_repro.utils.atomic import atomic_path

# Preferred headline metric per protocol for the legend.
_HEADLINE = ("TAR@FAR=1e-4", "TAR@FAR=1e-3", "VR@FAR=0.1%", "Acc", "Ver@FAR=1e-6", "Ver@FPR=1e-9")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def headline(record: dict) -> str:
    m = record.get("metrics", {})
    if not isinstance(m, dict):
        return ""
    for k in _HEADLINE:
        if _number(m.get(k)):
            return f"{k} {m[k]:.2f}"
    for k, v in m.items():
        if _number(v):
            return f"{k} {v:.2f}"
    return ""


def plain_text(text) -> str:
    """Text shown as typed: '$' would start matplotlib mathtext (`$\\frac{$` fails at drawing time)."""
    return str(text).replace("$", r"\$")


def figure_formats() -> dict[str, str]:
    """{extension: description} of the image formats matplotlib can write here."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return FigureCanvasAgg(Figure()).get_supported_filetypes()


def check_figure_path(out: str | os.PathLike, what: str = "-o") -> str:
    """The format of figure file `out` from its extension; ConfigError for one matplotlib cannot write."""
    ext = Path(out).suffix.lstrip(".").lower()
    formats = figure_formats()
    if ext not in formats:
        raise ConfigError(f"{what} {out}: unknown figure format {('.' + ext) if ext else '(no extension)'}; "
                          f"use one of {', '.join('.' + e for e in sorted(formats))}")
    return ext


def roc_points(rec: dict, where: str) -> tuple[list[float], list[float]]:
    """(fpr, tpr) of a record's `curves.roc` with FAR > 0; FormatError naming the record for anything else."""
    curves = rec.get("curves") or {}
    roc = curves.get("roc") if isinstance(curves, dict) else None
    if not isinstance(roc, dict) or not roc.get("fpr"):
        raise FormatError(f"{where}: the record has no ROC curve (curves.roc)")
    fpr, tpr = roc.get("fpr"), roc.get("tpr")
    if not isinstance(fpr, list) or not isinstance(tpr, list) or len(fpr) != len(tpr):
        raise FormatError(f"{where}: curves.roc needs 'fpr' and 'tpr' lists of one length")
    for key, vals in (("fpr", fpr), ("tpr", tpr)):
        for i, v in enumerate(vals):
            if not (v is None or (_number(v) and 0.0 <= v <= 1.0)):
                raise FormatError(f"{where}: curves.roc.{key}[{i}] = {v!r}; expected a rate in [0, 1]")
    pts = [(f, t) for f, t in zip(fpr, tpr) if f is not None and t is not None and f > 0]
    if not pts:
        raise FormatError(f"{where}: its ROC has no point with FAR > 0")
    return [f for f, _ in pts], [t for _, t in pts]


def plot_roc(records: Sequence[dict], out: str | os.PathLike, labels: Sequence[str] | None = None,
             title: str | None = None, xmin: float | None = None) -> Path:
    """One curve per record (curves.roc fpr/tpr), log-FAR x axis, legend with the headline metric.

    Labels, titles and model names are shown as plain text ('$' is not mathtext)."""
    import matplotlib

    fmt = check_figure_path(out)
    if xmin is not None and not (_number(xmin) and 0 < xmin < 1):
        raise ConfigError(f"--xmin {xmin!r}: the smallest FAR on a log axis must be in (0, 1)")
    curves = []
    for i, rec in enumerate(records):
        where = f"record {rec.get('_path', i + 1)}"
        fpr, tpr = roc_points(rec, where)
        name = labels[i] if labels and i < len(labels) else (rec.get("model") or Path(str(rec.get("_path", f"run {i + 1}"))).stem)
        curves.append((fpr, tpr, plain_text(f"{name} ({rec.get('protocol')}; {headline(rec)})")))
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    try:
        lo = 1.0
        for fpr, tpr, label in curves:
            lo = min(lo, min(fpr))
            ax.plot(fpr, [t * 100 for t in tpr], lw=1.5, label=label)
        ax.set_xscale("log")
        ax.set_xlim(xmin if xmin else max(lo, 1e-7), 1.0)
        ax.set_xlabel("False Accept Rate (log scale)")
        ax.set_ylabel("True Accept Rate (%)")
        ax.grid(True, which="both", ls=":", lw=0.5)
        ax.set_title(plain_text(title) if title else "ROC")
        ax.legend(loc="lower right", fontsize=7)
        fig.tight_layout()
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=fmt)
    finally:
        plt.close(fig)
    return Path(out)
