"""Regenerate the paper's Figures 3-6 from what is available: the work behind `arface paper figures` (and its
wrapper `python scripts/make_figures.py`); the drawing itself is `arface_repro.paper.figures`.

- Fig. 3: a real LFW face from the shared folder (else a synthetic face) under the 31 keep/drop modes.
- Fig. 4: the Attention-Net's decisions, from a given checkpoint or one trained through the train API
  (`train.api.train_and_evaluate`, reused when the checkpoint in the training folder matches).
- Fig. 5: the IJB-B / IJB-C records of the runs protocols/paper/manifest.yaml names under `figures.fig5`
  ({protocol: {curve label: run}}: <runs>/paper/<run>/<protocol>.json), one curve per run, labelled as there.
  Records elsewhere under the runs folder are not the paper's rows and are not drawn (`arface plot-roc` draws any
  record); a record made by other code or another model than the run's is drawn and named on stderr, like Fig. 6's.
- Fig. 6: the records of the num_layers sweep (manifest `figures.fig6`, and the synthetic `synthetic.fig6`).

A figure whose inputs are missing is reported on stdout (what is missing and how to make it), not drawn;
`make_figures` returns 1 when any requested figure was not drawn, 0 otherwise.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from arface_repro.data.alignment import ARCFACE_112
from arface_repro.data.occluded_faces import SyntheticFaces
from arface_repro.errors import ArfaceError, ConfigError, FormatError, MissingDataError
from arface_repro.io.records import load_record
from arface_repro.models.training_checkpoint import read_training_checkpoint
from arface_repro.paper import figures as F
from arface_repro.paper.manifest import load_manifest, record_path
from arface_repro.paper.record_check import record_flags
from arface_repro.shared_data import REPO_ROOT, shared_path
from arface_repro.train.config import load_config

LFW_DIR = ("data", "lfw", "aligned-112x96")
PAPER_RADIUS = 30.0  # paper: half-side of the landmark patches at 112x112
DEFAULT_FIG4_CONFIG = REPO_ROOT / "configs" / "syn_arface_l3.yaml"
FIG5_PROTOCOLS = (("ijbb", "IJB-B"), ("ijbc", "IJB-C"))


@dataclass
class FigureOptions:
    """What `arface paper figures` takes (one field per command-line option; see `commands/paper.py`)."""
    fig: list[str] = field(default_factory=lambda: ["3", "4", "5", "6"])
    runs_dir: str = "results/runs"
    out_dir: str = "results/figures"
    checkpoint: str | None = None
    config: str | None = None            # None: DEFAULT_FIG4_CONFIG (with --checkpoint: no check of the method)
    steps: int | None = None

    @classmethod
    def from_namespace(cls, ns) -> FigureOptions:
        return cls(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(cls) if hasattr(ns, f.name)})


class Missing(Exception):
    """A figure's inputs are absent: the message says what and how to make them."""


def make_figures(opts: FigureOptions) -> int:
    out_dir = Path(opts.out_dir)
    status = 0
    for f in opts.fig:
        t0 = time.time()
        try:
            paths = FIGURES[f](opts, out_dir)
        except Missing as exc:
            print(f"fig {f}: NOT DRAWN: {exc}")
            status = 1
            continue
        except (ArfaceError, MissingDataError) as exc:
            print(f"fig {f}: error: {exc}")
            status = 1
            continue
        for p in paths:
            print(f"fig {f}: {p}  ({time.time() - t0:.1f} s)")
    return status


def _note(text: str) -> None:
    print(text, file=sys.stderr)


# ------------------------------------------------------------------------------------------ faces

def lfw_faces(n: int) -> tuple[np.ndarray, list[str]]:
    """n real LFW faces (first image of n identities spread over the sorted list), 112x96 crops padded
    with 8 black columns each side to 112x112 (the ArcFace template frame)."""
    from PIL import Image  # heavy optional dependency, only for the figures that show real faces

    root = shared_path(*LFW_DIR)
    if root is None:
        raise Missing(f"the shared folder has no {'/'.join(LFW_DIR)}")
    names = sorted(d.name for d in root.iterdir() if (d / f"{d.name}_0001.jpg").is_file())
    if not names:
        raise Missing(f"{root}: no Name/Name_0001.jpg images")
    picks = [names[int(i)] for i in np.linspace(0, len(names) - 1, min(n, len(names)))]
    imgs = []
    for name in picks:
        path = root / name / f"{name}_0001.jpg"
        im = np.asarray(Image.open(path).convert("RGB"))
        if im.shape != (112, 96, 3):
            raise ConfigError(f"{path}: expected a 112x96 aligned crop, got {im.shape[1]}x{im.shape[0]}")
        imgs.append(np.pad(im, ((0, 0), (8, 8), (0, 0))))
    return np.stack(imgs), picks


def template_landmarks(n: int) -> np.ndarray:
    return np.repeat(np.asarray(ARCFACE_112, np.float32)[None], n, 0)


# ------------------------------------------------------------------------------------------ Fig. 3

def fig3(opts: FigureOptions, out_dir: Path) -> list[Path]:
    try:
        img, names = lfw_faces(1)
        face, lm, r = img[0], template_landmarks(1)[0], PAPER_RADIUS
        what = f"LFW {names[0]} (112x96 padded to 112x112, template landmarks)"
    except Missing as exc:
        _note(f"fig 3: {exc}; using a synthetic face")
        s = SyntheticFaces(num_identities=1, images_per_identity=1, seed=0)
        face, lm, r = s.images[0], s.landmarks[0], 12.0
        what = "synthetic face"
    out = out_dir / "fig3_mask_modes.png"
    F.fig3_mask_modes(face, lm, r, out, title=f"Fig. 3: the 31 keep/drop modes on {what}, patch radius {r:g} px\n"
                      f"panel title = mode: keep bits {' '.join(F.PATCH_SHORT)} (1 = kept)")
    return [out]


# ------------------------------------------------------------------------------------------ Fig. 4

def fig4_checkpoint(opts: FigureOptions) -> tuple[Path, str]:
    """The Attention-Net's checkpoint: --checkpoint, else --config trained for --steps steps through the train API
    into <runs>/train/figures_<config> (reused when its checkpoint holds the same config at the last step)."""
    if opts.checkpoint:
        return Path(opts.checkpoint), f"checkpoint {opts.checkpoint}"
    # torch (heavy): imported when Fig. 4 trains or reads a checkpoint, not for the other figures
    from arface_repro.train.api import train_and_evaluate

    cfg_path = Path(opts.config or DEFAULT_FIG4_CONFIG)
    ov = [f"train.steps={opts.steps}"] if opts.steps else []
    out = Path(opts.runs_dir) / "train" / f"figures_{cfg_path.stem}"
    ov.append(f"out_dir={out}")
    cfg = load_config(cfg_path, ov)
    ck = out / "checkpoint_last.pt"
    if ck.is_file():
        old = read_training_checkpoint(ck)
        if old.get("config") == cfg and int(old.get("step", -1)) == int(cfg["train"]["steps"]):
            return ck, f"reused {ck}"
    t0 = time.time()
    _note(f"fig 4: training {cfg_path.name} for {cfg['train']['steps']} steps into {out} ...")
    m = train_and_evaluate(cfg_path, ov)
    _note(f"fig 4: trained in {time.time() - t0:.0f} s (held-out synthetic Acc {m.get('val_accuracy', float('nan')):.2f}%)")
    return Path(m["checkpoint"]), f"trained {time.time() - t0:.0f} s"


def describe_training(cfg: dict) -> str:
    d = cfg["data"]
    if d["kind"] == "synthetic":
        s = d["synthetic"]
        occ = f"occluded {s['occluded_patch']}" if s.get("occluded") else "no occlusion"
        return f"synthetic faces ({s['num_identities']} ids, {occ})"
    return f"{d['kind']} data {d.get('path')}"


def held_out_faces(cfg: dict) -> SyntheticFaces:
    """Held-out synthetic identities, like the trainer's validation set (identity_offset 100000), all occluded
    the way the training data is."""
    syn = dict(cfg["data"]["synthetic"]) if cfg["data"]["kind"] == "synthetic" else {"occluded": True}
    syn.pop("num_identities", None)
    syn.pop("images_per_identity", None)
    syn["occluded"] = True
    vcfg = cfg["data"]["val"]
    return SyntheticFaces(num_identities=int(vcfg["num_identities"]), images_per_identity=int(vcfg["images_per_identity"]),
                          seed=int(cfg["seed"]), identity_offset=100000, **syn)


def fig4(opts: FigureOptions, out_dir: Path) -> list[Path]:
    import torch  # heavy: only Fig. 4 runs a network

    torch.set_num_threads(1)  # tiny models on a shared CPU: one thread is the fastest
    ck, how = fig4_checkpoint(opts)
    net, cfg = F.load_attention_net(ck)
    if opts.checkpoint and opts.config is not None:
        given = load_config(opts.config)
        if given["method"] != cfg["method"]:
            raise ConfigError(f"--config {opts.config}: its method section differs from the one stored in {ck}")
    r = float(cfg["method"]["patch_radius"])
    trained_on = (f"Attention-Net of {cfg['name']} trained on {describe_training(cfg)}, "
                  f"{int(cfg['train']['steps'])} steps")
    outs = [_fig4_synthetic(net, cfg, r, trained_on, how, out_dir)]
    try:
        imgs, names = lfw_faces(16)
    except Missing as exc:
        _note(f"fig 4 (LFW): not drawn: {exc}")
        return outs
    lms = template_landmarks(len(imgs))
    modes = F.attention_modes(net, imgs, lms, r)
    out = out_dir / "fig4_attention_lfw.png"
    F.fig4_attention_decisions(imgs, lms, modes, r, out, titles=[n.replace("_", " ")[:16] for n in names],
                               title=f"Fig. 4 (real LFW faces): {trained_on}\napplied to LFW 112x96 crops padded to "
                                     f"112x112, template landmarks, config's patch radius {r:g} px (paper: 30); "
                                     "red dashed = dropped")
    outs.append(out)
    return outs


def _fig4_synthetic(net, cfg: dict, r: float, trained_on: str, how: str, out_dir: Path) -> Path:
    val = held_out_faces(cfg)
    all_modes = F.attention_modes(net, val.images, val.landmarks, r)
    dropped = ~F.mode_keep_table()[all_modes][:, val.occluded_patch]
    occ_name = F.PATCH_SHORT[val.occluded_patch]
    rate = (f"{occ_name} dropped on {dropped[val.occluded].mean():.0%} of {val.occluded.sum()} occluded and "
            f"{dropped[~val.occluded].mean():.0%} of {(~val.occluded).sum()} clean held-out faces")
    _note(f"fig 4 synthetic: {rate} ({how})")
    idx = np.r_[np.flatnonzero(val.occluded)[:8], np.flatnonzero(~val.occluded)[:8]]
    titles = [f"occluded {occ_name}" if val.occluded[i] else "clean" for i in idx]
    out = out_dir / "fig4_attention_synthetic.png"
    F.fig4_attention_decisions(val.images[idx], val.landmarks[idx], all_modes[idx], r, out, titles=titles,
                               title=f"Fig. 4 (synthetic): {trained_on}\napplied to held-out synthetic faces "
                                     f"(red dashed = dropped, radius {r:g} px); {rate}")
    return out


# ------------------------------------------------------------------------------------------ Fig. 5

@dataclass
class RocCurves:
    """One protocol's curves for Fig. 5: the records (with curves.roc) and their labels, in the manifest's order;
    `absent`: what the manifest names that has no usable record (path and why)."""
    records: list[dict] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)


def fig5_curves(runs_dir: str | Path) -> dict[str, RocCurves]:
    """{protocol: RocCurves} from the records of manifest.yaml `figures.fig5` ({protocol: {label: run}})."""
    m = load_manifest()
    out: dict[str, RocCurves] = {}
    for proto, named in (m.figures.get("fig5") or {}).items():
        curves = out.setdefault(proto, RocCurves())
        for label, run_id in named.items():
            path = record_path(runs_dir, run_id, proto)
            if not path.is_file():
                curves.absent.append(f"{path} (no record)")
                continue
            rec = load_record(path)
            if rec.get("protocol") != proto:
                raise FormatError(f"{path}: a record of protocol {rec.get('protocol')!r} where {proto!r} is expected")
            if not ((rec.get("curves") or {}).get("roc") or {}).get("fpr"):
                curves.absent.append(f"{path} (no curves.roc)")
                continue
            for flag in record_flags(rec, m.runs[run_id].config):
                _note(f"fig 5: the record of run {run_id} may not be current: {flag}")
            curves.records.append(rec)
            curves.labels.append(str(label))
    return out


def fig5(opts: FigureOptions, out_dir: Path) -> list[Path]:
    curves = fig5_curves(opts.runs_dir)
    outs = []
    for proto, name in FIG5_PROTOCOLS:
        c = curves.get(proto)
        if c and c.records:
            out = out_dir / f"fig5_roc_{proto}.png"
            F.fig5_roc(c.records, out, labels=c.labels, title=f"Fig. 5: ROC on {name} 1:1 verification")
            outs.append(out)
    if not outs:
        absent = [a for c in curves.values() for a in c.absent]
        raise Missing(f"no IJB-B/C 1:1 record with a ROC curve for the runs of manifest.yaml figures.fig5 under "
                      f"{opts.runs_dir} ({'; '.join(absent) or 'the manifest names none'}); make one with "
                      "`arface evaluate --protocol ijbb|ijbc --data-root IJB_release/IJBC --model SPEC --out "
                      "<runs>/paper/<run>/ijbc.json` (or --features STORE.npz; needs the IJB-B/C images or features "
                      "and meta files), or `arface paper table VI --run --data DATA.yaml`")
    return outs


# ------------------------------------------------------------------------------------------ Fig. 6

def fig6(opts: FigureOptions, out_dir: Path) -> list[Path]:
    runs = Path(opts.runs_dir)
    paper = F.paper_layer_points()
    outs = []
    measured = F.measured_layer_series(runs)
    if measured:
        out = out_dir / "fig6_num_layers.png"
        flagged = [(p.source, f) for series in measured.values() for pts in series.values() for p in pts for f in p.flags]
        for source, flag in dict.fromkeys(flagged):
            _note(f"fig 6: the record of run {source} may not be current: {flag}")
        F.fig6_layers(measured, out, "Fig. 6: the effect of num_layers (VGGFace2 subset; measured records"
                                     + ("; SOME STALE OR FROM ANOTHER MODEL, see the log" if flagged else "")
                                     + "); bottom: the paper's Table X points", paper)
        outs.append(out)
    synthetic = F.synthetic_layer_series(runs)
    if synthetic:
        out = out_dir / "fig6_num_layers_synthetic.png"
        F.fig6_layers(synthetic, out, "Fig. 6, synthetic small-scale reproduction (held-out synthetic identities; "
                                      "mean ± sd over seeds; tiny backbone: 4 maskable blocks); bottom: the paper's Table X points", paper)
        outs.append(out)
        for metric, series in synthetic.items():
            for arch, pts in series.items():
                _note(f"fig 6 [{arch}] {metric}: " + ", ".join(f"L={p.num_layers}: {p.mean:.2f}" for p in pts))
    if not outs:
        raise Missing(f"no record of the num_layers sweep under {runs} (real: <runs>/paper/<run>/lfw.json and blufr.json "
                      "of the runs in manifest.yaml figures.fig6; synthetic: run `arface paper table X` "
                      "(or `python scripts/reproduce_table.py X`) first)")
    return outs


FIGURES = {"3": fig3, "4": fig4, "5": fig5, "6": fig6}
