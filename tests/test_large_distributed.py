"""Sharded runs: 2 gloo processes (torch.multiprocessing.spawn, FileStore init) give records identical to one
process's for every protocol that shards (IJB 1:1, IJB 1:N both rules, MegaFace, Trillion-Pairs, RMFRD), built
through the protocol classes as `arface evaluate` builds them; plus the chunk-grid helpers."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from arface_repro.errors import ConfigError
from arface_repro.eval import large_scale_synthetic as synth
from arface_repro.eval.chunked import DistContext, block_columns, budget_bytes, chunk_grid, make_backend

MEM = 2e-5  # a tiny budget: many blocks, so both ranks get several
VOLATILE = ("created_utc", "command", "git_commit", "world_size", "environment")  # environment: threads per process


def _write_inputs(root: Path) -> None:
    from arface_repro.eval.megaface import devkit as dk
    from arface_repro.eval.trillion import reader as tpio
    from arface_repro.io.feature_store import save_feature_store

    sz = {k: max(4, int(v * 0.002)) for k, v in synth.IJBC.items()}
    data = synth.synth_ijb(**sz, seed=3)
    f, g = synth.ijb_features(data, 24, seed=4, sigma=5.0)
    synth.write_ijb(root / "ijbc", data, f, g, "ijbc")
    rng = np.random.default_rng(11)
    ids = rng.integers(0, 30, 300)
    c = rng.standard_normal((30, 16))
    p = (c[ids] + 0.7 * rng.standard_normal((300, 16))).astype(np.float32)
    d = rng.standard_normal((5000, 16)).astype(np.float32)
    mfr = root / "megaface"
    (mfr / "devkit/templatelists").mkdir(parents=True)
    names = [f"P{i}" for i in ids]
    fs_paths = [f"P{i}/P{i}_{k}.png" for k, i in enumerate(ids)]
    md_paths = [f"{k // 100}/u{k}@N00/{k}_0.jpg" for k in range(5000)]
    dk.write_facescrub_list(mfr / "devkit/templatelists/facescrub_features_list.json", names, fs_paths)
    dk.write_megaface_list(mfr / "devkit/templatelists/megaface_features_list.json_1000000_1", md_paths)
    (mfr / "facescrub_noises.txt").write_text("# noise\n" + fs_paths[3].split("/")[-1] + "\n")
    (mfr / "megaface_noises.txt").write_text("# noise\n" + "\n".join(md_paths[::97]) + "\n")
    save_feature_store(mfr / "facescrub.npz", p, fs_paths)
    tpio.write_features(mfr / "distractors.bin", d)
    tr = root / "trillion"
    tr.mkdir()
    tpio.write_features(tr / "testdata_features.bin", p / np.linalg.norm(p, axis=1, keepdims=True))
    (tr / "testdata_labels.txt").write_text("".join(f"{i}\n" for i in ids))
    tpio.write_features(tr / "distractor_features.bin", d / np.linalg.norm(d, axis=1, keepdims=True))
    half = ids % 2 == 0
    paths = [f"AFDB_masked_face_dataset/p{i}/{k}.jpg" for k, i in enumerate(ids[half])]
    paths += [f"AFDB_face_dataset/p{i}/{k}.jpg" for k, i in enumerate(ids[~half] // 2 * 2)]
    save_feature_store(root / "rmfrd.npz", np.concatenate([p[half], p[~half]]), paths)


CASES = [
    ("ijbc", "ijbc/ijbc_features.npz", dict(data_root="ijbc", curve_points=50)),
    ("ijbc-1n", "ijbc/ijbc_features.npz", dict(data_root="ijbc")),
    ("ijbc-1n", "ijbc/ijbc_features.npz", dict(data_root="ijbc", rule="open-set")),
    ("megaface", "megaface/facescrub.npz", dict(data_root="megaface", distractor_features="megaface/distractors.bin",
                                                sizes="10,1000,5000")),
    ("trillion", None, dict(data_root="trillion", ver_fpr=1e-5, id_fpr=0.05)),
    ("rmfrd", "rmfrd.npz", dict()),
]


def _records(root: Path) -> list[dict]:
    from arface_repro.eval.protocols import get_protocol

    out = []
    for name, features, kw in CASES:
        kw = {k: (str(root / v) if k in ("data_root", "distractor_features") else v) for k, v in kw.items()}
        proto = get_protocol(name).from_options(max_memory_gb=MEM, quiet=True, **kw)
        rec = proto.evaluate(proto.read_features(None if features is None else str(root / features)))
        assert rec["world_size"] == proto.ctx.world
        out.append({k: v for k, v in rec.items() if k not in VOLATILE})
    return out


def _worker(rank: int, world: int, init_file: str, root: str) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        ctx = DistContext()
        assert ctx.active and ctx.world == world and ctx.rank == rank
        res = _records(Path(root))
        with open(Path(root) / f"rank{rank}.pkl", "wb") as fh:
            pickle.dump(res, fh)
    finally:
        dist.destroy_process_group()


def test_two_processes_give_the_records_of_one(tmp_path):
    import torch.multiprocessing as mp

    _write_inputs(tmp_path)
    single = _records(tmp_path)
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        with open(tmp_path / f"rank{rank}.pkl", "rb") as fh:
            got = pickle.load(fh)
        for (name, _, kw), a, b in zip(CASES, single, got):
            assert a == b, f"rank {rank}: {name} {kw}"
    # the comparisons are meaningful: non-trivial operating points
    by = {c[0] + c[2].get("rule", ""): r for c, r in zip(CASES, single)}
    assert 0 < by["megaface"]["metrics"]["Id@5000"] < 100 and 0 < by["trillion"]["metrics"]["Ver@FPR=1e-5"] < 100
    assert 0 < by["ijbc"]["metrics_other_rule"]["metrics"]["TAR@FAR=1e-2"] < 100
    assert by["megaface"]["noise_counts"] == {"facescrub": 1, "megaface": 52}


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
