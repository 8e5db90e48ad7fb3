"""The transcription of the paper's Tables I-XI (protocols/paper/) and the notes on its contradictions.

Without ../shared: row counts, spot values, internal consistency, the arithmetic checks. With it: every
printed cell, title and quoted sentence against the paper's text, column sums computed from the text, and
BLUFR's pair counts against the protocol file.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from conftest import require

from arface_repro.errors import ConfigError, FormatError
from arface_repro.paper.targets import ROMAN, get_table, load_notes, load_table, parse_table, table_id

ROW_COUNTS = {"I": 14, "II": 6, "III": 11, "IV": 5, "V": 11, "VI": 11, "VII": 6, "VIII": 5, "IX": 5, "X": 15, "XI": 10}


def paper_text(shared):
    return require(shared / "paper" / "arface_tbiom2022.txt")


def text_tables(shared) -> dict:
    """The tables parsed straight from the text here, independently of arface_repro.paper.paper_text."""
    lines = paper_text(shared).read_text(encoding="utf-8").splitlines()
    out, i = {}, 0
    while i < len(lines):
        m = re.match(r"^TABLE ([IVX]+)$", lines[i].strip())
        i += 1
        if not m:
            continue
        while "\t" not in lines[i]:
            i += 1
        rows = []
        while i < len(lines) and "\t" in lines[i]:
            rows.append([c.replace("$", "") for c in lines[i].split("\t")])
            i += 1
        out[m.group(1)] = rows
    return out


def test_table_ids():
    assert table_id("10") == "X" and table_id("xi") == "XI" and table_id(2) == "II"
    with pytest.raises(ConfigError):
        table_id("12")


def test_every_table_loads_with_its_row_count():
    for tid in ROMAN:
        t = load_table(tid)
        assert len(t.rows) == ROW_COUNTS[tid], tid
        assert t.number == ROMAN.index(tid) + 1
        for row in t.rows:
            assert row.source in ("reproducible", "literature")
            for c in t.columns:
                assert math.isfinite(row.value(c))


def test_spot_values():
    x = get_table("X")
    lfw, vr, dir_ = (x.column(c) for c in ("lfw", "blufr_vr", "blufr_dir"))
    assert x.row("r50_subset.attention_l9").value(lfw) == 99.37
    assert x.row("mfn_subset.baseline").text(vr) == "98.20"          # printed form kept
    assert x.row("r50_full.attention_l0").value(dir_) == 97.42
    assert x.row("r50_full.attention_l9").meta["num_layers"] == 9
    assert x.row("mfn_subset.random_l0").printed[:3] == ["", "Random", "num_layers = 0"]
    vi = get_table("VI")
    assert vi.row("arface").text(vi.column("ijbb_1e4")) == "0.920" and vi.column("ijbb_1e4").unit == "fraction"
    assert vi.column("ijbb_1e4").to_record_units(0.92) == pytest.approx(92.0)
    ii = get_table("II")
    assert ii.header[0][3] == "VR@FAR=0.01%" and ii.column("blufr_vr").metric == "VR@FAR=0.1%"   # C01
    viii = get_table("VIII")
    assert viii.row("sphereface").text(viii.column("cfp")) == "94.38%" and viii.row("sphereface").value(viii.column("cfp")) == 94.38
    i = get_table("I")
    assert i.row("centerface").printed[1] == "CASIA-WebFace, CACD2000, Celebrity+" and i.row("deepid2plus").meta["models"] == 25
    assert i.row("arface").source == "reproducible" and i.row("deepface").source == "literature"


def test_cross_table_identities():
    """K02: the same model's numbers agree across tables."""
    x, xi = get_table("X"), get_table("XI")
    full9 = x.row("r50_full.attention_l9")
    assert get_table("I").row("arface").value(get_table("I").column("lfw")) == full9.value(x.column("lfw"))
    ii = get_table("II")
    assert ii.row("arface").value(ii.column("blufr_vr")) == full9.value(x.column("blufr_vr"))
    assert ii.row("arface").value(ii.column("blufr_dir")) == full9.value(x.column("blufr_dir"))
    for b, nl in (("mfn_subset", 3), ("r50_subset", 9)):
        for c in x.columns:
            assert xi.row(f"{b}.baseline").value(xi.column(c.id)) == x.row(f"{b}.baseline").value(c)
            assert xi.row(f"{b}.arface").value(xi.column(c.id)) == x.row(f"{b}.attention_l{nl}").value(c)
    # R01: PickPatch (Table XI) is not Table X's "Random, num_layers = 0"
    for b in ("mfn_subset", "r50_subset"):
        assert any(xi.row(f"{b}.pickpatch").value(xi.column(c.id)) != x.row(f"{b}.random_l0").value(c) for c in x.columns)
    for tid in ("I", "III", "IV"):
        t = get_table(tid)
        assert t.row("pickpatch").value(t.column("lfw")) == 99.65 and t.row("arface").value(t.column("lfw")) == 99.62


def _attainable(v: float, n: int, decimals: int = 2) -> bool:
    k = round(v * n / 100)
    return any(round(100 * kk / n, decimals) == round(v, decimals) for kk in (k - 1, k, k + 1))


def test_accuracies_attainable_by_pair_counts():
    """K03 / C21: a 10-fold mean of equal folds is k / N_pairs; check every printed accuracy."""
    checked = 0
    for tid, col, n in (("I", "lfw", 6000), ("III", "lfw", 6000), ("IV", "lfw", 6000), ("IV", "calfw", 6000),
                        ("IV", "cplfw", 6000), ("X", "lfw", 6000), ("XI", "lfw", 6000), ("III", "ytf", 5000)):
        t = get_table(tid)
        for row in t.rows:
            assert _attainable(row.value(t.column(col)), n), (tid, row.id)
            checked += 1
    assert checked == 14 + 11 + 5 * 3 + 15 + 10 + 11
    viii = get_table("VIII")
    bad = [r.id for r in viii.rows if not _attainable(r.value(viii.column("cfp")), 7000)]
    assert bad == ["sphereface", "arface"]
    # ... and attainable if truncated instead of rounded
    for rid in bad:
        v = viii.row(rid).value(viii.column("cfp"))
        assert any(math.floor(100 * k / 7000 * 100) / 100 == v for k in range(6500, 6800))


def test_numbers_quoted_in_the_text():
    """K04 / K05: the differences the text quotes are the tables' numbers."""
    x, ii, vi, vii = get_table("X"), get_table("II"), get_table("VI"), get_table("VII")
    assert (x.row("r50_subset.random_l0").value(x.column("lfw")), x.row("r50_subset.attention_l0").value(x.column("lfw"))) == (98.90, 99.13)
    assert (ii.row("pickpatch").value(ii.column("blufr_dir")), ii.row("arface").value(ii.column("blufr_dir"))) == (94.64, 97.21)
    c = vi.column("ijbb_1e4")
    assert (100 * vi.row("pickpatch").value(c), 100 * vi.row("arface").value(c)) == pytest.approx((90.8, 92.0))
    c = vii.column("trillion_id")
    assert (vii.row("pickpatch_vggface2").value(c), vii.row("arface_vggface2").value(c)) == (20.17, 49.44)
    assert get_table("III").row("arface").value(get_table("III").column("ytf")) == 97.54
    assert get_table("IV").row("arface").value(get_table("IV").column("cplfw")) == 89.20
    v = get_table("V")
    assert (v.row("arface_r").value(v.column("megaface_id")), v.row("arface_r").value(v.column("megaface_ver"))) == (96.40, 96.75)
    assert 274e3 * 1.58e6 == pytest.approx(0.433e12, rel=1e-3)     # "0.4 trillion pairs"


def test_notes_are_complete():
    notes = load_notes()
    ids = {e["id"] for sec in ("contradictions", "readings", "checks") for e in notes[sec]}
    assert {f"C{i:02d}" for i in range(1, 23)} <= ids and {f"R{i:02d}" for i in range(1, 13)} <= ids
    assert {f"K{i:02d}" for i in range(1, 6)} <= ids
    topics = " ".join(e["topic"] for e in notes["contradictions"])
    for word in ("0.01", "VGGFace2 training set", "mask modes", "Attention-Net", "DeepGlint", "open-set", "SphereFace",
                 "best num_layers", "regularizers", "FAR and FPR"):
        assert word in topics, word


def test_parse_table_rejects_bad_input():
    good = {"format": "arface-paper-table/1", "table": "IX", "number": 9, "title": "T", "location": "L",
            "header": [["Method", "Accuracy"]], "label_columns": 1,
            "columns": [{"id": "a", "header": "Accuracy", "unit": "%", "measure": "m", "protocol": "rmfrd", "metric": "Rank-1"}],
            "rows": [{"id": "x", "printed": ["ARFace", "91.8%"], "source": "reproducible"}]}
    assert parse_table(good, "t.yaml").rows[0].value(parse_table(good, "t.yaml").columns[0]) == 91.8
    bad = {**good, "rows": [{"id": "x", "printed": ["ARFace", "n/a"], "source": "reproducible"}]}
    with pytest.raises(FormatError, match="row x: value 'n/a'"):
        parse_table(bad, "t.yaml")
    bad = {**good, "rows": [{"id": "x", "printed": ["ARFace", "91.8%"], "source": "guess"}]}
    with pytest.raises(FormatError, match="source must be"):
        parse_table(bad, "t.yaml")
    bad = {**good, "number": 8}
    with pytest.raises(FormatError, match="number 8"):
        parse_table(bad, "t.yaml")
    bad = {**good, "rows": [{"id": "x", "printed": ["ARFace", "91.8%"], "source": "literature", "colour": "red"}]}
    with pytest.raises(FormatError, match="unknown key"):
        parse_table(bad, "t.yaml")


def test_paper_text_parser():
    from arface_repro.paper.paper_text import parse_paper_tables

    text = "intro\nTABLE II\nA TITLE\nSECOND LINE\n\nM\tV\nx\t1.0\n\tcont\nbody\nTABLE I\nT\nh\tk\n"
    t = parse_paper_tables(text)
    assert t["II"].title == "A TITLE SECOND LINE" and t["II"].lines == [["M", "V"], ["x", "1.0"], ["", "cont"]]
    assert t["I"].lines == [["h", "k"]]


# ----------------------------------------------------------------------------- against the paper's text

def test_transcription_equals_the_paper(shared):
    from arface_repro.paper.check import check_transcription

    assert check_transcription(paper_text(shared)) == []


def test_row_counts_and_column_sums_from_the_text(shared):
    tt = text_tables(shared)
    assert sorted(tt, key=ROMAN.index) == list(ROMAN)
    for tid in ROMAN:
        t = get_table(tid)
        lines = tt[tid]
        body = lines[len(t.header):]
        assert len(body) == ROW_COUNTS[tid], tid
        for c in t.columns:
            from_text = math.fsum(float(r[c.index].rstrip("%")) for r in body)
            from_yaml = math.fsum(r.value(c) for r in t.rows)
            assert from_yaml == pytest.approx(from_text, abs=1e-9), (tid, c.id)
    # spot values read from the text
    assert tt["X"][9][3:] == ["99.37", "98.75", "89.23"]
    assert tt["VI"][12][1] == "0.920"
    assert tt["II"][0][3] == "VR@FAR=0.01%"


def test_blufr_counts_in_the_config(shared):
    """K01: the paper's 156,915 genuine matches per trial are the config's mean; its impostor count is not."""
    from arface_repro.eval.blufr.config import load_blufr_config
    from arface_repro.paper import resolution

    cfg = load_blufr_config(require(shared / "data" / "blufr" / "blufr_lfw_config.mat"))
    assert len(cfg.image_list) == 13233 and len(np.unique(cfg.labels)) == 5749   # "all the 13233 images"
    gen, imp, gp, ip = [], [], [], []
    for t in range(cfg.n_trials):
        lab = cfg.labels[cfg.test_index[t]]
        _, cnt = np.unique(lab, return_counts=True)
        g = int((cnt * (cnt - 1) // 2).sum())
        gen.append(g)
        imp.append(len(lab) * (len(lab) - 1) // 2 - g)
        in_gal = np.isin(cfg.labels[cfg.prob_index[t]], cfg.labels[cfg.gal_index[t]])
        gp.append(int(in_gal.sum()))
        ip.append(int((~in_gal).sum()))
    assert cfg.n_trials == 10
    counts = resolution.counts("blufr")   # protocols/blufr.yaml
    assert round(np.mean(gen)) == 156915 and np.mean(gen) == pytest.approx(counts["genuine_pairs"])
    assert np.mean(imp) == pytest.approx(47003565.1) and round(np.mean(imp)) != 46960863
    assert np.mean(gp) == pytest.approx(counts["genuine_probes"]) and np.mean(ip) == pytest.approx(counts["impostor_probes"])


def test_lfw_pair_count(shared):
    from arface_repro.io.pairs import parse_lfw_pairs
    from arface_repro.paper.resolution import counts

    p = parse_lfw_pairs(require(shared / "data" / "lfw" / "pairs.txt"))
    assert len(p) == counts("lfw")["pairs"] == 6000 and int(p.issame.sum()) == 3000
