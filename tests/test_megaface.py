"""MegaFace: devkit files and lists, noise lists, CMC against brute force, verification, noise rules."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from conftest import require

from arface_repro.errors import FormatError, MissingDataError
from arface_repro.eval.chunked import l2n, make_backend, strict_k
from arface_repro.eval.megaface import devkit as dk
from arface_repro.eval.megaface import metric as mf


def test_feature_file_round_trip_and_header(tmp_path):
    v = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    p = dk.write_feature_file(tmp_path / dk.feature_file_name("A/A_1.png", "r100"), v)
    assert p.name == "A_1.png_r100.bin"
    raw = p.read_bytes()
    assert struct.unpack("<4i", raw[:16]) == (512, 1, 4, 5) and len(raw) == 16 + 4 * 512
    np.testing.assert_array_equal(dk.read_feature_file(p), v)
    m = dk.read_feature_files(tmp_path, ["A/A_1.png"], "r100")
    assert m.shape == (1, 512)


@pytest.mark.parametrize("header,extra,msg", [
    ((512, 1, 4, 6), 0, "expected \\(dim, 1, 4, 5\\)"),
    ((512, 2, 4, 5), 0, "expected \\(dim, 1, 4, 5\\)"),
    ((512, 1, 4, 5), 4, "header says 512 float32"),
])
def test_feature_file_bad_header(tmp_path, header, extra, msg):
    p = tmp_path / "x.jpg_a.bin"
    p.write_bytes(struct.pack("<4i", *header) + b"\0" * (4 * 512 + extra))
    with pytest.raises(FormatError, match=msg):
        dk.read_feature_file(p)
    with pytest.raises(MissingDataError):
        dk.read_feature_file(tmp_path / "absent.bin")


def test_lists_round_trip_and_errors(tmp_path):
    dk.write_facescrub_list(tmp_path / "fs.json", ["A", "B"], ["A/A_1.png", "B/B_3.png"])
    assert dk.read_facescrub_list(tmp_path / "fs.json") == (["A", "B"], ["A/A_1.png", "B/B_3.png"])
    dk.write_megaface_list(tmp_path / "mf.json_10_1", ["1/x@N00/1_0.jpg"])
    assert dk.read_megaface_list(tmp_path / "mf.json_10_1") == ["1/x@N00/1_0.jpg"]
    (tmp_path / "bad.json").write_text('{"paths": []}')
    with pytest.raises(FormatError, match="'path' list"):
        dk.read_megaface_list(tmp_path / "bad.json")


def test_shared_noise_lists(shared):
    fs = dk.read_noise_list(require(shared / "data/megaface/facescrub_noises.txt"))
    md = dk.read_noise_list(require(shared / "data/megaface/megaface_noises.txt"))
    assert len(fs) == 605 and fs[0] == "Aaron_Eckhart_136.png"
    assert len(md) == 719 and md[0] == "375/37531198@N00/4174611825_0.jpg"
    mask = dk.noise_mask(["Aaron_Eckhart/Aaron_Eckhart_136.png", "Aaron_Eckhart/Aaron_Eckhart_1.png"], fs, by_basename=True)
    assert mask.tolist() == [True, False]


def brute_force_cmc(probe_feats, probe_ids, distractors, max_rank=10, ties="against", margin=0.0):
    """Every gallery built explicitly (image i + all distractors), the rank of the mate read from it.
    `margin` shifts the mated score before the comparison: with ±2·GEMM_EPS it gives the two ends of what
    scores moved by up to GEMM_EPS (another GEMM) can give."""
    pf, dis = l2n(probe_feats), l2n(distractors)
    ids = np.asarray(probe_ids)
    hits = np.zeros(max_rank, np.int64)
    total = 0
    for ident in np.unique(ids):
        m = np.flatnonzero(ids == ident)
        intra = pf[m] @ pf[m].T
        for a, i in enumerate(m):
            for b, j in enumerate(m):
                if i == j:
                    continue
                mated = intra[a, b]
                sc = (pf[j:j + 1] @ dis.T)[0] if len(dis) > 1 else dis @ pf[j]
                above = (sc >= mated + margin).sum() if ties == "against" else (sc > mated + margin).sum()
                total += 1
                for r in range(max_rank):
                    hits[r] += 1 + int(above) <= r + 1
    return (hits / total).tolist()


def _data(seed=1, n_dis=400):
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(7), [3, 4, 2, 5, 1, 3, 6])
    c = rng.standard_normal((7, 16))
    p = (c[ids] + 0.9 * rng.standard_normal((ids.size, 16))).astype(np.float32)
    d = rng.standard_normal((n_dis, 16)).astype(np.float32) * rng.uniform(0.5, 3, (n_dis, 1)).astype(np.float32)
    return p, ids, d


# Two GEMMs of float32 16-d unit vectors (the protocol's blocked numpy or torch GEMM, the reference's
# row-by-row products) differ by a few ulp; scores within GEMM_EPS are the same score to the metric.
GEMM_EPS = 1e-5


@pytest.mark.parametrize("device", ["cpu", "torch-cpu"])
def test_cmc_matches_brute_force_for_every_set(device):
    """The CMC of every set lies between the brute-force CMCs with the mated score moved by ∓2·GEMM_EPS (the
    protocol's GEMM is another numeric path than the reference's); that bracket is at most one comparison
    wide, so it hides no error. The tie rules on exact ties: test_ties_rules."""
    p, ids, d = _data()
    sets = {10: np.arange(10), 100: np.arange(100), 400: np.arange(400), 37: np.arange(0, 370, 10)}
    n_pairs = sum(k * (k - 1) for k in np.unique(ids, return_counts=True)[1])
    for rule, ties in (("facex-zoo", "for"), ("ties-against", "against")):
        res = mf.evaluate(p, ids, d, sets=sets, noise_rule="none", max_memory_gb=2e-5, backend=make_backend(device),
                          rule=rule)
        for size, idx in sets.items():
            lo = np.array(brute_force_cmc(p, ids, d[idx], ties=ties, margin=-2 * GEMM_EPS))
            hi = np.array(brute_force_cmc(p, ids, d[idx], ties=ties, margin=2 * GEMM_EPS))
            got = np.array(res["cmc"][size])
            assert ((lo - 1e-12 <= got) & (got <= hi + 1e-12)).all(), (size, rule, lo, got, hi)
            assert ((hi - lo) * n_pairs < 1.5).all()
    assert res["passes"] == 2  # 10 ⊂ 100 ⊂ 400 share one pass; the strided set of 37 gets its own
    assert 0 < res["cmc"][400][0] < res["cmc"][400][9] < 1  # non-trivial curve
    assert res["n_ordered_pairs"] == sum(k * (k - 1) for k in [3, 4, 2, 5, 3, 6])


def test_ties_rules():
    # probe identity of 2 identical images; one distractor equal to them -> the mated score ties with it
    p = np.array([[1, 0], [1, 0]], np.float32)
    d = np.array([[2, 0], [0, 1], [0, -1]], np.float32)
    res = mf.evaluate(p, [0, 0], d, sets={3: np.arange(3)}, noise_rule="none", far=0.5, rule="ties-against")
    assert res["cmc"][3][:2] == [0.0, 1.0]
    res = mf.evaluate(p, [0, 0], d, sets={3: np.arange(3)}, noise_rule="none", far=0.5)  # FaceX-Zoo: >= wins
    assert res["cmc"][3][:2] == [1.0, 1.0]


def test_verification_matches_full_sort():
    p, ids, d = _data(seed=2, n_dis=3000)
    far = 1e-3
    res = mf.evaluate(p, ids, d, noise_rule="none", far=far, max_memory_gb=2e-5, sets={3000: np.arange(3000)})
    pn, dn = l2n(p), l2n(d)
    imp = np.sort((pn @ dn.T).ravel())[::-1]
    gen = np.concatenate([(pn[ids == i] @ pn[ids == i].T)[np.triu_indices((ids == i).sum(), 1)] for i in np.unique(ids)])
    k = strict_k(far, imp.size)
    # blocked GEMM against one GEMM: the rate lies between those of the decisions that hold by 2·GEMM_EPS
    # and of those that fail by less (the threshold is an order statistic: it moves no more than the scores)
    lo, hi = np.mean(gen > imp[k] + 2 * GEMM_EPS), np.mean(gen > imp[k] - 2 * GEMM_EPS)
    assert lo - 1e-12 <= res["ver"] <= hi + 1e-12 and (hi - lo) * gen.size < 1.5
    assert res["n_impostor"] == imp.size and res["n_genuine"] == gen.size
    assert 0 < res["ver"] < 1


def test_noise_rules():
    p, ids, d = _data(seed=3)
    pnoise = np.zeros(ids.size, bool)
    pnoise[[0, 5]] = True  # one image of identity 0 and one of identity 1
    dnoise = np.zeros(d.shape[0], bool)
    dnoise[:50] = True
    f, _, _ = mf.clean_probes(p, ids, pnoise, "insightface")
    pn = l2n(p)
    c = pn[1] + pn[2]
    np.testing.assert_array_equal(f[0], c / np.linalg.norm(c))
    ins = mf.evaluate(p, ids, d, sets={400: np.arange(400)}, probe_noise=pnoise, distractor_noise=dnoise, noise_rule="insightface")
    exc = mf.evaluate(p, ids, d, sets={400: np.arange(400)}, probe_noise=pnoise, distractor_noise=dnoise, noise_rule="exclude")
    # the noisy FaceScrub image becomes its identity's normalised float32 sum of clean features
    # insightface: noisy distractors cannot rank but still count as impostors; exclude: removed
    assert ins["n_impostor"] == ids.size * 400 and exc["n_impostor"] == (ids.size - 2) * 350
    assert exc["cmc"][400] == pytest.approx(brute_force_cmc(p[~pnoise], ids[~pnoise], d[50:], ties="for"))
    ref = brute_force_cmc(np.vstack([f]), ids, d[50:], ties="for")  # pushed-out distractors never beat a mate
    assert ins["cmc"][400] == pytest.approx(ref)
    with pytest.raises(FormatError, match="every image is in the noise list"):
        mf.clean_probes(p, ids, ids == 2, "insightface")


def test_metric_keys():
    p, ids, d = _data()
    res = mf.evaluate(p, ids, d, sets={10: np.arange(10), 400: np.arange(400)}, noise_rule="none")
    m = mf.metrics_from(res)
    assert set(m) == {"Id@400", "Id@1e1", "Ver@FAR=1e-6"}
    assert m["Id@1e1"] == pytest.approx(100 * res["cmc"][10][0])


def test_cli_from_devkit_files(tmp_path):
    import json

    from arface_repro.cli import main

    p, ids, d = _data(seed=4, n_dis=300)
    names = [f"Id{i}" for i in ids]
    fs_paths = [f"Id{i}/Id{i}_{k}.png" for k, i in enumerate(ids)]
    md_paths = [f"{k // 100}/u{k}@N00/{k}_0.jpg" for k in range(300)]
    dk.write_feature_files(tmp_path / "fs", fs_paths, p, "algo")
    dk.write_feature_files(tmp_path / "md", md_paths, d, "algo")
    dk.write_facescrub_list(tmp_path / "facescrub_features_list.json", names, fs_paths)
    dk.write_megaface_list(tmp_path / "megaface_features_list.json_1000000_1", md_paths)
    # set lists as the devkit ships them: one file per size (here random, not nested)
    sets_dir = tmp_path / "sets"
    sets_dir.mkdir()
    rng = np.random.default_rng(0)
    pick = {10: np.sort(rng.choice(300, 10, replace=False)), 300: np.arange(300)}
    for s, idx in pick.items():
        dk.write_megaface_list(sets_dir / f"megaface_features_list.json_{s}_1", [md_paths[i] for i in idx])
    noises = tmp_path / "fsn.txt"
    noises.write_text("#comment\n" + fs_paths[0].split("/")[-1] + "\n")
    mdn = tmp_path / "mdn.txt"
    mdn.write_text("#comment\n" + md_paths[5] + "\n")
    out = tmp_path / "rec.json"
    rc = main(["evaluate", "--protocol", "megaface", "--facescrub-dir", str(tmp_path / "fs"), "--megaface-dir",
               str(tmp_path / "md"), "--algo", "algo", "--facescrub-list", str(tmp_path / "facescrub_features_list.json"),
               "--megaface-list", str(tmp_path / "megaface_features_list.json_1000000_1"), "--set-lists", str(sets_dir),
               "--sizes", "10,300", "--noise-rule", "exclude", "--facescrub-noises", str(noises),
               "--megaface-noises", str(mdn), "--out", str(out), "--quiet"])
    assert rc == 0
    rec = json.loads(out.read_text())
    keep = np.ones(len(ids), bool)
    keep[0] = False
    dkeep = np.ones(300, bool)
    dkeep[5] = False
    ref300 = brute_force_cmc(p[keep], ids[keep], d[dkeep])
    ref10 = brute_force_cmc(p[keep], ids[keep], d[pick[10][pick[10] != 5]])
    assert rec["metrics"]["Id@300"] == pytest.approx(100 * ref300[0])
    assert rec["cmc"]["1e1"] == pytest.approx([100 * v for v in ref10])
    assert rec["rule"] == "facex-zoo" and rec["noise"] == "exclude" and rec["noise_counts"] == {"facescrub": 1, "megaface": 1}
    assert "Ver@FAR=1e-6" in rec["metrics"]
