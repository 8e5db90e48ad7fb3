"""Trillion-Pairs: feature-matrix format, streaming top-k = full sort, protocol against brute force."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from arface_repro.errors import FormatError
from arface_repro.eval.chunked import TopK, l2n, make_backend, strict_k
from arface_repro.eval.topk_scan import scan_top
from arface_repro.eval.trillion import metric as tp
from arface_repro.eval.trillion import reader as tpio


def test_matrix_round_trip_and_mmap(tmp_path):
    x = np.random.default_rng(0).standard_normal((1000, 24)).astype(np.float32)
    p = tpio.write_features(tmp_path / "f.bin", x, chunk_rows=128)
    assert struct.unpack("<4i", p.read_bytes()[:16]) == (1000, 24, 96, 5)
    m = tpio.read_features(p)
    assert isinstance(m, np.memmap)
    np.testing.assert_array_equal(np.asarray(m), x)
    np.testing.assert_array_equal(tpio.read_features(p, mmap=False), x)


@pytest.mark.parametrize("header,size_delta,msg", [
    ((10, 4, 12, 5), 0, "expected \\(rows, cols, cols\\*4, 5\\)"),
    ((10, 4, 16, 6), 0, "expected \\(rows, cols, cols\\*4, 5\\)"),
    ((10, 4, 16, 5), -4, "needs 176"),
])
def test_matrix_bad_header(tmp_path, header, size_delta, msg):
    p = tmp_path / "bad.bin"
    p.write_bytes(struct.pack("<4i", *header) + b"\0" * (10 * 4 * 4 + size_delta))
    with pytest.raises(FormatError, match=msg):
        tpio.read_header(p)


def test_labels(tmp_path):
    p = tmp_path / "l.txt"
    p.write_text("a.jpg 3\nb.jpg 3\n7\n")
    assert tpio.read_labels(p).tolist() == ["3", "3", "7"]
    with pytest.raises(FormatError, match="3 labels for 4 feature rows"):
        tpio.read_labels(p, expected_rows=4)


def test_streaming_topk_equals_full_sort():
    rng = np.random.default_rng(0)
    stream = np.round(rng.standard_normal(200_000), 2).astype(np.float32)  # many ties
    top = TopK(777)
    for s in range(0, stream.size, 9999):
        blk = stream[s:s + 9999]
        top.push(blk[blk > top.tau], n_seen=blk.size)
    np.testing.assert_array_equal(top.values(), np.sort(stream)[::-1][:777])
    assert top.seen == stream.size


# Two GEMMs of float32 16-d unit vectors (numpy's and torch's, or one BLAS at two block shapes) differ by a few
# ulp (1.2e-7 seen between torch and numpy); scores within GEMM_EPS are the same score to every metric here.
# Comparisons of scores between two such paths use this tolerance; decisions use the brackets below.
GEMM_EPS = 1e-5


@pytest.mark.parametrize("device", ["cpu", "torch-cpu"])
def test_scan_top_rows_snapshots_and_global(device):
    """Per-row top-k snapshots at nested sizes and the global top-k, as full sorts of the whole matrix give.

    The scan's GEMM (blocked, numpy or torch) and the reference's (one numpy GEMM) are different numeric paths,
    so the sorted values are compared within GEMM_EPS (sorting moves no value by more than the scores moved);
    the -inf padding of short snapshots is exact."""
    rng = np.random.default_rng(1)
    p = l2n(rng.standard_normal((50, 8)).astype(np.float32))
    d = l2n(np.round(rng.standard_normal((5000, 8)), 1).astype(np.float32))  # ties
    full = p @ d.T
    res = scan_top(p, lambda a, b: d[a:b], 5000, k_row=10, snapshots=[7, 300, 2000], k_global=123, global_end=2000,
                   backend=make_backend(device), max_memory_gb=2e-5, threads=2)
    for s in (7, 300, 2000, 5000):
        ref = -np.sort(-full[:, :s], axis=1)[:, :10]
        if s < 10:
            ref = np.concatenate([ref, np.full((50, 10 - s), -np.inf, np.float32)], axis=1)
        assert res.row_top[s].shape == ref.shape
        np.testing.assert_array_equal(np.isinf(res.row_top[s]), np.isinf(ref))
        np.testing.assert_allclose(res.row_top[s], ref, rtol=0, atol=GEMM_EPS)
    np.testing.assert_allclose(res.global_top, np.sort(full[:, :2000].ravel())[::-1][:123], rtol=0, atol=GEMM_EPS)


def brute_force(probes, probe_ids, distractors, ver_fpr, id_fpr, margin=0.0):
    """Full score matrices and full sorts (small inputs only). `margin` > 0 counts a decision only when it
    holds by more than `margin` (the low end of what scores moved by up to margin/2 can give); < 0 also
    counts those that fail by less (the high end)."""
    p, d = l2n(probes), l2n(distractors)
    ids = np.asarray(probe_ids)
    pp = p @ p.T
    iu = np.triu_indices(p.shape[0], 1)
    same = ids[iu[0]] == ids[iu[1]]
    gen = pp[iu][same]
    imp = np.concatenate([(p @ d.T).ravel(), pp[iu][~same]])
    imp_sorted = -np.sort(-imp)
    k = strict_k(ver_fpr, imp.size)
    ver = float(np.mean(gen > imp_sorted[k] + margin)) if k < imp.size else 1.0
    enrolled, queries, own = tp.enrolment(ids)
    gal = np.vstack([p[enrolled], d])
    s = p[queries] @ gal.T
    r = np.arange(queries.size)
    mated = s[r, own]
    s[r, own] = -np.inf
    nonm = s.max(axis=1)
    k2 = strict_k(id_fpr, queries.size)
    v = -np.sort(-nonm)[k2] if k2 < queries.size else -np.inf
    return {"ver": ver, "id": float(np.mean((mated > v + margin) & (mated > nonm + margin))), "imp_sorted": imp_sorted,
            "gen": gen}


def _data(seed=0, n=400, m=6000, sigma=0.6):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 40, n)
    c = rng.standard_normal((40, 16))
    p = (c[ids] + sigma * rng.standard_normal((n, 16))).astype(np.float32)
    d = rng.standard_normal((m, 16)).astype(np.float32)
    return p, ids, d


@pytest.mark.parametrize("device", ["cpu", "torch-cpu"])
@pytest.mark.parametrize("ver_fpr,id_fpr", [(1e-6, 1e-2), (1e-4, 0.1), (0.01, 0.3)])
def test_protocol_matches_brute_force(device, ver_fpr, id_fpr):
    p, ids, d = _data()
    res = tp.evaluate(p, ids, d, ver_fpr=ver_fpr, id_fpr=id_fpr, max_memory_gb=1e-4, backend=make_backend(device))
    ref = brute_force(p, ids, d, ver_fpr, id_fpr)
    # the protocol's GEMMs and the reference's differ by a few ulp: a score, a threshold (an order statistic)
    # and a best non-mated score (a max) each move by at most GEMM_EPS, so each rate lies between the rates
    # of the decisions that hold by 2·GEMM_EPS and of those that fail by less; data without near-ties
    # collapse the bracket to the exact rate
    lo = brute_force(p, ids, d, ver_fpr, id_fpr, margin=2 * GEMM_EPS)
    hi = brute_force(p, ids, d, ver_fpr, id_fpr, margin=-2 * GEMM_EPS)
    decisions = {"ver": ref["gen"].size, "id": tp.enrolment(np.asarray(ids))[1].size}
    for key, n in decisions.items():
        assert lo[key] - 1e-12 <= res[key] <= hi[key] + 1e-12, (key, lo[key], res[key], ref[key], hi[key])
        assert lo[key] <= ref[key] <= hi[key]
        assert (hi[key] - lo[key]) * n < 1.5  # at most one fragile decision: the bracket hides no error
    assert res["n_genuine"] == ref["gen"].size and res["n_impostor"] == ref["imp_sorted"].size


def test_protocol_is_nontrivial_and_keys():
    p, ids, d = _data(sigma=0.5)
    res = tp.evaluate(p, ids, d, ver_fpr=1e-5, id_fpr=1e-2)
    assert 0 < res["ver"] < 1 and 0 < res["id"] < 1
    assert set(tp.metrics_from(res)) == {"Ver@FPR=1e-5", "Id@FPR=1e-2"}
    assert set(tp.metrics_from(tp.evaluate(p, ids, d))) == {"Ver@FPR=1e-9", "Id@FPR=1e-3"}


def test_enrolment_rule():
    enrolled, queries, own = tp.enrolment(np.array(["a", "b", "a", "c", "a", "b"]))
    assert enrolled.tolist() == [0, 1] and queries.tolist() == [2, 4, 5] and own.tolist() == [0, 0, 1]


def test_mismatched_inputs():
    p, ids, d = _data()
    with pytest.raises(FormatError, match="probe labels"):
        tp.evaluate(p, ids[:-1], d)
    with pytest.raises(FormatError, match="dimension"):
        tp.evaluate(p, ids, d[:, :8])


def test_cli_record(tmp_path):
    import json

    from arface_repro.cli import main

    p, ids, d = _data(sigma=0.5)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    tpio.write_features(tmp_path / "probe.bin", p)
    tpio.write_features(tmp_path / "dis.bin", d)
    (tmp_path / "labels.txt").write_text("".join(f"img{k}.jpg {i}\n" for k, i in enumerate(ids)))
    out = tmp_path / "rec.json"
    assert main(["evaluate", "--protocol", "trillion", "--features", str(tmp_path / "probe.bin"),
                 "--probe-labels", str(tmp_path / "labels.txt"), "--distractor-features", str(tmp_path / "dis.bin"),
                 "--out", str(out), "--quiet"]) == 0
    rec = json.loads(out.read_text())
    ref = brute_force(p, ids.astype(str), d, 1e-9, 1e-3)
    assert rec["metrics"] == pytest.approx({"Ver@FPR=1e-9": 100 * ref["ver"], "Id@FPR=1e-3": 100 * ref["id"]})
    (tmp_path / "labels.txt").write_text("a\n")
    assert main(["evaluate", "--protocol", "trillion", "--features", str(tmp_path / "probe.bin"),
                 "--probe-labels", str(tmp_path / "labels.txt"), "--distractor-features", str(tmp_path / "dis.bin"),
                 "--out", str(out), "--quiet"]) == 2  # clear error, exit status 2
