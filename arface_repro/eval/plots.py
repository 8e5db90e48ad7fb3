"""ROC plots from result records (matplotlib only, Agg backend, written atomically)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

from arface_repro.errors import ConfigError, FormatError
from arface_repro.eval.metric_keys import rate_key
from arface_repro.models.presets import is_preset
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


def record_roc(rec: dict, where: str) -> tuple[list[float], list[float]]:
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


_FAR_KEY = re.compile(r"@(?:FAR|FPR)=([0-9.]+(?:e-?[0-9]+)?)(%?)$", re.IGNORECASE)


def model_label(rec: dict) -> str:
    """A short name for a record's model: the preset name, else the model (or feature) file's name, else the
    record file's stem; never a full path."""

    spec = rec.get("model")
    if isinstance(spec, str) and spec:
        head, sep, rest = spec.partition(":")
        if sep and is_preset(head):
            return head
        name = Path(spec.rsplit(":", 1)[-1]).name
        if name.startswith("checkpoint") and Path(spec.rsplit(":", 1)[-1]).parent.name:
            name = f"{Path(spec.rsplit(':', 1)[-1]).parent.name}/{name}"  # a run folder's checkpoint_last.pt
        return name or spec
    feats = ((rec.get("inputs") or {}).get("features") or {}).get("path") if isinstance(rec.get("inputs"), dict) else None
    if isinstance(feats, str) and feats:
        return Path(feats).name
    return Path(str(rec.get("_path", "record"))).stem


def curve_labels(records: Sequence[dict]) -> list[str]:
    """Legend labels: the model's short name, plus the protocol / rule where the records differ in them, plus the
    record file's stem where two labels would still be equal, then the headline metric."""
    base = [model_label(r) for r in records]
    for key, fmt in (("protocol", "{}"), ("rule", "rule {}")):
        if len({str(r.get(key)) for r in records}) > 1:
            base = [f"{b}, {fmt.format(r.get(key))}" for b, r in zip(base, records)]
    if len(set(base)) < len(base):
        base = [f"{b} [{Path(str(r.get('_path', i + 1))).stem}]" for i, (b, r) in enumerate(zip(base, records))]
    return [f"{b}: {headline(r)}" if headline(r) else b for b, r in zip(base, records)]


def operating_points(records: Sequence[dict]) -> list[float]:
    """The FARs the records' metrics are read at (TAR@FAR=1e-4 -> 1e-4, VR@FAR=0.1% -> 1e-3), sorted."""
    fars = set()
    for r in records:
        for k in (r.get("metrics") or {}):
            m = _FAR_KEY.search(str(k))
            if m:
                v = float(m.group(1)) / (100.0 if m.group(2) else 1.0)
                if 0 < v < 1:
                    fars.add(v)
    return sorted(fars)


def plot_roc(records: Sequence[dict], out: str | os.PathLike, labels: Sequence[str] | None = None,
             title: str | None = None, xmin: float | None = None) -> Path:
    """One curve per record (curves.roc fpr/tpr) on a log-FAR axis, the protocol's operating points (the FARs
    its metrics are read at) marked, the legend inside the axes; PDF / SVG / PNG by the file's extension.

    Default labels: `curve_labels` (preset or file name, never a path). Labels, titles and model names are shown
    as plain text ('$' is not mathtext)."""
    import matplotlib

    fmt = check_figure_path(out)
    if xmin is not None and not (_number(xmin) and 0 < xmin < 1):
        raise ConfigError(f"--xmin {xmin!r}: the smallest FAR on a log axis must be in (0, 1)")
    auto = curve_labels(records)
    curves = []
    for i, rec in enumerate(records):
        where = f"record {rec.get('_path', i + 1)}"
        fpr, tpr = record_roc(rec, where)
        name = labels[i] if labels and i < len(labels) else auto[i]
        curves.append((fpr, tpr, plain_text(name)))
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 3.9), dpi=150)
    try:
        lo = 1.0
        for fpr, tpr, label in curves:
            lo = min(lo, min(fpr))
            ax.plot(fpr, [t * 100 for t in tpr], lw=1.6, label=label)
        ops = operating_points(records)
        left = xmin if xmin else max(min([lo, *ops]) / 2 if ops else lo, 1e-7)   # the operating points in view
        ax.set_xscale("log")
        ax.set_xlim(left, 1.0)
        for far in ops:
            if left <= far < 1.0:
                ax.axvline(far, color="0.45", ls="--", lw=0.8, zorder=0)
                ax.annotate(rate_key("FAR", far), (far, 1.0), xycoords=("data", "axes fraction"),
                            xytext=(2, -2), textcoords="offset points", fontsize=8, color="0.3", va="top",
                            rotation=90)
        ax.set_xlabel("False Accept Rate (log scale)", fontsize=10)
        ax.set_ylabel("True Accept Rate (%)", fontsize=10)
        ax.tick_params(labelsize=9)
        ax.grid(True, which="major", ls=":", lw=0.6)
        protos = list(dict.fromkeys(str(r.get("protocol")) for r in records))
        ax.set_title(plain_text(title) if title else f"ROC, {' / '.join(protos)}", fontsize=11)
        ax.legend(loc="lower right", fontsize=9, framealpha=0.9)
        fig.tight_layout()
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=fmt)
    finally:
        plt.close(fig)
    return Path(out)
