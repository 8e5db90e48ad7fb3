"""The paper's figures (arface_repro.paper.figures) and the thin figure/evaluation scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from arface_repro.cli import main
from arface_repro.data.occluded_faces import SyntheticFaces
from arface_repro.errors import FormatError
from arface_repro.io.records import build_record, write_record
from arface_repro.method.patches import mode_keep_table, patch_boxes
from arface_repro.paper import figures as F
from arface_repro.paper.make_figures import fig5_curves
from arface_repro.paper.manifest import load_manifest, parse_manifest, record_path
from arface_repro.shared_data import protocols_dir
from arface_repro.utils.textfile import read_yaml_mapping

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(path: Path) -> np.ndarray:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    return mpimg.imread(path)


@pytest.fixture(scope="module")
def faces():
    return SyntheticFaces(num_identities=3, images_per_identity=2, seed=0, occluded=True)


def test_fig3_writes_png_with_all_modes(faces, tmp_path):
    out = F.fig3_mask_modes(faces.images[0], faces.landmarks[0], 12, tmp_path / "f3.png")
    img = read_png(out)
    # 32 panels (patch overview + 31 modes) on a 4 x 8 grid at 120 dpi: wider than tall, not a stub
    assert img.ndim == 3 and img.shape[1] > img.shape[0] > 400 and img.shape[1] > 1000
    assert not (tmp_path / "f3.png.tmp").exists()


def test_mode_bits_follow_keep_table():
    assert F.mode_bits(30) == "11111"
    assert F.mode_bits(0) == "10000"  # bitmask 1: only the left eye kept
    assert F.mode_bits(3) == "00100"  # bitmask 4: only the nose kept


def test_fig4_draws_exactly_the_dropped_boxes(faces, tmp_path):
    modes = np.array([30, 0, 3, 26, 14, 17])
    drawn = F.fig4_attention_decisions(faces.images, faces.landmarks, modes, 12, tmp_path / "f4.png",
                                       titles=[f"img {i}" for i in range(6)])
    img = read_png(tmp_path / "f4.png")
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 300
    keep = mode_keep_table()
    boxes = patch_boxes(faces.landmarks, 12, 112, 112)
    assert len(drawn) == len(modes)
    for i, m in enumerate(modes):
        want = [(int(p), tuple(int(v) for v in boxes[i, p])) for p in np.flatnonzero(~keep[m])]
        assert drawn[i] == want
    assert drawn[0] == []  # mode 30 keeps everything: nothing drawn
    assert [p for p, _ in drawn[2]] == [0, 1, 3, 4]  # mode 3 keeps only the nose


def test_fig4_rejects_mismatched_inputs(faces, tmp_path):
    with pytest.raises(FormatError, match="modes"):
        F.fig4_attention_decisions(faces.images, faces.landmarks, [1, 2], 12, tmp_path / "x.png")


def _syn_record(runs: Path, config: str, seed: int, acc: float, vr: float, dir_: float) -> Path:
    from arface_repro.paper.synthetic_runs import Job, record_file, run_key

    job = Job(config, seed)
    rec = build_record("synthetic-verification", "syn", {"Acc": acc, "VR@FAR=0.1%": vr, "DIR@FAR=1%": dir_},
                       model=f"config:{config}", extra={"overrides": [], "seed": seed, "run_key": run_key(job)})
    return write_record(rec, record_file(runs, job))


def test_fig6_from_synthetic_records(tmp_path):
    runs = tmp_path / "runs"
    # the MobileFaceNet role's sweep: l0 (2 seeds), l2 (1 seed), l4 (1 seed); ResNet50 role: l3 only
    _syn_record(runs, "syn_arface_input", 0, 80.0, 10.0, 5.0)
    _syn_record(runs, "syn_arface_input", 1, 82.0, 12.0, 7.0)
    _syn_record(runs, "syn_arface_l2", 0, 85.0, 15.0, 9.0)
    _syn_record(runs, "syn_arface_l4", 0, 86.0, 16.0, 11.0)
    _syn_record(runs, "syn_r50_arface_l3", 0, 90.0, 20.0, 15.0)
    write_record(build_record("lfw", "insightface", {"Acc": 99.0}, model="x"), runs / "synthetic" / "lfw-x.json")
    series = F.synthetic_layer_series(runs)
    mfn = series["Acc"]["MobileFaceNet role"]
    assert [(p.num_layers, p.mean, p.n) for p in mfn] == [(0, 81.0, 2), (2, 85.0, 1), (4, 86.0, 1)]
    assert mfn[0].sd == pytest.approx(np.std([80.0, 82.0], ddof=1))
    assert [(p.num_layers, p.mean) for p in series["DIR@FAR=1%"]["ResNet50 role"]] == [(3, 15.0)]
    out = F.fig6_layers(series, tmp_path / "f6.png", paper=F.paper_layer_points())
    img = read_png(out)
    assert img.ndim == 3 and img.shape[1] > 1.3 * img.shape[0]     # two rows of three panels
    # a record of another budget (overrides) is not part of the default series
    from arface_repro.paper.synthetic_runs import Job, record_file, run_key

    job = Job("syn_arface_l1", 0, ("train.steps=5",))
    write_record(build_record("synthetic-verification", "syn", {"Acc": 1.0, "VR@FAR=0.1%": 1.0, "DIR@FAR=1%": 1.0},
                              model="config:syn_arface_l1", extra={"overrides": ["train.steps=5"], "seed": 0, "run_key": run_key(job)}),
                 record_file(runs, job))
    assert 1 not in [p.num_layers for p in F.synthetic_layer_series(runs)["Acc"]["MobileFaceNet role"]]


def test_fig6_paper_points_and_measured_records(tmp_path):
    from arface_repro.paper.manifest import record_path

    pts = F.paper_layer_points()
    assert [(p.num_layers, p.mean) for p in pts["Acc"]["MobileFaceNet"]] == [(0, 98.83), (3, 98.95), (5, 98.90)]
    assert [(p.num_layers, p.mean) for p in pts["DIR@FAR=1%"]["ResNet50"]] == [(0, 88.71), (9, 89.23), (12, 90.73)]
    runs = tmp_path / "runs"
    trained = {"model_info": {"kind": "arface", "spec": "arface:l9.pt", "config": "r50_arface_l9"}}
    write_record(build_record("lfw", "insightface", {"Acc": 99.3}, extra=trained), record_path(runs, "r50_arface_l9", "lfw"))
    write_record(build_record("blufr", "blufr-official", {"VR@FAR=0.1%": 98.7, "DIR@FAR=1%": 89.0}),
                 record_path(runs, "r50_arface_l9", "blufr"))
    series = F.measured_layer_series(runs)
    assert [(p.num_layers, p.mean) for p in series["Acc"]["ResNet50"]] == [(9, 99.3)]
    assert series["DIR@FAR=1%"]["ResNet50"][0].mean == 89.0
    # the lfw record is the row's model, made by this code; the blufr one names no model
    assert series["Acc"]["ResNet50"][0].flags == ()
    assert [f.split(":")[0] for f in series["DIR@FAR=1%"]["ResNet50"][0].flags] == ["model unverified"]
    with pytest.raises(FormatError, match="no point"):
        F.fig6_layers({}, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_attention_modes_from_checkpoint(faces, tmp_path, one_torch_thread):
    import torch

    from arface_repro.method.attention_net import AttentionNet
    from arface_repro.train.checkpoint import save_checkpoint  # tests may use the trainer; the figures do not
    from arface_repro.train.config import load_config

    cfg = load_config(ROOT / "configs" / "syn_arface_l3.yaml")
    a = cfg["method"]["attention"]
    net = AttentionNet(a["patch_size"], tuple(a["channels"]))
    with torch.no_grad():
        net.classifier.bias[7] = 5.0  # the zero-initialised classifier then always picks mode 7
    ck = save_checkpoint(tmp_path / "ck.pt", {"config": cfg, "step": 0, "attn": net.state_dict()})
    loaded, got_cfg = F.load_attention_net(ck)
    assert got_cfg["method"]["patch_radius"] == 12
    modes = F.attention_modes(loaded, faces.images, faces.landmarks, 12, batch=4)
    assert modes.tolist() == [7] * len(faces)
    save_checkpoint(tmp_path / "plain.pt", {"config": cfg, "step": 0})
    with pytest.raises(Exception, match="no Attention-Net"):
        F.load_attention_net(tmp_path / "plain.pt")


def _script(*args, cwd=None) -> subprocess.CompletedProcess:
    # the scripts import the installed package: PYTHONPATH makes it this checkout's
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd or ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("script,needle", [("plot_roc.py", "plot-roc"), ("evaluate_checkpoint.py", "--protocol"),
                                           ("make_figures.py", "--checkpoint")])
def test_scripts_help(script, needle):
    r = _script(str(ROOT / "scripts" / script), "--help")
    assert r.returncode == 0, r.stderr
    assert needle in r.stdout


def test_plot_roc_script_writes_png(tmp_path):
    fpr = np.logspace(-5, 0, 30)
    rec = build_record("ijbb", "ijb-nearest-fpr", {"TAR@FAR=1e-4": 80.0}, model="fake-model",
                       curves={"roc": {"fpr": fpr.tolist(), "tpr": np.sqrt(fpr).tolist()}})
    path = write_record(rec, tmp_path / "ijbb-fake.json")
    out = tmp_path / "roc.png"
    r = _script(str(ROOT / "scripts" / "plot_roc.py"), str(path), "-o", str(out), "--title", "t")
    assert r.returncode == 0, r.stderr
    img = read_png(out)
    assert img.shape[:2] == (585, 750)  # plot_roc's 5.0 x 3.9 in at 150 dpi


def test_make_figures_reports_missing_inputs(tmp_path):
    r = _script(str(ROOT / "scripts" / "make_figures.py"), "--fig", "5", "6", "--runs-dir", str(tmp_path / "runs"),
                "--out-dir", str(tmp_path / "figs"))
    assert r.returncode == 1
    assert "fig 5: NOT DRAWN" in r.stdout and "arface evaluate --protocol ijbb|ijbc" in r.stdout
    assert "fig 6: NOT DRAWN" in r.stdout and "reproduce_table.py X" in r.stdout
    assert not (tmp_path / "figs").exists() or not any((tmp_path / "figs").iterdir())


def _ijb_record(proto: str, tpr_scale: float) -> dict:
    fpr = np.logspace(-6, 0, 40)
    return build_record(proto, "ijb-nearest-fpr", {"TAR@FAR=1e-4": 90.0}, model="fake-model",
                        curves={"roc": {"fpr": fpr.tolist(), "tpr": (1 - tpr_scale * (1 - fpr) ** 8).tolist()}})


def test_make_figures_fig5_from_the_manifests_runs(tmp_path):
    """Fig. 5 draws the records of the runs manifest.yaml names under figures.fig5, nothing else."""
    runs = tmp_path / "runs"
    write_record(_ijb_record("ijbc", 0.2), record_path(runs, "r50full_arface_l9", "ijbc"))
    write_record(_ijb_record("ijbb", 0.2), runs / "ijbb-fake.json")   # not a run of the manifest: not drawn
    r = _script(str(ROOT / "scripts" / "make_figures.py"), "--fig", "5", "--runs-dir", str(runs),
                "--out-dir", str(tmp_path / "figs"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert read_png(tmp_path / "figs" / "fig5_roc_ijbc.png").shape[:2] == (585, 750)  # plot_roc: 5.0 x 3.9 in, 150 dpi
    assert not (tmp_path / "figs" / "fig5_roc_ijbb.png").exists()  # no IJB-B record of a manifest run: no IJB-B figure


def test_fig5_curves_follow_the_manifest(tmp_path):
    runs = tmp_path / "runs"
    named = load_manifest().figures["fig5"]["ijbc"]            # {label: run}
    for run in named.values():
        write_record(_ijb_record("ijbc", 0.2), record_path(runs, run, "ijbc"))
    curves = fig5_curves(runs)
    assert curves["ijbc"].labels == list(named) and len(curves["ijbc"].records) == len(named)
    assert not curves["ijbb"].records and all("no record" in a for a in curves["ijbb"].absent)
    run = next(iter(named.values()))
    write_record(_ijb_record("ijbb", 0.2), record_path(runs, run, "ijbc"))   # another protocol at the ijbc path
    with pytest.raises(FormatError, match="'ijbb' where 'ijbc' is expected"):
        fig5_curves(runs)


def test_arface_paper_figures_draws_like_the_script(tmp_path, capsys):
    runs = tmp_path / "runs"
    write_record(_ijb_record("ijbb", 0.3), record_path(runs, "r50full_pickpatch_l9", "ijbb"))
    assert main(["paper", "figures", "--fig", "5", "--runs-dir", str(runs), "--out-dir", str(tmp_path / "figs")]) == 0
    assert "fig 5: " in capsys.readouterr().out
    assert read_png(tmp_path / "figs" / "fig5_roc_ijbb.png").shape[:2] == (585, 750)
    assert main(["paper", "figures", "--fig", "6", "--runs-dir", str(runs), "--out-dir", str(tmp_path / "figs")]) == 1
    assert "fig 6: NOT DRAWN" in capsys.readouterr().out


def test_manifest_figures_name_known_runs():
    data = read_yaml_mapping(protocols_dir() / "paper" / "manifest.yaml")
    data["figures"]["fig5"]["ijbc"]["ARFace"] = "no_such_run"
    with pytest.raises(FormatError, match="figures.fig5.ijbc.ARFace: run 'no_such_run' is not in runs"):
        parse_manifest(data, "manifest.yaml")
