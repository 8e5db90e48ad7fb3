"""The CUDA paths of the chunked protocols (`--device cuda`) against the CPU: float scores within the
documented tolerance; the rates (ranks, counts) of MegaFace and Trillion-Pairs between the brute-force rates
of the decisions moved by ∓2·GEMM_EPS (the CUDA and CPU GEMMs are different numeric paths: a decision
within a few ulp of its threshold may go either way; the bracket is at most one decision wide). Skipped
without CUDA."""

from __future__ import annotations

import numpy as np
import pytest

from arface_repro.eval import large_scale_synthetic as synth

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]


def _probes(seed=0, n=300, m=5000, dim=32):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 30, n)
    c = rng.standard_normal((30, dim))
    p = (c[ids] + 0.7 * rng.standard_normal((n, dim))).astype(np.float32)
    return p, ids, rng.standard_normal((m, dim)).astype(np.float32)


CUDA = "cuda"


def test_megaface_and_trillion_cuda_within_the_tie_bracket():
    from test_megaface import GEMM_EPS, brute_force_cmc
    from test_trillion import brute_force

    from arface_repro.eval.chunked import make_backend
    from arface_repro.eval.megaface import metric as mf
    from arface_repro.eval.trillion import metric as tp

    p, ids, d = _probes()
    sets = {10: np.arange(10), 1000: np.arange(1000), 5000: np.arange(5000)}
    cpu = mf.evaluate(p, ids, d, sets=sets, noise_rule="none", far=1e-4, max_memory_gb=1e-3)
    gpu = mf.evaluate(p, ids, d, sets=sets, noise_rule="none", far=1e-4, max_memory_gb=1e-3, backend=make_backend(CUDA))
    n_pairs = sum(k * (k - 1) for k in np.unique(ids, return_counts=True)[1])
    for size, idx in sets.items():  # facex-zoo: ties count for the probe
        lo = np.array(brute_force_cmc(p, ids, d[idx], ties="for", margin=-2 * GEMM_EPS))
        hi = np.array(brute_force_cmc(p, ids, d[idx], ties="for", margin=2 * GEMM_EPS))
        assert ((hi - lo) * n_pairs < 1.5).all()
        for res in (cpu, gpu):
            got = np.array(res["cmc"][size])
            assert ((lo - 1e-12 <= got) & (got <= hi + 1e-12)).all(), (size, lo, got, hi)
    assert abs(gpu["ver_threshold"] - cpu["ver_threshold"]) < GEMM_EPS
    assert abs(gpu["ver"] - cpu["ver"]) * gpu["n_genuine"] <= 1 + 1e-9
    for backend in (None, make_backend(CUDA)):
        res = tp.evaluate(p, ids, d, ver_fpr=1e-5, id_fpr=0.05, max_memory_gb=1e-3, backend=backend)
        lo = brute_force(p, ids, d, 1e-5, 0.05, margin=2 * GEMM_EPS)
        hi = brute_force(p, ids, d, 1e-5, 0.05, margin=-2 * GEMM_EPS)
        for key in ("ver", "id"):
            assert lo[key] - 1e-12 <= res[key] <= hi[key] + 1e-12, (key, lo[key], res[key], hi[key])


def test_ijb_cuda_scores_within_tolerance():
    from arface_repro.eval.chunked import make_backend
    from arface_repro.eval.ijb import meta as ijb_meta
    from arface_repro.eval.ijb import metric as ijb
    from arface_repro.eval.ijb import one_to_n as ijb_1n

    sz = {k: max(4, int(v * 0.002)) for k, v in synth.IJBC.items()}
    data = synth.synth_ijb(**sz, seed=3)
    f, g = synth.ijb_features(data, 32, seed=4, sigma=5.0)
    meta = ijb_meta.IJBMeta(data.images, data.templates, data.medias, data.faceness, None, data.t1, data.t2, data.labels, {})
    cpu = ijb.evaluate_11_arrays(f, g, meta, max_curve_points=0)
    gpu = ijb.evaluate_11_arrays(f, g, meta, max_curve_points=0, backend=make_backend(CUDA))
    np.testing.assert_allclose(gpu["scores"], cpu["scores"], rtol=0, atol=ijb.SCORE_TOLERANCE_CUDA)
    for rule in ("nearest", "strict"):
        for far in ijb.FARS:
            assert abs(gpu["tar"][rule][far] - cpu["tar"][rule][far]) <= 1 / int(meta.labels.sum())
    subj = data.subjects_of_template
    tmpl = np.arange(subj.size) + 1
    ng = data.n_gallery
    gal = {"G1": (tmpl[:ng][subj[:ng] % 2 == 0], subj[:ng][subj[:ng] % 2 == 0]),
           "G2": (tmpl[:ng][subj[:ng] % 2 == 1], subj[:ng][subj[:ng] % 2 == 1])}
    probes = (tmpl[ng:], subj[ng:])
    a = ijb_1n.evaluate_1n(f, g, meta, gal, probes)
    b = ijb_1n.evaluate_1n(f, g, meta, gal, probes, backend=make_backend(CUDA))
    assert a["metrics"] == b["metrics"]
