"""The paper's figures, drawn from images, Attention-Net decisions and result records (matplotlib, Agg).

- Fig. 3: the 5 landmark patches of a face and the 31 keep/drop modes applied to it (mask M).
- Fig. 4: the Attention-Net's inference decisions: the DROPPED patches drawn as red dashed boxes.
- Fig. 5: ROC curves of IJB-B/C records (delegates to `plots.plot_roc`).
- Fig. 6: a verification metric against `num_layers` (feature-map masking depth) from the
  synthetic-verification records of the Table XI rows.

Functions here take numpy arrays and records; they never train or evaluate. Loading an Attention-Net
from a training checkpoint (torch) lives in `load_attention_net` / `attention_modes`, imported lazily.
Every figure is written atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from arface_repro.errors import ConfigError, FormatError
from arface_repro.method.patches import NUM_MODES, NUM_PATCHES, drop_mask_numpy, mode_keep_table, patch_boxes
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
        mine = []
        for p in np.flatnonzero(~keep[modes[i]]):
            box = tuple(int(v) for v in boxes[i, p])
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
    from arface_repro.eval.plots import plot_roc

    return plot_roc(records, out, labels=labels, title=title)


# ------------------------------------------------------------------------------------------ Fig. 6


class StaleRecordError(FormatError):
    """A record whose config file changed after it was written."""


@dataclass(frozen=True)
class LayerPoint:
    num_layers: int
    value: float
    record: str  # record path (or index) it came from


def record_num_layers(record: dict, where: str = "record") -> tuple[int, str] | None:
    """(num_layers, config file name) of a synthetic-verification record of a Table XI row, else None.

    num_layers is read from the row's config under configs/ with the record's overrides applied. A record
    whose stored config sha256 differs from today's file raises (its num_layers may have changed)."""
    from arface_repro.tables.synthetic_ablation import CONFIG_DIR, PROTOCOL, TABLES
    from arface_repro.train.config import load_config
    from arface_repro.utils.hashing import sha256_file

    if record.get("protocol") != PROTOCOL:
        return None
    model = str(record.get("model") or "")
    if not model.startswith("config:"):
        return None
    name = model[len("config:"):]
    if name not in {r.config for r in TABLES["XI"]}:
        return None
    path = CONFIG_DIR / name
    stored = ((record.get("inputs") or {}).get("config") or {}).get("sha256")
    if stored and path.is_file() and sha256_file(path) != stored:
        raise StaleRecordError(f"{where}: config {name} changed since the record was written (sha256 differs); "
                          "rerun `python scripts/reproduce_table.py XI --rerun` or remove the stale record")
    cfg = load_config(path, list(record.get("overrides") or []))
    return int(cfg["method"]["num_layers"]), name


def layer_series(records: Sequence[dict], metric: str = "Acc",
                 stale: list[str] | None = None) -> dict[str, list[LayerPoint]]:
    """Points (num_layers, metric) of the Table XI records, one series per distinct override list, sorted
    by num_layers. Several records of one (series, num_layers): the newest (created_utc) is used.
    Records whose config changed since they were written raise, unless a `stale` list is given: then
    their paths are appended to it (for the caller to report) and they are left out."""
    best: dict[tuple[str, int], tuple[str, dict, str]] = {}
    for i, rec in enumerate(records):
        where = str(rec.get("_path", f"record {i}"))
        try:
            got = record_num_layers(rec, where)
        except StaleRecordError:
            if stale is None:
                raise
            stale.append(where)
            continue
        if got is None:
            continue
        nl, _ = got
        ov = list(rec.get("overrides") or [])
        series = "default config" if not ov else " ".join(ov)
        value = (rec.get("metrics") or {}).get(metric)
        if value is None:
            raise FormatError(f"{where}: metric {metric!r} missing or null (has {sorted((rec.get('metrics') or {}))})")
        key = (series, nl)
        stamp = str(rec.get("created_utc", ""))
        if key not in best or stamp > best[key][0]:
            best[key] = (stamp, rec, where)
    out: dict[str, list[LayerPoint]] = {}
    for (series, nl), (_, rec, where) in sorted(best.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        out.setdefault(series, []).append(LayerPoint(nl, float(rec["metrics"][metric]), where))
    return out


def fig6_metric_vs_layers(records: Sequence[dict], out: str | os.PathLike, metric: str = "Acc",
                          title: str | None = None, stale: list[str] | None = None) -> dict[str, list[LayerPoint]]:
    """Fig. 6: `metric` against num_layers (0 = input masking only) from the synthetic-verification
    records of Table XI's rows; one line per override list. Returns the plotted series (`stale`: see
    `layer_series`)."""
    series = layer_series(records, metric, stale)
    if not series:
        raise FormatError("fig6: no synthetic-verification record of a Table XI row (num_layers configs) among "
                          f"{len(records)} records; run `python scripts/reproduce_table.py XI` first")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.8), dpi=120)
    for name, pts in series.items():
        xs, ys = [p.num_layers for p in pts], [p.value for p in pts]
        ax.plot(xs, ys, "o-", lw=1.5, label=name)
        for x, y in zip(xs, ys):
            ax.annotate(f"{y:.2f}", (x, y), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=7)
    allx = sorted({p.num_layers for pts in series.values() for p in pts})
    ax.set_xticks(allx)
    ax.margins(x=0.08, y=0.15)  # room for the value labels
    ax.set_xlabel("num_layers (masked feature-map layers; 0 = input mask only)")
    ax.set_ylabel(f"{metric} (%)")
    ax.grid(True, ls=":", lw=0.5)
    ax.set_title(title or f"{metric} vs. number of masked layers (synthetic small-scale)", fontsize=9)
    if len(series) > 1 or next(iter(series)) != "default config":
        ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, out)
    return series


# ------------------------------------------------------------------------------------------ torch part


def load_attention_net(checkpoint: str | os.PathLike):
    """(AttentionNet in eval mode, training config) from an `arface train` checkpoint of an ARFace run."""
    from arface_repro.method.attention_net import AttentionNet
    from arface_repro.models.training_checkpoint import read_training_checkpoint

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

    from arface_repro.method.attention_net import greedy_modes
    from arface_repro.train.loop import normalise

    imgs = np.ascontiguousarray(images)
    out = []
    with torch.no_grad():
        for s in range(0, len(imgs), batch):
            x = normalise(torch.from_numpy(imgs[s : s + batch]))
            boxes = torch.from_numpy(patch_boxes(np.asarray(landmarks)[s : s + batch], patch_radius, *x.shape[-2:]))
            out.append(greedy_modes(net(x, boxes)).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)
