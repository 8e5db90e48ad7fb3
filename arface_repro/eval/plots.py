"""ROC plots from result records (matplotlib only, Agg backend, written atomically)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from arface_repro.errors import FormatError
from arface_repro.utils.atomic import atomic_path

# Preferred headline metric per protocol for the legend.
_HEADLINE = ("TAR@FAR=1e-4", "TAR@FAR=1e-3", "VR@FAR=0.1%", "Acc", "Ver@FAR=1e-6", "Ver@FPR=1e-9")


def headline(record: dict) -> str:
    m = record.get("metrics", {})
    for k in _HEADLINE:
        if k in m and m[k] is not None:
            return f"{k} {m[k]:.2f}"
    k, v = next(iter(m.items()), ("", None))
    return f"{k} {v:.2f}" if v is not None else ""


def plot_roc(records: Sequence[dict], out: str | os.PathLike, labels: Sequence[str] | None = None,
             title: str | None = None, xmin: float | None = None) -> Path:
    """One curve per record (curves.roc fpr/tpr), log-FAR x axis, legend with the headline metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    lo = 1.0
    for i, rec in enumerate(records):
        roc = (rec.get("curves") or {}).get("roc")
        if not roc or not roc.get("fpr"):
            raise FormatError(f"record {rec.get('_path', i)} has no ROC curve (curves.roc)")
        pts = [(f, t) for f, t in zip(roc["fpr"], roc["tpr"]) if f and f > 0]
        if not pts:
            raise FormatError(f"record {rec.get('_path', i)}: its ROC has no point with FAR > 0")
        fpr, tpr = zip(*pts)
        lo = min(lo, min(fpr))
        name = labels[i] if labels and i < len(labels) else (rec.get("model") or Path(str(rec.get("_path", f"run {i + 1}"))).stem)
        ax.plot(fpr, [t * 100 for t in tpr], lw=1.5, label=f"{name} ({rec['protocol']}; {headline(rec)})")
    ax.set_xscale("log")
    ax.set_xlim(xmin if xmin else max(lo, 1e-7), 1.0)
    ax.set_xlabel("False Accept Rate (log scale)")
    ax.set_ylabel("True Accept Rate (%)")
    ax.grid(True, which="both", ls=":", lw=0.5)
    ax.set_title(title or "ROC")
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=Path(out).suffix.lstrip(".") or "png")
    plt.close(fig)
    return Path(out)
