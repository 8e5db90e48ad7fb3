"""`arface compare` and `arface plot-roc` on real LFW records (the shared ONNX MobileFaceNet on 100 pairs of
fold 1) and a BLUFR record; the McNemar p is checked against scipy's exact binomial test."""

import json

import numpy as np
import pytest
from conftest import require
from onnx_lfw import embed_lfw

from arface_repro.cli import main
from arface_repro.io.feature_store import save_feature_store
from arface_repro.io.pairs import parse_lfw_pairs


@pytest.fixture(scope="module")
def lfw_records(shared, tmp_path_factory):
    """Two LFW records over the same 100 pairs (10 folds of 5 + 5): the shared model's features, and the same
    features with seeded noise (a weaker model)."""
    require(shared / "models/mobilefacenet-expo/MobileFaceNet.onnx")
    lines = (shared / "data/lfw/pairs.txt").read_text().splitlines()[1:601]
    same, diff = lines[:300], lines[300:]
    d = tmp_path_factory.mktemp("compare")
    pairs = d / "pairs_small.txt"
    body = [ln for k in range(10) for ln in same[30 * k:30 * k + 5] + diff[30 * k:30 * k + 5]]
    pairs.write_text("10\t5\n" + "\n".join(body) + "\n")
    paths = parse_lfw_pairs(pairs).unique_paths()
    feats = embed_lfw(shared, paths)
    rng = np.random.default_rng(0)
    noisy = feats + 1.2 * np.abs(feats).mean() * rng.standard_normal(feats.shape).astype(np.float32)
    out = []
    for name, f in (("good", feats), ("noisy", noisy)):
        store = d / f"{name}.npz"
        save_feature_store(store, f, paths)
        rec = d / f"{name}.json"
        assert main(["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs),
                     "--out", str(rec)]) == 0
        out.append(rec)
    return d, pairs, out


def test_compare_two_lfw_records_gives_the_mcnemar_p(lfw_records, capsys):
    from scipy.stats import binomtest

    d, _, (a, b) = lfw_records
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "--reps", "200"]) == 0
    text = capsys.readouterr().out
    ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
    ca = np.array([c == "1" for c in ra["per_pair"]["correct"]])
    cb = np.array([c == "1" for c in rb["per_pair"]["correct"]])
    b_only, a_only = int(np.sum(cb & ~ca)), int(np.sum(ca & ~cb))
    assert a_only + b_only > 0  # the noisy features change some decisions
    p = binomtest(b_only, a_only + b_only, 0.5).pvalue
    want = "p < 1e-4" if p < 1e-4 else f"p = {p:.3g}"
    assert f"Acc B vs A: McNemar on 100 pairs: {b_only} B-only vs {a_only} A-only correct, {want}" in text
    assert "paired bootstrap (200)" in text   # TAR@FAR from the scores sidecars
    assert max(len(line) for line in text.splitlines()) <= 200


def test_compare_refuses_other_protocols_and_pair_lists(lfw_records, shared, tmp_path, capsys):
    from arface_repro.eval.blufr.config import load_blufr_config

    d, pairs, (a, b) = lfw_records
    cfg_path = require(shared / "data/blufr/blufr_lfw_config.mat")
    cfg = load_blufr_config(cfg_path)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((cfg.labels.max() + 1, 16))
    feats = centres[cfg.labels] + 0.8 * rng.standard_normal((len(cfg.labels), 16))
    save_feature_store(tmp_path / "b.npz", feats, [f"{n.rsplit('_', 1)[0]}/{n}" for n in cfg.image_list])
    blufr = tmp_path / "blufr.json"
    assert main(["evaluate", "--protocol", "blufr", "--features", str(tmp_path / "b.npz"), "--config", str(cfg_path),
                 "--trials", "1,2", "--out", str(blufr), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["compare", str(a), str(blufr)]) == 2
    err = capsys.readouterr().err
    assert "compare needs records of one protocol" in err and len(err.strip().splitlines()) == 1
    # the same protocol over another pairs file (two pair lines swapped: the file, not the pairs, differs): refused
    other = tmp_path / "pairs_other.txt"
    lines = pairs.read_text().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    other.write_text("\n".join(lines) + "\n")
    rec = tmp_path / "other.json"
    assert main(["evaluate", "--protocol", "lfw", "--features", str(d / "good.npz"), "--pairs", str(other),
                 "--out", str(rec)]) == 0
    capsys.readouterr()
    assert main(["compare", str(a), str(rec)]) == 2
    assert "different pairs files" in capsys.readouterr().err
    # a feature store given as a record is named as one
    assert main(["compare", str(a), str(d / "good.npz")]) == 2
    assert "a zip / .npz archive (a feature store or a scores sidecar), not a result record" in capsys.readouterr().err


def test_compare_blufr_paired_t_over_trials(shared, tmp_path, capsys):
    from scipy.stats import ttest_rel

    from arface_repro.eval.blufr.config import load_blufr_config

    cfg_path = require(shared / "data/blufr/blufr_lfw_config.mat")
    cfg = load_blufr_config(cfg_path)
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((cfg.labels.max() + 1, 16))
    recs = []
    for i, noise in enumerate((0.7, 0.9)):
        feats = centres[cfg.labels] + noise * rng.standard_normal((len(cfg.labels), 16))
        save_feature_store(tmp_path / f"b{i}.npz", feats, [f"{n.rsplit('_', 1)[0]}/{n}" for n in cfg.image_list])
        out = tmp_path / f"b{i}.json"
        assert main(["evaluate", "--protocol", "blufr", "--features", str(tmp_path / f"b{i}.npz"), "--config",
                     str(cfg_path), "--trials", "1,2,3", "--out", str(out), "--quiet"]) == 0
        recs.append(out)
    capsys.readouterr()
    assert main(["compare", *map(str, recs)]) == 0
    text = capsys.readouterr().out
    ra, rb = (json.loads(r.read_text()) for r in recs)
    key = "VR@FAR=0.1%"
    t = ttest_rel(rb["per_trial"][key], ra["per_trial"][key])
    line = next(ln for ln in text.splitlines() if ln.startswith(f"  {key} B vs A: paired t over 3 trials"))
    assert f"p = {t.pvalue:.3g}" in line or (t.pvalue < 1e-4 and "p < 1e-4" in line)


def test_plot_roc_labels_and_compare_plot(lfw_records, tmp_path, capsys):
    from arface_repro.eval.plots import curve_labels, operating_points
    from arface_repro.io.records import load_record

    d, _, (a, b) = lfw_records
    recs = []
    for p in (a, b):
        r = load_record(p)
        r["_path"] = str(p)
        recs.append(r)
    labels = curve_labels(recs)
    assert labels[0].startswith("good.npz: ") and labels[1].startswith("noisy.npz: ")
    assert all("/" not in lab.split(":")[0] for lab in labels)       # a file name, never a path
    same = [dict(recs[0]), dict(recs[0], rule="strict")]
    assert [lab.split(":")[0] for lab in curve_labels(same)] == ["good.npz, rule insightface", "good.npz, rule strict"]
    assert operating_points(recs) and all(0 < f < 1 for f in operating_points(recs))
    assert operating_points([{"metrics": {"VR@FAR=0.1%": 1.0, "TAR@FAR=1e-4": 2.0}}]) == [1e-4, 1e-3]
    for ext, magic in ((".svg", b"<?xml"), (".pdf", b"%PDF"), (".png", b"\x89PNG")):
        fig = tmp_path / f"roc{ext}"
        assert main(["compare", str(a), str(b), "--reps", "20", "--plot", str(fig)]) == 0
        assert fig.read_bytes().startswith(magic) and f"figure: {fig}" in capsys.readouterr().out
    svg = (tmp_path / "roc.svg").read_text()
    assert "good.npz" in svg and str(d) not in svg     # the legend names the file, never its folder
    assert main(["plot-roc", str(d / "good.npz"), "-o", str(tmp_path / "x.png")]) == 2
    assert "not a result record" in capsys.readouterr().err
