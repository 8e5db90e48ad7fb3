"""IJB-B/C 1:1 and 1:N: template pooling, pair scores, TAR@FAR rules, meta-file errors, CLI record."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from arface_repro.errors import ConfigError, FormatError, MissingDataError
from arface_repro.eval import large_scale_synthetic as synth
from arface_repro.eval.chunked import make_backend, tar_at_far_from_top
from arface_repro.eval.ijb import meta as ijb_meta
from arface_repro.eval.ijb import metric as ijb
from arface_repro.eval.ijb import one_to_n as ijb_1n
from arface_repro.eval.roc_table import roc_table


def test_template_pooling_hand_example():
    # template 1: media 7 = images [1,0] and [3,0] (mean [2,0]); media 8 = [0,2] -> sum [2,2]
    # template 2: one image [0,-5]
    f = np.array([[1, 0], [3, 0], [0, 2], [0, -5]], np.float32)
    tids, tf = ijb.template_features(f, None, None, np.array([1, 1, 1, 2]), np.array([7, 7, 8, 9]),
                                     ijb.CombineOptions(flip="none", faceness=False))
    assert tids.tolist() == [1, 2]
    np.testing.assert_allclose(tf, [[np.sqrt(0.5), np.sqrt(0.5)], [0, -1]], atol=1e-7)
    # flip add doubles features (no effect after normalisation); faceness 0.5 on [3,0] -> media mean [1.25,0]
    fc = np.array([1, 0.5, 1, 1], np.float32)
    _, tf2 = ijb.template_features(f, f, fc, np.array([1, 1, 1, 2]), np.array([7, 7, 8, 9]), ijb.CombineOptions())
    v = np.array([2 * 1.25, 4.0])  # (2*[1,0] + 2*0.5*[3,0])/2 = [2.5, 0]; media 8 = 2*[0,2]
    np.testing.assert_allclose(tf2[0], v / np.linalg.norm(v), atol=1e-7)
    # per-image normalisation: media 7 mean of [1,0],[1,0] -> [1,0]; media 8 -> [0,1]
    _, tf3 = ijb.template_features(f, None, None, np.array([1, 1, 1, 2]), np.array([7, 7, 8, 9]),
                                   ijb.CombineOptions(flip="none", normalize=True, faceness=False))
    np.testing.assert_allclose(tf3[0], [np.sqrt(0.5), np.sqrt(0.5)], atol=1e-7)
    # concat mode doubles the dimension
    _, tf4 = ijb.template_features(f, 2 * f, None, np.array([1, 1, 1, 2]), np.array([7, 7, 8, 9]),
                                   ijb.CombineOptions(flip="concat", faceness=False))
    assert tf4.shape == (2, 4)


def test_template_pooling_matches_loop_in_chunks():
    rng = np.random.default_rng(3)
    n = 3000
    t = rng.integers(0, 50, n)
    m = t * 10 + rng.integers(0, 4, n)
    f, g = rng.standard_normal((n, 8)).astype(np.float32), rng.standard_normal((n, 8)).astype(np.float32)
    fc = rng.uniform(0.2, 1, n).astype(np.float32)
    tids, tf = ijb.template_features(f, g, fc, t, m, max_memory_gb=1e-5)  # many small chunks
    x = (f.astype(np.float64) + g) * fc[:, None]
    for k, tid in enumerate(tids):
        s = sum(x[(t == tid) & (m == md)].mean(0) for md in np.unique(m[t == tid]))
        np.testing.assert_allclose(tf[k], s / np.linalg.norm(s), atol=2e-6)


@pytest.mark.parametrize("device", ["cpu", "torch-cpu"])
def test_pair_scores_are_the_reference_expression(device):
    rng = np.random.default_rng(0)
    tf = rng.standard_normal((400, 16))
    tf /= np.linalg.norm(tf, axis=1, keepdims=True)
    i1 = np.sort(rng.integers(0, 400, 20000))
    i2 = rng.integers(0, 400, 20000)
    t2id = np.arange(400)[:, None]  # insightface gathers (n, 1, d) blocks and sums the last axis
    ref = np.sum(tf[t2id[i1]] * tf[t2id[i2]], -1).flatten()
    got = ijb.pair_scores(tf, i1, i2, backend=make_backend(device), chunk=999)
    if device == "cpu":
        np.testing.assert_array_equal(got, ref)  # bit for bit, for any chunking
        np.testing.assert_array_equal(ijb.pair_scores(tf, i1, i2, chunk=20000), ref)
        np.testing.assert_array_equal(ijb.pair_scores(tf, i1[::-1].copy(), i2, chunk=777), np.sum(tf[t2id[i1[::-1]]] * tf[t2id[i2]], -1).flatten())
    else:
        np.testing.assert_allclose(got, ref, rtol=0, atol=ijb.SCORE_TOLERANCE_CUDA)


# crafted ROC with ties: 4 genuine, 8 impostor scores (FPR steps of 1/8 are exact in binary)
GEN = [0.9, 0.75, 0.65, 0.3]
IMP = [0.8, 0.7, 0.6, 0.5, 0.4, 0.2, 0.1, 0.0]
FARS = [0.01, 0.125, 0.1875, 0.5]
# hand-derived: ROC after drop_intermediate has (fpr, tpr) = (0,.25) (.125,.25) (.125,.5) (.25,.5) (.25,.75)
# (.625,.75) (.625,1) (1,1); at 0.1875 the points at .125 and .25 are equally near and insightface takes the
# later one in sklearn's order (tpr .75); strict = TAR at the most permissive threshold with FAR <= target
NEAREST = {0.01: 0.25, 0.125: 0.5, 0.1875: 0.75, 0.5: 1.0}
STRICT = {0.01: 0.25, 0.125: 0.5, 0.1875: 0.5, 0.5: 0.75}


def roc_tar_at_far(scores, labels, fars, rule: str = "nearest") -> dict[float, float]:
    """The project's rule on the package's one ROC path (`eval.roc_table`)."""
    return roc_table(scores, labels, fars, (rule,), 0)[0][rule]


def _sklearn_tar_at_far(scores: np.ndarray, labels: np.ndarray, fars: Sequence[float], rule: str) -> dict[float, float]:
    """Both rules written independently on full score arrays: sklearn's roc_curve (nearest) and the k-th
    impostor threshold (strict), the reference the project's `eval.roc` rules are checked against."""
    from sklearn.metrics import roc_curve

    scores = np.asarray(scores)
    labels = np.asarray(labels).astype(np.int64)
    if rule == "nearest":
        fpr, tpr, _ = roc_curve(labels, scores)
        out = {}
        for far in fars:
            d = np.abs(fpr - far)
            hits = np.flatnonzero(d == d.min())
            out[far] = float(tpr[hits[-1]])
        return out
    if rule == "strict":
        gen = np.sort(scores[labels == 1])
        imp = -np.sort(-scores[labels == 0])
        out = {}
        for far in fars:
            k = int(math.floor(far * imp.size + 1e-9 * max(1.0, far * imp.size)))
            if k >= imp.size:
                out[far] = 1.0
                continue
            v = imp[k]
            out[far] = float(gen.size - np.searchsorted(gen, v, side="right")) / max(1, gen.size)
        return out
    raise ConfigError(f"unknown TAR@FAR rule {rule!r} (expected nearest or strict)")


@pytest.mark.parametrize("impl", ["project", "sklearn"])
def test_tar_rules_on_crafted_ties(impl):
    scores = np.array(GEN + IMP)
    labels = np.array([1] * 4 + [0] * 8)
    fn = roc_tar_at_far if impl == "project" else _sklearn_tar_at_far
    assert fn(scores, labels, FARS, rule="nearest") == NEAREST
    assert fn(scores, labels, FARS, rule="strict") == STRICT
    table, _ = roc_table(scores, labels, FARS)
    assert table == {"nearest": NEAREST, "strict": STRICT}
    imp_sorted = -np.sort(-np.array(IMP))
    assert {f: tar_at_far_from_top(np.array(GEN), imp_sorted, 8, f)[0] for f in FARS} == STRICT


def test_ijb_table_equals_sklearn_rules_with_ties():
    rng = np.random.default_rng(4)
    for n, decimals in ((5000, 2), (3000, 6), (12, 1)):
        labels = rng.random(n) < 0.2
        labels[:2] = [True, False]
        scores = np.round(rng.standard_normal(n) + labels, decimals).astype(np.float32)
        table, curve = roc_table(scores, labels, FARS + [1e-3], max_points=50)
        for rule in ("nearest", "strict"):
            assert table[rule] == roc_tar_at_far(scores, labels, FARS + [1e-3], rule)
        assert len(curve["fpr"]) <= 50


def _small_ijb(tmp_path: Path, scale: float = 0.002):
    sz = {k: max(4, int(v * scale)) for k, v in synth.IJBC.items()}
    data = synth.synth_ijb(**sz, seed=5)
    f, g = synth.ijb_features(data, 32, seed=6, sigma=5.0)
    synth.write_ijb(tmp_path, data, f, g, "ijbc")
    return data, f, g


def test_evaluate_11_matches_direct_computation(tmp_path):
    data, f, g = _small_ijb(tmp_path)
    from arface_repro.io.feature_store import load_feature_store

    store = load_feature_store(tmp_path / "ijbc_features.npz")
    meta = ijb_meta.load_ijb_meta(tmp_path / "meta", "ijbc")
    res = ijb.evaluate_11(store, meta, max_memory_gb=1e-4)
    # direct: per template, media means summed, normalised; dot products; project's rules
    x = (f.astype(np.float64) + g) * meta.faceness[:, None].astype(np.float64)
    tids = np.unique(data.templates)
    tf = np.stack([sum(x[(data.templates == t) & (data.medias == m)].mean(0)
                       for m in np.unique(data.medias[data.templates == t])) for t in tids])
    tf /= np.linalg.norm(tf, axis=1, keepdims=True)
    pos = {t: i for i, t in enumerate(tids)}
    sc = np.array([tf[pos[a]] @ tf[pos[b]] for a, b in zip(data.t1, data.t2)])
    np.testing.assert_allclose(res["scores"], sc, atol=1e-5)
    for rule in ("nearest", "strict"):
        expect = roc_tar_at_far(sc, data.labels, ijb.FARS, rule)
        assert res["tar"][rule] == pytest.approx(expect, abs=1e-12)
    assert 0 < res["tar"]["strict"][1e-3] < 1  # a non-trivial operating point


def test_cli_record_keys_and_curve(tmp_path):
    _small_ijb(tmp_path)
    from arface_repro.cli import main

    out = tmp_path / "rec.json"
    rc = main(["evaluate", "--protocol", "ijbc", "--features", str(tmp_path / "ijbc_features.npz"),
               "--data-root", str(tmp_path), "--out", str(out), "--quiet", "--rule", "strict", "--label", "synthetic"])
    assert rc == 0
    rec = json.loads(out.read_text())
    assert list(rec["metrics"]) == [f"TAR@FAR=1e-{k}" for k in range(6, 0, -1)]
    assert rec["rule"] == "strict" and rec["metrics_other_rule"]["rule"] == "nearest"
    assert rec["model"] == "synthetic" and rec["inputs"]["face_tid_mid"]["sha256"]
    roc = rec["curves"]["roc"]
    assert len(roc["fpr"]) == len(roc["tpr"]) > 10 and roc["fpr"][-1] == 1.0
    assert all(0 <= v <= 100 for v in rec["metrics"].values())


def test_unknown_template_and_bad_lines(tmp_path):
    meta = tmp_path / "meta"
    meta.mkdir()
    (meta / "ijbb_face_tid_mid.txt").write_text("1.jpg 1 10\n2.jpg 1 10\n3.jpg 2 11\n")
    (meta / "ijbb_template_pair_label.txt").write_text("1 2 0\n1 99 0\n")
    f = np.ones((3, 4), np.float32)
    m = ijb_meta.load_ijb_meta(meta, "ijbb")
    with pytest.raises(MissingDataError, match=r"template id\(s\) 99"):
        ijb.evaluate_11_arrays(f, None, m, opts=ijb.CombineOptions(flip="none", faceness=False))
    (meta / "ijbb_face_tid_mid.txt").write_text("1.jpg 1 10\n2.jpg 1\n")
    with pytest.raises(FormatError, match=r"ijbb_face_tid_mid.txt:2: expected 3 fields"):
        ijb_meta.load_ijb_meta(meta, "ijbb")
    (meta / "ijbb_face_tid_mid.txt").write_text("1.jpg 1 10\n2.jpg x 10\n")
    with pytest.raises(FormatError, match=r":2: field 2 should be an integer"):
        ijb_meta.load_ijb_meta(meta, "ijbb")
    (meta / "ijbb_face_tid_mid.txt").write_text("1.jpg 1 10\n")
    (meta / "ijbb_template_pair_label.txt").write_text("1 1 2\n")
    with pytest.raises(FormatError, match="label must be 0 or 1"):
        ijb_meta.load_ijb_meta(meta, "ijbb")
    with pytest.raises(MissingDataError, match="ijbc_face_tid_mid.txt"):
        ijb_meta.load_ijb_meta(meta, "ijbc")


def test_store_missing_image_is_named(tmp_path):
    from arface_repro.io.feature_store import FeatureStore

    meta = ijb_meta.IJBMeta(np.array(["1.jpg", "2.jpg"]), np.array([1, 1]), np.array([1, 1]), None, None,
                       np.array([1]), np.array([1]), np.array([1]), {})
    store = FeatureStore(np.ones((1, 4), np.float32), ["loose_crop/1.jpg"])
    with pytest.raises(MissingDataError, match="loose_crop/2.jpg"):
        ijb.store_rows(store, meta.images)


def _brute_open_set(pf, gf, p_s, g_s, fpir):
    s = pf @ gf.T
    mate = np.array([np.flatnonzero(g_s == x)[0] if (g_s == x).any() else -1 for x in p_s])
    ranks, mated, nm_top = [], [], []
    for i in range(len(p_s)):
        if mate[i] >= 0:
            order = np.argsort(-s[i], kind="stable")
            ranks.append(int(np.flatnonzero(order == mate[i])[0]) + 1)
            mated.append(s[i, mate[i]])
        else:
            nm_top.append(s[i].max())
    ranks, mated, nm_top = np.array(ranks), np.array(mated), np.sort(nm_top)[::-1]
    k = int(np.floor(fpir * nm_top.size + 1e-9))
    v = nm_top[k] if k < nm_top.size else -np.inf
    return np.mean(ranks <= 1), np.mean(ranks <= 5), np.mean((ranks == 1) & (mated > v))


def test_1n_open_set_and_insightface_against_brute_force(tmp_path):
    data, f, g = _small_ijb(tmp_path, scale=0.004)
    meta = ijb_meta.load_ijb_meta(tmp_path / "meta", "ijbc", need_pairs=False)
    gal, probes, _ = ijb_1n.load_1n_lists(tmp_path / "meta", "ijbc")
    res = ijb_1n.evaluate_1n(f, g, meta, gal, probes, rule="open-set", max_memory_gb=1e-4)
    tids, tf = ijb.template_features(f, g, meta.faceness, meta.templates, meta.medias)
    pf = tf[np.searchsorted(tids, probes[0])]
    for name, (gt, gs) in gal.items():
        r1, r5, tpir = _brute_open_set(pf, tf[np.searchsorted(tids, gt)], probes[1], gs, 0.1)
        per = res["per_gallery"][name]
        assert per["Rank-1"] == pytest.approx(r1) and per["Rank-5"] == pytest.approx(r5)
        assert per["TPIR@FPIR=1e-1"] == pytest.approx(tpir)
        assert per["n_nonmated"] > 0 and per["n_mated"] > 0
    assert res["metrics"]["Rank-1"] == pytest.approx(np.mean([res["per_gallery"][g]["Rank-1"] for g in gal]))
    # insightface variant: G1 ∪ G2, threshold from all non-mated scores, k = ceil(Q * far)
    ins = ijb_1n.evaluate_1n(f, g, meta, gal, probes, rule="insightface")["metrics"]
    gt = np.concatenate([gal["G1"][0], gal["G2"][0]])
    gs = np.concatenate([gal["G1"][1], gal["G2"][1]])
    s = pf @ tf[np.searchsorted(tids, gt)].T
    mask = np.array([np.flatnonzero(gs == x)[0] for x in probes[1]])
    top1 = np.mean(np.argsort(-s, axis=1, kind="stable")[:, 0] == mask)
    pos = s[np.arange(len(mask)), mask].copy()
    s[np.arange(len(mask)), mask] = -2.0
    neg = np.sort(s[s > -2.0])[::-1]
    th = neg[int(np.ceil(len(mask) * 0.01)) - 1]
    assert ins["Rank-1"] == pytest.approx(top1)
    assert ins["TPIR@FPIR=1e-2"] == pytest.approx(np.sum(pos > th) / len(mask))


def test_1n_csv_errors(tmp_path):
    from arface_repro.eval.ijb.meta import read_1n_csv

    p = tmp_path / "x_1N_gallery_G1.csv"
    p.write_text("TEMPLATE_ID,SUBJECT_ID,FILENAME\n1,5,a.jpg\n1,6,b.jpg\n")
    with pytest.raises(FormatError, match="template 1 has rows with different subjects"):
        read_1n_csv(p)
    p.write_text("SUBJECT_ID,TEMPLATE_ID\n1,5\n")
    with pytest.raises(FormatError, match="header"):
        read_1n_csv(p)


def test_compiled_pooling_equals_the_numpy_path():
    """float32 features take the compiled pooling pass, float64 ones (same values) the chunked numpy path: the
    same float32 operations in the same order, so the same bits, with and without flip and faceness."""
    rng = np.random.default_rng(5)
    n = 3000
    templates = np.sort(rng.integers(0, 300, n))
    medias = templates * 10 + rng.integers(0, 4, n)
    f = (rng.standard_normal((n, 37)) * rng.uniform(1, 30, (n, 1))).astype(np.float32)
    g = (f + rng.standard_normal((n, 37)).astype(np.float32)).astype(np.float32)
    faceness = rng.uniform(0.2, 1.0, n).astype(np.float32)
    perm = rng.permutation(n)                       # images listed in any order, rows anywhere in the store
    rows = np.argsort(perm)
    fs, gs = f[perm], g[perm]
    for opts in (ijb.CombineOptions(), ijb.CombineOptions(flip="none"), ijb.CombineOptions(faceness=False)):
        t32, a = ijb.template_features(fs, gs, faceness, templates, medias, opts, rows=rows)
        t64, b = ijb.template_features(fs.astype(np.float64), gs.astype(np.float64), faceness, templates, medias, opts,
                                       max_memory_gb=1e-4, rows=rows)
        np.testing.assert_array_equal(t32, t64)
        np.testing.assert_array_equal(a.view(np.int64), b.view(np.int64))


def test_sklearn_normalisation_written_out_equals_sklearn():
    from sklearn.preprocessing import normalize

    rng = np.random.default_rng(6)
    x = rng.standard_normal((500, 64)) * 10.0 ** rng.uniform(-8, 8, (500, 1))
    x[3] = 1e-17   # a norm below 10 eps: sklearn leaves the row as it is
    np.testing.assert_array_equal(ijb.normalize_templates(x.copy(), "sklearn"), normalize(x.copy()))


@pytest.mark.parametrize("norm", ijb.TEMPLATE_NORMS)
def test_normalisation_in_place_gives_the_same_bits(norm):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((300, 512)) * 10.0 ** rng.uniform(-8, 8, (300, 1))
    ref = ijb.normalize_templates(x, norm)
    y = x.copy()
    got = ijb.normalize_templates(y, norm, out=y)
    assert got is y
    np.testing.assert_array_equal(got.view(np.int64), ref.view(np.int64))
