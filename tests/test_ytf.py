"""YTF: the real splits file, pooling variants, 10-fold accuracy with folds = splits; RMFRD protocol."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require

from arface_repro.errors import FormatError, MissingDataError
from arface_repro.eval.kfold import kfold_accuracy
from arface_repro.eval.rmfrd import metric as rmfrd
from arface_repro.eval.ytf import metric as ytf
from arface_repro.eval.ytf import splits as ytf_splits
from arface_repro.io.feature_store import FeatureStore


def test_shared_splits(shared):
    pairs = ytf_splits.read_splits(require(shared / "data/ytf/splits.txt"))
    assert len(pairs.video1) == 5000 and pairs.issame.sum() == 2500
    assert np.bincount(pairs.split).tolist() == [0] + [500] * 10
    assert (pairs.split[0], pairs.video1[0], pairs.video2[0], bool(pairs.issame[0])) == (1, "Sadie_Frost/1", "Sadie_Frost/5", True)
    assert (pairs.video1[-1], pairs.video2[-1], bool(pairs.issame[-1])) == ("Ben_Curtis/0", "Hank_Stram/4", False)


def test_header_line_and_errors(tmp_path):
    p = tmp_path / "splits.txt"
    p.write_text("split number, pair number, first name, second name, is same\n1, 1, A/0, A/1, 1\n1, 2, A/0, B/3, 0\n")
    pairs = ytf_splits.read_splits(p)
    assert pairs.video2 == ["A/1", "B/3"] and pairs.issame.tolist() == [True, False]
    p.write_text("1, 1, A/0, A/1, 2\n")
    with pytest.raises(FormatError, match=r"splits.txt:1: last field"):
        ytf_splits.read_splits(p)
    p.write_text("1, 1, A/0, A1, 1\n")
    with pytest.raises(FormatError, match="not 'Person/videoIdx'"):
        ytf_splits.read_splits(p)


def _store(pairs, seed=0, dim=16, sigma=2.5):
    rng = np.random.default_rng(seed)
    vids = sorted(set(pairs.video1) | set(pairs.video2))
    centre = {}
    paths, feats = [], []
    for v in vids:
        c = centre.setdefault(v.split("/")[0], rng.standard_normal(dim))
        for k in range(int(rng.integers(2, 6))):
            paths.append(f"{v}/aligned_detect_{k}.{rng.integers(100)}.jpg")
            feats.append(c + sigma * rng.standard_normal(dim))
    return FeatureStore(np.asarray(feats, np.float32), paths)


def _toy_pairs(n=200, seed=1):
    rng = np.random.default_rng(seed)
    people = [f"P{i}" for i in range(30)]
    v1, v2, same = [], [], []
    for i in range(n):
        a = people[rng.integers(30)]
        if i % 2 == 0:
            v1.append(f"{a}/0"), v2.append(f"{a}/{rng.integers(1, 4)}"), same.append(True)
        else:
            b = people[(people.index(a) + 1 + rng.integers(29)) % 30]
            v1.append(f"{a}/{rng.integers(4)}"), v2.append(f"{b}/{rng.integers(4)}"), same.append(False)
    return ytf_splits.YTFPairs(np.repeat(np.arange(1, 11), n // 10), v1, v2, np.array(same), "<toy>")


def test_pooling_variants_against_direct():
    pairs = _toy_pairs()
    store = _store(pairs)
    rows = ytf.video_rows(store.paths)

    def frames(v):
        f = store.features[rows[v]].astype(np.float64)
        return f / np.linalg.norm(f, axis=1, keepdims=True)

    i = 3
    a, b = frames(pairs.video1[i]), frames(pairs.video2[i])
    va, vb = a.mean(0) / np.linalg.norm(a.mean(0)), b.mean(0) / np.linalg.norm(b.mean(0))
    d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    assert ytf.pair_distances(store, pairs, "mean")[i] == pytest.approx(((va - vb) ** 2).sum())
    assert ytf.pair_distances(store, pairs, "min-dist")[i] == pytest.approx(d.min())
    assert ytf.pair_distances(store, pairs, "mean-dist")[i] == pytest.approx(d.mean())
    assert ytf.pair_distances(store, pairs, "max-dist")[i] == pytest.approx(d.max())
    # every frame of a video is found, and only those
    assert sum(len(r) for r in rows.values()) == len(store)


def test_ten_fold_uses_splits_as_folds():
    pairs = _toy_pairs()
    store = _store(pairs)
    res = ytf.evaluate(store, pairs, "mean")
    direct = kfold_accuracy(ytf.pair_distances(store, pairs, "mean"), pairs.issame, pairs.split)
    assert res["per_fold"] == direct.accuracy.tolist() and res["accuracy"] == pytest.approx(direct.mean)
    assert 0.6 < res["accuracy"] < 1.0


def test_missing_video_is_named():
    pairs = _toy_pairs()
    store = _store(ytf_splits.YTFPairs(pairs.split[:2], pairs.video1[:2], pairs.video2[:2], pairs.issame[:2], "x"))
    with pytest.raises(MissingDataError, match="no frames for"):
        ytf.pair_distances(store, pairs)


def _rmfrd_store(seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((25, 16))
    paths, feats = [], []
    for i in range(25):
        for k in range(int(rng.integers(1, 4))):
            paths.append(f"RMFRD/AFDB_masked_face_dataset/p{i}/m{k}.jpg")
            feats.append(c[i] + 1.1 * rng.standard_normal(16))
        for k in range(int(rng.integers(2, 8))):
            paths.append(f"RMFRD/AFDB_face_dataset/p{i}/u{k}.jpg")
            feats.append(c[i] + 0.7 * rng.standard_normal(16))
    paths.append("RMFRD/AFDB_face_dataset/only_unmasked/u.jpg")
    feats.append(rng.standard_normal(16))
    return FeatureStore(np.asarray(feats, np.float32), paths)


def test_rmfrd_against_direct():
    store = _rmfrd_store()
    res = rmfrd.evaluate(store, flip="none", max_memory_gb=1e-5)
    m_rows, m_ids, u_rows, u_ids, dropped = rmfrd.split_store(store.paths)
    assert dropped == 1
    f = store.features / np.linalg.norm(store.features, axis=1, keepdims=True)
    s = f[m_rows] @ f[u_rows].T
    same = m_ids[:, None] == u_ids[None, :]
    imp = np.sort(s[~same])[::-1]
    for far, tar in res["tar"].items():
        k = int(np.floor(far * imp.size + 1e-9))
        assert tar == pytest.approx(np.mean(s[same] > imp[k]))
    assert res["rank1_nn"] == pytest.approx(np.mean(u_ids[np.argmax(s, axis=1)] == m_ids))
    ug = np.unique(u_ids)
    t = np.stack([f[u_rows][u_ids == g].mean(0) for g in ug])
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    assert res["rank1"] == pytest.approx(np.mean(ug[np.argmax(f[m_rows] @ t.T, axis=1)] == m_ids))
    assert set(rmfrd.metrics_from(res)) == {"TAR@FAR=1e-3", "TAR@FAR=1e-4", "Rank-1", "Rank-1-NN"}


def test_rmfrd_needs_both_folders():
    store = FeatureStore(np.ones((2, 4), np.float32), ["AFDB_face_dataset/a/1.jpg", "AFDB_face_dataset/b/1.jpg"])
    with pytest.raises(MissingDataError, match="0 masked"):
        rmfrd.evaluate(store, flip="none")


def test_cli_ytf_and_rmfrd(tmp_path):
    import json

    from arface_repro.cli import main
    from arface_repro.io.feature_store import save_feature_store

    pairs = _toy_pairs()
    st = _store(pairs)
    save_feature_store(tmp_path / "ytf.npz", st.features, st.paths)
    p = tmp_path / "splits.txt"
    p.write_text("".join(f"{s}, {k + 1}, {a}, {b}, {int(y)}\n" for k, (s, a, b, y) in
                         enumerate(zip(pairs.split, pairs.video1, pairs.video2, pairs.issame))))
    out = tmp_path / "ytf.json"
    assert main(["evaluate", "--protocol", "ytf", "--features", str(tmp_path / "ytf.npz"), "--pairs", str(p),
                 "--pooling", "max-dist", "--out", str(out), "--quiet"]) == 0
    rec = json.loads(out.read_text())
    assert rec["metrics"]["YTF"] == pytest.approx(100 * ytf.evaluate(st, pairs, "max-dist")["accuracy"])
    assert len(rec["per_fold"]["YTF"]) == 10 and rec["rule"] == "insightface" and rec["pooling"] == "max-dist"
    rs = _rmfrd_store()
    save_feature_store(tmp_path / "rm.npz", rs.features, rs.paths)
    out = tmp_path / "rm.json"
    assert main(["evaluate", "--protocol", "rmfrd", "--features", str(tmp_path / "rm.npz"), "--out", str(out), "--quiet"]) == 0
    rec = json.loads(out.read_text())
    assert rec["rule"] == rmfrd.PROTOCOL_LABEL
    assert rec["metrics"] == pytest.approx(rmfrd.metrics_from(rmfrd.evaluate(rs, flip="none")))
