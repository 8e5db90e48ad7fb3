"""Sharded runs: 2 gloo processes (torch.multiprocessing.spawn, FileStore init) give exactly the numbers
of one process for IJB 1:1 and 1:N, MegaFace, Trillion-Pairs and RMFRD; plus the chunk-grid helpers."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from arface_repro.errors import ConfigError
from arface_repro.eval.chunked import DistContext, block_columns, budget_bytes, chunk_grid, make_backend

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

MEM = 2e-5  # a tiny budget: many blocks, so both ranks get several


def _inputs():
    import make_synthetic_large as synth

    from arface_repro.eval import ijb

    rng = np.random.default_rng(11)
    sz = {k: max(4, int(v * 0.002)) for k, v in synth.IJBC.items()}
    data = synth.synth_ijb(**sz, seed=3)
    f, g = synth.ijb_features(data, 24, seed=4, sigma=5.0)
    meta = ijb.IJBMeta(data.images, data.templates, data.medias, data.faceness, None, data.t1, data.t2,
                       data.labels, {})
    subj = data.subjects_of_template
    tmpl = np.arange(subj.size) + 1
    gal = {"G1": (tmpl[: data.n_gallery][subj[: data.n_gallery] % 2 == 0], subj[: data.n_gallery][subj[: data.n_gallery] % 2 == 0]),
           "G2": (tmpl[: data.n_gallery][subj[: data.n_gallery] % 2 == 1], subj[: data.n_gallery][subj[: data.n_gallery] % 2 == 1])}
    probes = (tmpl[data.n_gallery:], subj[data.n_gallery:])
    ids = rng.integers(0, 30, 300)
    c = rng.standard_normal((30, 16))
    p = (c[ids] + 0.7 * rng.standard_normal((300, 16))).astype(np.float32)
    d = rng.standard_normal((5000, 16)).astype(np.float32)
    return dict(f=f, g=g, meta=meta, gal=gal, probes=probes, p=p, ids=ids, d=d)


def _compute(ctx):
    from arface_repro.eval import ijb, ijb_1n, megaface, rmfrd, trillion_pairs

    x = _inputs()
    out = {}
    r = ijb.evaluate_11_arrays(x["f"], x["g"], x["meta"], ctx=ctx, max_memory_gb=MEM, max_curve_points=0)
    out["ijb_scores"], out["ijb_tar"] = r["scores"], r["tar"]
    out["ijb_1n"] = ijb_1n.evaluate_1n(x["f"], x["g"], x["meta"], x["gal"], x["probes"], ctx=ctx, max_memory_gb=MEM)
    out["ijb_1n_if"] = ijb_1n.evaluate_1n(x["f"], x["g"], x["meta"], x["gal"], x["probes"], rule="insightface", ctx=ctx,
                                          max_memory_gb=MEM)
    noise = np.zeros(5000, bool)
    noise[::97] = True
    out["megaface"] = megaface.evaluate(x["p"], x["ids"], x["d"], sets={10: np.arange(10), 1000: np.arange(1000),
                                                                        5000: np.arange(5000)},
                                        distractor_noise=noise, far=1e-4, ctx=ctx, max_memory_gb=MEM)
    out["trillion"] = trillion_pairs.evaluate(x["p"], x["ids"], x["d"], ver_fpr=1e-5, id_fpr=0.05, ctx=ctx, max_memory_gb=MEM)
    half = x["ids"] % 2 == 0
    out["rmfrd"] = rmfrd.evaluate_arrays(x["p"][half], x["ids"][half], x["p"][~half], x["ids"][~half] + 0 * 1,
                                         ctx=ctx, max_memory_gb=MEM)
    return out


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        ctx = DistContext()
        assert ctx.active and ctx.world == world and ctx.rank == rank
        res = _compute(ctx)
        with open(Path(out_dir) / f"rank{rank}.pkl", "wb") as fh:
            pickle.dump(res, fh)
    finally:
        dist.destroy_process_group()


def _assert_same(a, b, path="result"):
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b)):
            _assert_same(u, v, f"{path}[{i}]")
    else:
        assert a == b or (a != a and b != b), f"{path}: {a} != {b}"


def test_two_processes_equal_one(tmp_path):
    import torch.multiprocessing as mp

    single = _compute(DistContext(use_distributed=False))
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        with open(tmp_path / f"rank{rank}.pkl", "rb") as fh:
            _assert_same(single, pickle.load(fh), f"rank{rank}")
    # the comparisons are meaningful: non-trivial operating points
    assert 0 < single["megaface"]["cmc"][5000][0] < 1 and 0 < single["trillion"]["ver"] < 1
    assert 0 < single["ijb_tar"]["strict"][1e-2] < 1


def test_chunk_grid_and_budget():
    assert chunk_grid(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert DistContext(use_distributed=False).mine(chunk_grid(10, 4)) == [(0, 4), (4, 8), (8, 10)]
    assert budget_bytes(1.0) == 1 << 30
    # 4 float32 temporaries of 3530 rows per column within a quarter of 1 GB
    cols = block_columns(3530, 1.0)
    assert 4 * 3530 * 4 * cols <= (1 << 30) // 4
    with pytest.raises(ConfigError):
        budget_bytes(0)
    with pytest.raises(ConfigError):
        make_backend("tpu")
