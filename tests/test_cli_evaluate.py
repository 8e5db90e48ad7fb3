"""`arface evaluate` / `arface plot-roc` end to end on real LFW features (shared ONNX MobileFaceNet, fold 1)."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import require
from onnx_lfw import embed_lfw

from arface_repro.cli import main
from arface_repro.io.feature_store import save_feature_store
from arface_repro.io.pairs import parse_lfw_pairs


@pytest.fixture(scope="module")
def fold1(shared, tmp_path_factory):
    """The 600 pairs of fold 1 of LFW View 2 as a 10-fold pair file (30 + 30 pairs a fold: the protocol's
    fold structure at a tenth of the size), and a real feature store for its images."""
    require(shared / "models/mobilefacenet-expo/MobileFaceNet.onnx")
    lines = (shared / "data/lfw/pairs.txt").read_text().splitlines()[1:601]
    same, diff = lines[:300], lines[300:]
    d = tmp_path_factory.mktemp("fold1")
    pairs = d / "pairs_fold1.txt"
    body = [ln for k in range(10) for ln in same[30 * k:30 * k + 30] + diff[30 * k:30 * k + 30]]
    pairs.write_text("10\t30\n" + "\n".join(body) + "\n")
    paths = parse_lfw_pairs(pairs).unique_paths()
    feats = embed_lfw(shared, paths)
    store = d / "fold1.npz"
    save_feature_store(store, feats, paths)
    return d, pairs, store


def test_evaluate_lfw_fold1_real(fold1, capsys):
    d, pairs, store = fold1
    out = d / "rec.json"
    assert main(["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Acc" in printed and str(out) in printed
    rec = json.loads(out.read_text())
    assert rec["protocol"] == "lfw" and rec["rule"] == "insightface" and rec["flip"] == "none"
    # the shared MobileFaceNet scores about 99.2% on LFW; fold 1 alone must be in that region
    assert 98.0 <= rec["metrics"]["Acc"] <= 100.0
    assert len(rec["per_fold"]["Acc"]) == 10 and rec["counts"] == {"pairs": 600, "genuine": 300, "folds": 10}
    assert rec["inputs"]["features"]["sha256"] and rec["inputs"]["pairs"]["sha256"]
    assert 0 < rec["metrics"]["TAR@FAR=1e-3"] <= 100
    # per-pair decisions under the fold thresholds agree with the fold accuracy; the sidecar holds the scores
    bits = rec["per_pair"]["correct"]
    assert len(bits) == 600 and set(bits) <= {"0", "1"}
    assert bits.count("1") / 600 * 100 == pytest.approx(rec["metrics"]["Acc"])  # folds of equal size
    from arface_repro.io.records import load_record, load_sidecar

    side = load_sidecar(load_record(out) | {"_path": str(out)})
    assert side["scores"].shape == (600,) and side["labels"].sum() == 300
    thr = np.asarray(rec["per_fold"]["threshold"])[side["fold"]]
    assert ((2.0 - 2.0 * side["scores"] < thr + 1e-12) == side["labels"].astype(bool)).mean() * 100 == \
        pytest.approx(rec["metrics"]["Acc"])
    (d / side_name(rec)).write_bytes((d / side_name(rec)).read_bytes()[:-10])
    with pytest.raises(Exception, match="sha256 differs"):
        load_sidecar(load_record(out) | {"_path": str(out)})
    fig = d / "roc.png"
    assert main(["plot-roc", str(out), str(out), "--label", "a", "--label", "b", "-o", str(fig)]) == 0
    assert fig.stat().st_size > 10_000 and fig.read_bytes()[:4] == b"\x89PNG"


def side_name(rec):
    return rec["sidecars"]["scores"]["path"]


def test_evaluate_reports_missing_images(fold1, tmp_path, capsys):
    d, pairs, store = fold1
    from arface_repro.io.feature_store import load_feature_store

    s = load_feature_store(store)
    keep = np.ones(len(s), bool)
    keep[5] = False
    save_feature_store(tmp_path / "partial.npz", s.features[keep], s.paths[keep])
    assert main(["evaluate", "--protocol", "lfw", "--features", str(tmp_path / "partial.npz"), "--pairs", str(pairs),
                 "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert s.paths[5] in err and "not in the feature store" in err
    assert not (tmp_path / "r.json").exists()


def test_evaluate_blufr_cli_on_synthetic_store(shared, tmp_path, capsys):
    """BLUFR through the CLI: store paths are 'Name/Name_0001.jpg', the config lists bare names."""
    from arface_repro.eval.blufr.config import load_blufr_config

    cfg_path = require(shared / "data/blufr/blufr_lfw_config.mat")
    cfg = load_blufr_config(cfg_path)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((cfg.labels.max() + 1, 32))
    feats = centres[cfg.labels] + 0.8 * rng.standard_normal((len(cfg.labels), 32))
    paths = [f"{n.rsplit('_', 1)[0]}/{n}" for n in cfg.image_list]
    save_feature_store(tmp_path / "b.npz", feats, paths)
    out = tmp_path / "blufr.json"
    assert main(["evaluate", "--protocol", "blufr", "--features", str(tmp_path / "b.npz"), "--config", str(cfg_path),
                 "--trials", "1,2", "--out", str(out), "--quiet"]) == 0
    rec = json.loads(out.read_text())
    assert set(rec["metrics"]) >= {"VR@FAR=0.1%", "DIR@FAR=1%"}
    assert rec["per_trial"]["trial"] == [1, 2] and len(rec["curves"]["verification"]["vr"]) == 2
    vr = rec["per_trial"]["VR@FAR=0.1%"]
    assert rec["metrics"]["VR@FAR=0.1%"] == pytest.approx(np.mean(vr) - np.std(vr, ddof=1))


def test_cli_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("evaluate", "plot-roc"):
        assert cmd in out


def test_evaluate_bin_set_with_a_model(shared, tmp_path, capsys):
    """`--protocol bin --model`: the .bin's own images are decoded and embedded (shared ONNX MobileFaceNet)."""
    binf = require(shared / "data/insightface/small_lfw.bin")
    model = require(shared / "models/mobilefacenet-expo/MobileFaceNet.onnx")
    out = tmp_path / "bin.json"
    assert main(["evaluate", "--protocol", "bin", "--model", f"onnx:{model}", "--pairs", str(binf), "--out", str(out),
                 "--quiet"]) == 0
    rec = json.loads(out.read_text())
    assert rec["model"] == f"onnx:{model}" and rec["flip"] == "add" and rec["counts"]["pairs"] == 10
    # all 10 pairs are genuine: every fold's accuracy is 0 or 100, and the real model gets most right
    assert all(a in (0.0, 100.0) for a in rec["per_fold"]["Acc"]) and rec["metrics"]["Acc"] >= 70.0


def test_record_notes_what_the_presets_authors_report(shared, tmp_path, capsys, monkeypatch):
    """A preset's published figure for the evaluated benchmark goes into the record and the printout."""
    import shutil

    binf = require(shared / "data/insightface/small_lfw.bin")
    model = require(shared / "models/mobilefacenet-expo/MobileFaceNet.onnx")
    proto = tmp_path / "protocols"
    shutil.copytree(Path(__file__).resolve().parents[1] / "protocols", proto)
    preset = (proto / "models" / "mobilefacenet-expo.yaml").read_text().replace("name: mobilefacenet-expo", "name: mfn-test")
    preset = preset.replace("reported: []", "reported:\n  - {benchmark: BIN, metric: accuracy, value: 12.5, "
                            "protocol: made up for this test, source: 'https://example.org/mfn'}\n"
                            "  - {benchmark: IJB-C, metric: TAR@FAR=1e-4, value: 1.0, protocol: other, "
                            "source: 'https://example.org/ijbc'}")
    (proto / "models" / "mfn-test.yaml").write_text(preset)
    monkeypatch.setenv("ARFACE_PROTOCOLS", str(proto))
    out = tmp_path / "bin.json"
    assert main(["evaluate", "--protocol", "bin", "--model", f"mfn-test:{model}", "--pairs", str(binf), "--out", str(out),
                 "--quiet", "--cache-dir", "none"]) == 0
    rec = json.loads(out.read_text())
    assert [r["value"] for r in rec["reported_by_authors"]] == [12.5]  # only the benchmark evaluated here
    assert rec["model_info"]["kind"] and "https://example.org/mfn" in capsys.readouterr().out
