"""2-process gloo DDP gives the same loss curve as 1 process with the same global batch.

The tiny backbone uses GroupNorm here: BatchNorm statistics are per process under DDP and
SyncBatchNorm is GPU-only, so only a batch-statistics-free net can match exactly on CPU.
"""

import numpy as np

from arface_repro.train.spawn import run_spawned

CFG = {
    "name": "ddp",
    "seed": 3,
    "model": {"name": "tiny_resnet", "kwargs": {"channels": [8, 8, 16, 16], "norm": "gn", "fast": True}},
    "method": {"kind": "arface", "patch_radius": 16, "num_layers": 2},
    "data": {"synthetic": {"num_identities": 8, "images_per_identity": 8}, "val": {"num_identities": 4, "images_per_identity": 4, "num_pairs": 20}},
    "train": {"steps": 6, "batch_size": 16, "lr": 0.05, "quiet": True, "log_every": 0},
}


def test_two_process_ddp_matches_one_process(tmp_path):
    one = run_spawned({**CFG, "out_dir": str(tmp_path / "w1")}, 1)["history"]
    two = run_spawned({**CFG, "out_dir": str(tmp_path / "w2")}, 2)["history"]
    assert len(one) == len(two) == 6
    for a, b in zip(one, two):
        assert np.allclose(a["loss"], b["loss"], rtol=1e-4, atol=1e-5), (a, b)
        assert a["acc"] == b["acc"] and a["drop_rate"] == b["drop_rate"]
        assert np.isclose(a["policy_loss"], b["policy_loss"], rtol=1e-3, atol=1e-6)
    # the curve moves (the comparison is not between constant sequences)
    assert len({round(h["loss"], 4) for h in one}) > 3
