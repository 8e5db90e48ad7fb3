"""The paper's figures, drawn from images, Attention-Net decisions and result records (matplotlib, Agg).

- Fig. 3: the 5 landmark patches of a face and the 31 keep/drop modes applied to it (mask M).
- Fig. 4: the Attention-Net's inference decisions: the DROPPED patches drawn as red dashed boxes.
- Fig. 5: ROC curves of IJB-B/C records (delegates to `plots.plot_roc`).
- Fig. 6: LFW accuracy, BLUFR VR and BLUFR DIR against `num_layers`, one line per architecture, from the
  records of the num_layers sweep named in protocols/paper/manifest.yaml (real-scale runs, or the
  synthetic small-scale runs), beside Table X's printed points.

Functions here take numpy arrays and records; they never train or evaluate. Loading an Attention-Net
from a training checkpoint (torch, through `arface_repro.models.training_checkpoint`) lives in
`load_attention_net` / `attention_modes`, imported lazily.
Every figure is written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from arface_repro.errors import ConfigError, FormatError
from arface_repro.eval.plots import plot_roc
from arface_repro.io.records import load_record, load_records
from arface_repro.method.patches import NUM_MODES, NUM_PATCHES, drop_mask_numpy, mode_keep_table, patch_boxes
from arface_repro.models.training_checkpoint import read_training_checkpoint
from arface_repro.paper.manifest import load_manifest, record_path
from arface_repro.paper.record_check import record_flags
from arface_repro.paper.synthetic_runs import RECORD_SUBDIR, Job, run_key
from arface_repro.paper.targets import get_table
from arface_repro.utils.atomic import atomic_path

PATCH_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:cyan")
PATCH_SHORT = ("LE", "RE", "N", "LM", "RM")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: str | os.PathLike) -> Path:
    plt = _pyplot()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lstrip(".") or "png")
    plt.close(fig)
    return out


def _check_image(image, where: str) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise FormatError(f"{where}: expected an H x W x 3 uint8 RGB image, got shape {img.shape} dtype {img.dtype}")
    return img


def _rect(ax, box, **kw):
    """Outline of the pixel box [x0, x1) x [y0, y1): pixel centres are integers in imshow, so edges at -0.5."""
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = (int(v) for v in box)
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, **kw))


def mode_bits(mode: int) -> str:
    """Keep flags of a mode as a string in patch order (LE RE N LM RM), '1' = kept; e.g. mode 30 -> '11111'."""
    return "".join("1" if k else "0" for k in mode_keep_table()[int(mode)])


def fig3_mask_modes(image_rgb, landmarks, patch_radius: float, out: str | os.PathLike,
                    modes: Sequence[int] | None = None, title: str | None = None, ncols: int = 8) -> Path:
    """Fig. 3: the face with its 5 patch boxes, then one small panel per mode (default all 31) showing
    the image multiplied by that mode's mask M; panel title = mode index and keep bits (LE RE N LM RM)."""
    plt = _pyplot()
    img = _check_image(image_rgb, "fig3 image")
    H, W = img.shape[:2]
    boxes = patch_boxes(landmarks, patch_radius, H, W)
    modes = list(range(NUM_MODES)) if modes is None else [int(m) for m in modes]
    for m in modes:
        if not 0 <= m < NUM_MODES:
            raise ConfigError(f"fig3: mode {m} is not in 0..{NUM_MODES - 1}")
    keep = mode_keep_table()
    n = len(modes) + 1
    rows = -(-n // ncols)
    fig, axes = plt.subplots(rows, ncols, figsize=(1.35 * ncols, 1.55 * rows + 0.6), dpi=120, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    ax = axes.flat[0]
    ax.imshow(img)
    for p in range(NUM_PATCHES):
        _rect(ax, boxes[p], edgecolor=PATCH_COLOURS[p], lw=1.2)
        x, y = np.asarray(landmarks, dtype=np.float64)[p]
        ax.plot([x], [y], "o", ms=2, color=PATCH_COLOURS[p])
        ax.text(x, y + 2, PATCH_SHORT[p], color="white", fontsize=5, ha="center", va="top",
                bbox=dict(boxstyle="round,pad=0.1", fc=PATCH_COLOURS[p], ec="none", alpha=0.8))
    ax.set_title("patches", fontsize=7)
    for i, m in enumerate(modes, start=1):
        mask = drop_mask_numpy(boxes[None], keep[m][None], H, W)[0]
        ax = axes.flat[i]
        ax.imshow((img * mask[..., None]).astype(np.uint8))
        ax.set_title(f"{m}: {mode_bits(m)}", fontsize=7, family="monospace")
    fig.suptitle(title or f"Keep/drop modes (patch radius {patch_radius:g} px); title = mode: keep bits "
                 f"{' '.join(PATCH_SHORT)} (1 = kept)", fontsize=8)
    fig.tight_layout()
    return _save(fig, out)


def fig4_attention_decisions(images, landmarks, modes, patch_radius: float, out: str | os.PathLike,
                             titles: Sequence[str] | None = None, title: str | None = None,
                             ncols: int = 8) -> list[list[tuple[int, tuple[int, int, int, int]]]]:
    """Fig. 4: each face with the patches its mode DROPS drawn as red dashed boxes (kept patches are not
    drawn). Returns, per image, the drawn boxes as (patch index, (x0, y0, x1, y1)) with x1/y1 exclusive."""
    plt = _pyplot()
    imgs = np.asarray(images)
    lms = np.asarray(landmarks, dtype=np.float64)
    modes = np.asarray(modes).astype(np.int64).reshape(-1)
    if imgs.ndim != 4 or imgs.shape[-1] != 3 or imgs.dtype != np.uint8:
        raise FormatError(f"fig4: expected N x H x W x 3 uint8 images, got shape {imgs.shape} dtype {imgs.dtype}")
    n = len(imgs)
    if lms.shape != (n, NUM_PATCHES, 2) or modes.shape != (n,):
        raise FormatError(f"fig4: {n} images need landmarks ({n}, 5, 2) and modes ({n},); got {lms.shape} and {modes.shape}")
    if n and (modes.min() < 0 or modes.max() >= NUM_MODES):
        raise ConfigError(f"fig4: modes must be in 0..{NUM_MODES - 1}, got {modes.min()}..{modes.max()}")
    if titles is not None and len(titles) != n:
        raise ConfigError(f"fig4: {len(titles)} titles for {n} images")
    H, W = imgs.shape[1:3]
    boxes = patch_boxes(lms, patch_radius, H, W)
    keep = mode_keep_table()
    ncols = max(1, min(ncols, n))
    rows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(rows, ncols, figsize=(1.6 * ncols, 1.85 * rows + 0.7), dpi=120, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    drawn = []
    for i in range(n):
        ax = axes.flat[i]
        ax.imshow(imgs[i])
        mine: list[tuple[int, tuple[int, int, int, int]]] = []
        for p in np.flatnonzero(~keep[modes[i]]):
            x0, y0, x1, y1 = (int(v) for v in boxes[i, p])
            box = (x0, y0, x1, y1)
            _rect(ax, box, edgecolor="red", lw=1.3, ls="--")
            mine.append((int(p), box))
        drawn.append(mine)
        dropped = ",".join(PATCH_SHORT[p] for p, _ in mine) or "none"
        head = f"{titles[i]}\n" if titles is not None else ""
        ax.set_title(f"{head}drop: {dropped}", fontsize=6)
    fig.suptitle(title or f"Attention-Net decisions (red dashed = dropped patch, radius {patch_radius:g} px)", fontsize=8)
    fig.tight_layout()
    _save(fig, out)
    return drawn


def fig5_roc(records: Sequence[dict], out: str | os.PathLike, labels: Sequence[str] | None = None,
             title: str | None = None) -> Path:
    """Fig. 5: ROC curves (log FAR) of IJB-B/C records; `plots.plot_roc` draws them."""

    return plot_roc(records, out, labels=labels, title=title)


# ------------------------------------------------------------------------------------------ Fig. 6

FIG6_PANELS = (("Acc", "(a) LFW 10-fold accuracy (%)"), ("VR@FAR=0.1%", "(b) BLUFR VR@FAR=0.1% (%)"),
               ("DIR@FAR=1%", "(c) BLUFR DIR@FAR=1% (%)"))


@dataclass(frozen=True)
class LayerPoint:
    num_layers: int
    mean: float
    sd: float          # over seeds (0 for one record)
    n: int             # records behind the point
    source: str        # record path(s) or run id
    flags: tuple = ()  # why a measured record may not be current (paper.record_check): stale, other model


def _point(nl: int, values: list[float], source: str) -> LayerPoint:
    v = np.asarray(values, dtype=np.float64)
    return LayerPoint(int(nl), float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size), source)


def measured_layer_series(runs_dir: str | os.PathLike) -> dict[str, dict[str, list[LayerPoint]]]:
    """{metric: {architecture: points}} from the records of manifest.yaml `figures.fig6` (real-scale runs:
    <runs>/paper/<run>/lfw.json for Acc, blufr.json for VR and DIR); rows without a record are left out; a
    point from a record made by other code or another model carries its flags."""

    m = load_manifest()
    out: dict[str, dict[str, list[LayerPoint]]] = {k: {} for k, _ in FIG6_PANELS}
    for arch, sweep in (m.figures.get("fig6") or {}).items():
        for nl, run_id in sorted(sweep.items(), key=lambda kv: int(kv[0])):
            for metric, _ in FIG6_PANELS:
                path = record_path(runs_dir, run_id, "lfw" if metric == "Acc" else "blufr")
                if not path.is_file():
                    continue
                rec = load_record(path)
                v = (rec.get("metrics") or {}).get(metric)
                if not isinstance(v, (int, float)):
                    raise FormatError(f"{path}: metric {metric!r} missing")
                point = replace(_point(int(nl), [float(v)], run_id), flags=tuple(record_flags(rec, m.runs[run_id].config)))
                out[metric].setdefault(arch, []).append(point)
    return {k: v for k, v in out.items() if v}


def synthetic_layer_series(runs_dir: str | os.PathLike, overrides: Sequence[str] = ()) -> dict[str, dict[str, list[LayerPoint]]]:
    """{metric: {architecture role: points}} from the synthetic records of manifest.yaml `synthetic.fig6`
    (mean ± sd over the seeds present; records of other overrides are ignored)."""

    m = load_manifest()
    folder = Path(runs_dir) / RECORD_SUBDIR
    recs = load_records(folder) if folder.is_dir() else []
    out: dict[str, dict[str, list[LayerPoint]]] = {k: {} for k, _ in FIG6_PANELS}
    for arch, sweep in (m.synthetic.get("fig6") or {}).items():
        for nl, cfg in sorted(sweep.items(), key=lambda kv: int(kv[0])):
            mine = [r for r in recs if r.get("model") == f"config:{cfg}" and list(r.get("overrides") or []) == list(overrides)
                    and r.get("run_key") == run_key(Job(cfg, int(r.get("seed", -1)), tuple(overrides)))]
            if not mine:
                continue
            for metric, _ in FIG6_PANELS:
                vals = [float(r["metrics"][metric]) for r in mine if isinstance(r["metrics"].get(metric), (int, float))]
                if vals:
                    out[metric].setdefault(arch, []).append(_point(int(nl), vals, f"{cfg} x {len(vals)} seeds"))
    return {k: v for k, v in out.items() if v}


def paper_layer_points() -> dict[str, dict[str, list[LayerPoint]]]:
    """Table X's printed values of the two VGGFace2-subset blocks at their num_layers (Fig. 6's data points
    that the paper prints)."""

    t = get_table("X")
    out: dict[str, dict[str, list[LayerPoint]]] = {k: {} for k, _ in FIG6_PANELS}
    for block, arch in (("mfn_subset", "MobileFaceNet"), ("r50_subset", "ResNet50")):
        for row in t.rows:
            if row.block != block or row.meta.get("schema") != "Attention-net":
                continue
            for c in t.columns:
                out[c.metric].setdefault(arch, []).append(LayerPoint(int(row.meta["num_layers"]), row.value(c), 0.0, 1,
                                                                      f"Table X {row.id}"))
    return out


def fig6_layers(series: dict[str, dict[str, list[LayerPoint]]], out: str | os.PathLike, title: str | None = None,
                paper: dict[str, dict[str, list[LayerPoint]]] | None = None) -> Path:
    """Fig. 6 as the paper draws it: three panels (LFW accuracy, BLUFR VR, BLUFR DIR) against num_layers,
    one line per architecture (error bars: sd over seeds). `paper`: Table X's printed points, drawn in a
    second row of panels (their num_layers and scale are the paper's)."""
    if not any(series.get(k) for k, _ in FIG6_PANELS):
        raise FormatError("fig6: no point to draw (no record of the num_layers sweep)")
    plt = _pyplot()
    rows = 2 if paper else 1
    fig, axes = plt.subplots(rows, 3, figsize=(13.5, 3.6 * rows + 0.3), dpi=120, squeeze=False)

    def draw(ax, data: dict[str, list[LayerPoint]], label: str) -> None:
        for i, (arch, pts) in enumerate(sorted(data.items())):
            c = f"C{i}"
            xs, ys, es = [p.num_layers for p in pts], [p.mean for p in pts], [p.sd for p in pts]
            ax.errorbar(xs, ys, yerr=es if any(es) else None, fmt="o-", color=c, lw=1.5, ms=4, capsize=3, label=arch)
            for x, y in zip(xs, ys):
                ax.annotate(f"{y:.2f}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=6, color=c)
        ax.set_xticks(sorted({p.num_layers for pts in data.values() for p in pts}))
        ax.set_xlabel("num_layers (0 = input mask only)", fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.grid(True, ls=":", lw=0.5)
        ax.margins(x=0.08, y=0.2)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="best")

    for j, (metric, label) in enumerate(FIG6_PANELS):
        draw(axes[0, j], series.get(metric) or {}, label)
        if paper:
            draw(axes[1, j], paper.get(metric) or {}, f"the paper's Table X: {label}")
    fig.suptitle(title or "Fig. 6: the effect of num_layers", fontsize=9)
    fig.tight_layout()
    return _save(fig, out)


# ------------------------------------------------------------------------------------------ torch part


def load_attention_net(checkpoint: str | os.PathLike):
    """(AttentionNet in eval mode, training config) from an `arface train` checkpoint of an ARFace run."""
    from arface_repro.method.attention_net import AttentionNet  # imports torch: only Fig. 4 needs it

    ck = read_training_checkpoint(checkpoint)
    cfg = ck.get("config") or {}
    if "attn" not in ck:
        kind = (cfg.get("method") or {}).get("kind")
        raise ConfigError(f"{checkpoint}: checkpoint of a method.kind={kind!r} run has no Attention-Net (need 'arface')")
    a = cfg["method"]["attention"]
    net = AttentionNet(int(a["patch_size"]), tuple(a["channels"]))
    net.load_state_dict(ck["attn"])
    net.eval()
    return net, cfg


def attention_modes(net, images, landmarks, patch_radius: float, batch: int = 64) -> np.ndarray:
    """The Attention-Net's inference modes (argmax), computed as `Trainer.embed` does (same normalisation,
    boxes and greedy rule) for N x H x W x 3 uint8 RGB images with (N, 5, 2) landmarks."""
    import torch

    # torch modules: imported for Fig. 4 only (the other figures and the reports run without torch)
    from arface_repro.method.attention_net import greedy_modes
    from arface_repro.train.loop import normalise  # torch, as the line above

    imgs = np.ascontiguousarray(images)
    out = []
    with torch.no_grad():
        for s in range(0, len(imgs), batch):
            x = normalise(torch.from_numpy(imgs[s : s + batch]))
            boxes = torch.from_numpy(patch_boxes(np.asarray(landmarks)[s : s + batch], patch_radius, *x.shape[-2:]))
            out.append(greedy_modes(net(x, boxes)).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)
