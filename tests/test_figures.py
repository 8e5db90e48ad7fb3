"""The paper's figures (arface_repro.eval.figures) and the thin figure/evaluation scripts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from arface_repro.data.synthetic import SyntheticFaces
from arface_repro.errors import FormatError
from arface_repro.eval import figures as F
from arface_repro.io.records import build_record, load_records, write_record
from arface_repro.method.patches import mode_keep_table, patch_boxes

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


def _layer_record(runs: Path, config: str, acc: float, stamp: str, overrides=()) -> Path:
    rec = build_record("synthetic-verification", "kfold-best-threshold", {"Acc": acc}, model=f"config:{config}",
                       extra={"overrides": list(overrides)})
    rec["created_utc"] = stamp
    return write_record(rec, runs / f"{config}-{stamp[:19].replace(':', '')}-{len(overrides)}.json")


def test_fig6_orders_points_by_num_layers(tmp_path):
    runs = tmp_path / "runs"
    # written out of order; l2 twice (the newer one wins); one foreign record and a Table X-only row
    _layer_record(runs, "syn_arface_l4.yaml", 91.0, "2026-01-01T00:00:04Z")
    _layer_record(runs, "syn_arface_l2.yaml", 80.0, "2026-01-01T00:00:01Z")
    _layer_record(runs, "syn_arface_l2.yaml", 88.5, "2026-01-02T00:00:00Z")
    _layer_record(runs, "syn_arface_input.yaml", 85.0, "2026-01-01T00:00:05Z")
    _layer_record(runs, "syn_arface_l1.yaml", 86.0, "2026-01-01T00:00:06Z")
    _layer_record(runs, "syn_plain.yaml", 70.0, "2026-01-01T00:00:07Z")
    _layer_record(runs, "syn_arface_l3.yaml", 60.0, "2026-01-01T00:00:08Z", ["train.steps=20"])
    write_record(build_record("lfw", "insightface", {"Acc": 99.0}, model="x"), runs / "lfw-x.json")
    out = tmp_path / "f6.png"
    series = F.fig6_metric_vs_layers(load_records(runs), out)
    assert set(series) == {"default config", "train.steps=20"}
    pts = series["default config"]
    assert [p.num_layers for p in pts] == [0, 1, 2, 4]
    assert [p.value for p in pts] == [85.0, 86.0, 88.5, 91.0]
    assert [(p.num_layers, p.value) for p in series["train.steps=20"]] == [(3, 60.0)]
    img = read_png(out)
    assert img.ndim == 3 and img.shape[0] > 200


def test_fig6_without_layer_records_says_what_to_run(tmp_path):
    rec = build_record("lfw", "insightface", {"Acc": 99.0}, model="x")
    with pytest.raises(FormatError, match="reproduce_table.py XI"):
        F.fig6_metric_vs_layers([rec], tmp_path / "f6.png")
    assert not (tmp_path / "f6.png").exists()


def test_fig6_stale_config_record(tmp_path):
    rec = build_record("synthetic-verification", "kfold-best-threshold", {"Acc": 1.0}, model="config:syn_arface_l1.yaml")
    rec["inputs"] = {"config": {"path": "configs/syn_arface_l1.yaml", "sha256": "0" * 64}}
    with pytest.raises(F.StaleRecordError, match="changed since"):
        F.layer_series([rec])
    stale: list[str] = []
    assert F.layer_series([rec], stale=stale) == {}
    assert stale == ["record 0"]


def test_attention_modes_from_checkpoint(faces, tmp_path, one_torch_thread):
    import torch

    from arface_repro.method.attention_net import AttentionNet
    from arface_repro.train.checkpoint import save_checkpoint
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
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd or ROOT, timeout=120)


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
    assert img.shape[:2] == (576, 768)  # plot_roc's 6.4 x 4.8 in at 120 dpi


def test_make_figures_reports_missing_inputs(tmp_path):
    r = _script(str(ROOT / "scripts" / "make_figures.py"), "--fig", "5", "6", "--runs-dir", str(tmp_path / "runs"),
                "--out-dir", str(tmp_path / "figs"))
    assert r.returncode == 1
    assert "fig 5: NOT DRAWN" in r.stdout and "evaluate-large" in r.stdout
    assert "fig 6: NOT DRAWN" in r.stdout and "reproduce_table.py XI" in r.stdout
    assert not (tmp_path / "figs").exists() or not any((tmp_path / "figs").iterdir())


def test_make_figures_fig5_from_ijb_record(tmp_path):
    fpr = np.logspace(-6, 0, 40)
    rec = build_record("ijbc", "ijb-nearest-fpr", {"TAR@FAR=1e-4": 90.0}, model="fake-model",
                       curves={"roc": {"fpr": fpr.tolist(), "tpr": (1 - 0.2 * (1 - fpr) ** 8).tolist()}})
    write_record(rec, tmp_path / "runs" / "ijbc-fake.json")
    r = _script(str(ROOT / "scripts" / "make_figures.py"), "--fig", "5", "--runs-dir", str(tmp_path / "runs"),
                "--out-dir", str(tmp_path / "figs"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert read_png(tmp_path / "figs" / "fig5_roc_ijbc.png").shape[:2] == (576, 768)
    assert not (tmp_path / "figs" / "fig5_roc_ijbb.png").exists()  # no IJB-B record: no IJB-B figure
