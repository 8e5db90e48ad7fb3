"""2-process gloo DDP gives the same loss curve as 1 process with the same global batch, and a DDP run
resumed from its checkpoint continues that curve.

The tiny backbone uses GroupNorm here: BatchNorm statistics are per process under DDP and
SyncBatchNorm is GPU-only, so only a batch-statistics-free net can match exactly on CPU.
The schedule is constant so that a 3-step run resumed to 6 steps follows the 6-step run's learning rates.
"""

import numpy as np
import pytest
import torch

from arface_repro.train.loop import train
from arface_repro.train.spawn import run_spawned

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = {
    "name": "ddp",
    "seed": 3,
    "model": {"name": "tiny_resnet", "kwargs": {"channels": [8, 8, 16, 16], "norm": "gn", "fast": True}},
    "method": {"kind": "arface", "patch_radius": 16, "num_layers": 2},
    "data": {"synthetic": {"num_identities": 8, "images_per_identity": 8}, "val": {"num_identities": 4, "images_per_identity": 4, "num_pairs": 20}},
    "train": {"steps": 6, "batch_size": 16, "lr": 0.05, "schedule": "constant", "quiet": True, "log_every": 0},
}


def test_two_process_ddp_matches_one_process_and_resumes(tmp_path):
    one = train({**CFG, "out_dir": str(tmp_path / "w1")}).history
    # 2 processes: 3 steps and a checkpoint, then the same folder resumed to 6 steps
    run = {**CFG, "out_dir": str(tmp_path / "w2")}
    first = run_spawned(run, 2, ["train.steps=3"])["history"]
    ck = torch.load(tmp_path / "w2" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert ck["step"] == 3 and not any(k.startswith("module.") for k in (*ck["fnet"], *ck["attn"]))
    two = run_spawned(run, 2, ["train.resume=auto"])["history"]
    assert len(one) == len(two) == 6 and two[:3] == first
    for a, b in zip(one, two):
        assert np.allclose(a["loss"], b["loss"], rtol=1e-4, atol=1e-5), (a, b)
        assert a["acc"] == b["acc"] and a["drop_rate"] == b["drop_rate"]
        assert np.isclose(a["policy_loss"], b["policy_loss"], rtol=1e-3, atol=1e-6)
        assert np.isclose(a["baseline"], b["baseline"], rtol=1e-6)
    # the curve moves (the comparison is not between constant sequences)
    assert len({round(h["loss"], 4) for h in one}) > 3


def test_launched_single_process_joins_a_group_and_matches_a_plain_run(tmp_path):
    """A launcher's process with WORLD_SIZE=1 (what `torchrun --nproc_per_node 1` starts) runs the DDP code path:
    a process group of one (gloo here, NCCL on a GPU), DDP-wrapped nets, statistics through all_reduce. Its
    numbers are a plain single process's, to the bit (bf16 autocast on, so that path runs under DDP too)."""
    cfg = {**CFG, "train": {**CFG["train"], "steps": 3, "amp": "bf16"}}
    plain = train({**cfg, "out_dir": str(tmp_path / "plain")}).history
    launched = run_spawned({**cfg, "out_dir": str(tmp_path / "one")}, 1)
    assert launched["process_group"] == "gloo"
    assert launched["history"] == plain
