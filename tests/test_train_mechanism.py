"""ARFace mechanism on the synthetic occluded set (CPU, tiny backbone, fixed seeds).

The nose part of half the images is replaced by another identity's part at 1.5x contrast. We check
that the Attention-Net's inference decisions drop that patch on occluded images far more often than
the never-occluded patches, and that ARFace beats Random patch dropping on held-out verification
with the same budget (same steps, data, backbone, seed).
"""

import pytest

from arface_repro.train.loop import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BASE = {
    "seed": 0,
    "model": {"name": "tiny_resnet", "kwargs": {"channels": [8, 12, 16, 24], "fast": True}},
    "method": {"patch_radius": 12, "reward": "sample", "entropy_weight": 0.02, "attention": {"lr": 0.001}},
    "data": {"synthetic": {"num_identities": 40, "images_per_identity": 24, "variation": 0.6}, "val": {"num_identities": 20, "images_per_identity": 10, "num_pairs": 300}},
    "train": {"steps": 150, "batch_size": 32, "lr": 0.1, "quiet": True, "log_every": 0},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for kind in ("arface", "random"):
        cfg = {**BASE, "name": kind, "out_dir": str(tmp_path_factory.mktemp(kind)), "method": {**BASE["method"], "kind": kind}}
        out[kind] = train(cfg)
    return out


def test_attention_net_drops_the_occluded_patch(runs):
    m = runs["arface"].metrics
    print("ARFace held-out:", m)
    assert m["drop_occluded"] >= 0.8
    others = [r for i, r in enumerate(m["drop_rate"]) if i != 2]
    assert max(others) <= 0.2, others


def test_arface_beats_random_on_heldout_verification(runs):
    a, r = runs["arface"].metrics["val_accuracy"], runs["random"].metrics["val_accuracy"]
    print(f"held-out verification: ARFace {a:.2f}%  Random {r:.2f}%")
    assert a > r + 1.0
