#!/usr/bin/env python
"""Regenerate the ARFace paper's figures under results/figures/ (what the available data allows).

    python scripts/make_figures.py                       # all of 3 4 5 6
    python scripts/make_figures.py --fig 3 4 --steps 60   # a quicker Attention-Net for Fig. 4
    python scripts/make_figures.py --fig 4 --checkpoint runs/x/checkpoint_last.pt

- Fig. 3 (keep/drop modes): a real LFW face (../shared, 112x96 crop padded to 112x112, template
  landmarks, the paper's patch radius 30 px) when the shared folder is present, else a synthetic face
  (patch radius 12 px). -> fig3_mask_modes.png
- Fig. 4 (Attention-Net decisions): from --checkpoint, else `--config` (default
  configs/syn_arface_l3.yaml: synthetic occluded faces, patch radius 12) trained for `--steps` steps
  (default: the config's own) into results/runs/train/figures_<config> (reused when that checkpoint
  matches). Decisions are shown on held-out synthetic faces and on real LFW faces, both with the
  config's patch radius. -> fig4_attention_synthetic.png, fig4_attention_lfw.png
- Fig. 5 (ROC): IJB-B / IJB-C records (protocol ijbb / ijbc with curves.roc) under --runs-dir.
  -> fig5_roc_ijbb.png, fig5_roc_ijbc.png
- Fig. 6 (LFW accuracy, BLUFR VR, BLUFR DIR vs num_layers, one line per architecture): the records of
  the num_layers sweep named in protocols/paper/manifest.yaml under --runs-dir: real-scale runs
  (<runs>/paper/<run>/{lfw,blufr}.json) -> fig6_num_layers.png, and the synthetic small-scale runs
  (`python scripts/reproduce_table.py X` writes them) -> fig6_num_layers_synthetic.png; Table X's printed
  points are drawn beside them.

A figure whose inputs are missing is reported (what is missing and how to make it), not drawn; the exit
status is 1 when any requested figure was not drawn, 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from arface_repro.errors import ArfaceError, ConfigError, MissingDataError  # noqa: E402
from arface_repro.paper import figures as F  # noqa: E402
from arface_repro.io.records import load_records  # noqa: E402

LFW_DIR = ("data", "lfw", "aligned-112x96")
PAPER_RADIUS = 30.0  # paper: half-side of the landmark patches at 112x112


class Missing(Exception):
    """A figure's inputs are absent: the message says what and how to make them."""


def lfw_faces(n: int) -> tuple[np.ndarray, list[str]]:
    """n real LFW faces (first image of n identities spread over the sorted list), 112x96 crops padded
    with 8 black columns each side to 112x112 (the ArcFace template frame)."""
    from PIL import Image

    from arface_repro.shared_data import shared_path

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
    from arface_repro.data.alignment import ARCFACE_112

    return np.repeat(np.asarray(ARCFACE_112, np.float32)[None], n, 0)


def fig3(args, out_dir: Path) -> list[Path]:
    try:
        img, names = lfw_faces(1)
        face, lm, r = img[0], template_landmarks(1)[0], PAPER_RADIUS
        what = f"LFW {names[0]} (112x96 padded to 112x112, template landmarks)"
    except Missing as exc:
        from arface_repro.data.synthetic import SyntheticFaces

        print(f"fig 3: {exc}; using a synthetic face", file=sys.stderr)
        s = SyntheticFaces(num_identities=1, images_per_identity=1, seed=0)
        face, lm, r = s.images[0], s.landmarks[0], 12.0
        what = "synthetic face"
    out = out_dir / "fig3_mask_modes.png"
    F.fig3_mask_modes(face, lm, r, out, title=f"Fig. 3: the 31 keep/drop modes on {what}, patch radius {r:g} px\n"
                      f"panel title = mode: keep bits {' '.join(F.PATCH_SHORT)} (1 = kept)")
    return [out]


def _trained_checkpoint(args) -> tuple[Path, str]:
    """Train `--config` for `--steps` steps (or reuse the matching checkpoint); returns (path, how)."""
    from arface_repro.models.training_checkpoint import read_training_checkpoint
    from arface_repro.train.config import load_config

    cfg_path = Path(args.config)
    ov = [f"train.steps={args.steps}"] if args.steps else []
    out = Path(args.runs_dir) / "train" / f"figures_{cfg_path.stem}"
    ov.append(f"out_dir={out}")
    cfg = load_config(cfg_path, ov)
    ck = out / "checkpoint_last.pt"
    if ck.is_file():
        old = read_training_checkpoint(ck)
        if old.get("config") == cfg and int(old.get("step", -1)) == int(cfg["train"]["steps"]):
            return ck, f"reused {ck}"
    from arface_repro.train.api import train_and_evaluate

    t0 = time.time()
    print(f"fig 4: training {cfg_path.name} for {cfg['train']['steps']} steps into {out} ...", file=sys.stderr)
    m = train_and_evaluate(cfg_path, ov)
    print(f"fig 4: trained in {time.time() - t0:.0f} s (held-out synthetic Acc {m.get('val_accuracy', float('nan')):.2f}%)",
          file=sys.stderr)
    return Path(m["checkpoint"]), f"trained {time.time() - t0:.0f} s"


def _describe_training(cfg: dict) -> str:
    d = cfg["data"]
    if d["kind"] == "synthetic":
        s = d["synthetic"]
        occ = f"occluded {s['occluded_patch']}" if s.get("occluded") else "no occlusion"
        return f"synthetic faces ({s['num_identities']} ids, {occ})"
    return f"{d['kind']} data {d.get('path')}"


def fig4(args, out_dir: Path) -> list[Path]:
    import torch

    from arface_repro.data.synthetic import SyntheticFaces
    from arface_repro.train.config import load_config

    torch.set_num_threads(1)  # tiny models on a shared CPU: one thread is the fastest
    if args.checkpoint:
        ck, how = Path(args.checkpoint), f"checkpoint {args.checkpoint}"
    else:
        ck, how = _trained_checkpoint(args)
    net, cfg = F.load_attention_net(ck)
    if args.checkpoint and args.config_given:
        given = load_config(args.config)
        if given["method"] != cfg["method"]:
            raise ConfigError(f"--config {args.config}: its method section differs from the one stored in {ck}")
    r = float(cfg["method"]["patch_radius"])
    steps = int(cfg["train"]["steps"])
    trained_on = f"Attention-Net of {cfg['name']} trained on {_describe_training(cfg)}, {steps} steps"
    outs = []
    # held-out synthetic identities, like the trainer's validation set (identity_offset 100000)
    syn = dict(cfg["data"]["synthetic"]) if cfg["data"]["kind"] == "synthetic" else {"occluded": True}
    syn.pop("num_identities", None)
    syn.pop("images_per_identity", None)
    syn["occluded"] = True
    vcfg = cfg["data"]["val"]
    val = SyntheticFaces(num_identities=int(vcfg["num_identities"]), images_per_identity=int(vcfg["images_per_identity"]),
                         seed=int(cfg["seed"]), identity_offset=100000, **syn)
    all_modes = F.attention_modes(net, val.images, val.landmarks, r)
    dropped = ~F.mode_keep_table()[all_modes][:, val.occluded_patch]
    occ_name = F.PATCH_SHORT[val.occluded_patch]
    rate = (f"{occ_name} dropped on {dropped[val.occluded].mean():.0%} of {val.occluded.sum()} occluded and "
            f"{dropped[~val.occluded].mean():.0%} of {(~val.occluded).sum()} clean held-out faces")
    print(f"fig 4 synthetic: {rate} ({how})", file=sys.stderr)
    idx = np.r_[np.flatnonzero(val.occluded)[:8], np.flatnonzero(~val.occluded)[:8]]
    titles = [f"occluded {occ_name}" if val.occluded[i] else "clean" for i in idx]
    out = out_dir / "fig4_attention_synthetic.png"
    F.fig4_attention_decisions(val.images[idx], val.landmarks[idx], all_modes[idx], r, out, titles=titles,
                               title=f"Fig. 4 (synthetic): {trained_on}\napplied to held-out synthetic faces "
                                     f"(red dashed = dropped, radius {r:g} px); {rate}")
    outs.append(out)
    try:
        imgs, names = lfw_faces(16)
    except Missing as exc:
        print(f"fig 4 (LFW): not drawn: {exc}", file=sys.stderr)
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


def fig5(args, out_dir: Path) -> list[Path]:
    runs = Path(args.runs_dir)
    recs = [r for r in load_records(runs) if r["protocol"] in ("ijbb", "ijbc")]
    with_roc = [r for r in recs if ((r.get("curves") or {}).get("roc") or {}).get("fpr")]
    if not with_roc:
        extra = f" ({len(recs)} IJB records without curves.roc)" if recs else ""
        raise Missing(f"no IJB-B/C 1:1 record with a ROC curve under {runs}{extra}; make one with "
                      "`arface evaluate --protocol ijbb|ijbc --data-root IJB_release/IJBC --model SPEC` "
                      "(or --features STORE.npz; needs the IJB-B/C images or features and meta files)")
    outs = []
    for proto, name in (("ijbb", "IJB-B"), ("ijbc", "IJB-C")):
        mine = [r for r in with_roc if r["protocol"] == proto]
        if mine:
            out = out_dir / f"fig5_roc_{proto}.png"
            F.fig5_roc(mine, out, title=f"Fig. 5: ROC on {name} 1:1 verification")
            outs.append(out)
    return outs


def fig6(args, out_dir: Path) -> list[Path]:
    runs = Path(args.runs_dir)
    paper = F.paper_layer_points()
    outs = []
    measured = F.measured_layer_series(runs)
    if measured:
        out = out_dir / "fig6_num_layers.png"
        flagged = [(p.source, f) for series in measured.values() for pts in series.values() for p in pts for f in p.flags]
        for source, flag in dict.fromkeys(flagged):
            print(f"fig 6: the record of run {source} may not be current: {flag}", file=sys.stderr)
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
                print(f"fig 6 [{arch}] {metric}: " + ", ".join(f"L={p.num_layers}: {p.mean:.2f}" for p in pts), file=sys.stderr)
    if not outs:
        raise Missing(f"no record of the num_layers sweep under {runs} (real: <runs>/paper/<run>/lfw.json and blufr.json "
                      "of the runs in manifest.yaml figures.fig6; synthetic: run `python scripts/reproduce_table.py X` first)")
    return outs


FIGS = {"3": fig3, "4": fig4, "5": fig5, "6": fig6}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 1)[1])
    ap.add_argument("--fig", nargs="+", choices=sorted(FIGS), default=sorted(FIGS), help="figures to draw (default all)")
    ap.add_argument("--runs-dir", default="results/runs", help="result records (Fig. 5, 6) and Fig. 4 training folder")
    ap.add_argument("--out-dir", default="results/figures", help="where the figures go")
    ap.add_argument("--checkpoint", help="Fig. 4: an ARFace training checkpoint (default: train --config)")
    ap.add_argument("--config", help="Fig. 4: config to train when no --checkpoint (default configs/syn_arface_l3.yaml); "
                                      "with --checkpoint it must match the checkpoint's method section")
    ap.add_argument("--steps", type=int, help="Fig. 4: training steps (default: the config's train.steps)")
    args = ap.parse_args(argv)
    args.config_given = args.config is not None
    if args.config is None:
        args.config = str(ROOT / "configs" / "syn_arface_l3.yaml")
    out_dir = Path(args.out_dir)
    status = 0
    for f in args.fig:
        t0 = time.time()
        try:
            paths = FIGS[f](args, out_dir)
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


if __name__ == "__main__":
    raise SystemExit(main())
