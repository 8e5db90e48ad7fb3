"""The synthetic Table X's diagnostics: fixed masks, the policy's state, the tie rule, fixed-mask training."""

import numpy as np
import pytest

from arface_repro.data.occluded_faces import PATCH_INDEX, SyntheticFaces
from arface_repro.errors import ConfigError
from arface_repro.method.patches import NUM_MODES, fixed_keep_flags, mode_keep_table
from arface_repro.paper.resolution import within_resolution
from arface_repro.paper.synthetic_diagnostics import policy_verdict
from arface_repro.paper.synthetic_task import LN_MODES, policy_diagnostics, training_level

NOSE = PATCH_INDEX["nose"]


def test_fixed_keep_flags():
    s = SyntheticFaces(6, 8, seed=1, occluded=True, occlusion_rate=0.3)
    idx = np.arange(len(s))[::-1]
    oracle = fixed_keep_flags("oracle", s, idx)
    assert np.array_equal(oracle[:, NOSE], ~s.occluded[idx]) and oracle[:, [0, 1, 3, 4]].all()
    drop = fixed_keep_flags("drop", s, idx)
    assert not drop[:, NOSE].any() and drop[:, [0, 1, 3, 4]].all()
    assert fixed_keep_flags("off", s, idx).all()
    with pytest.raises(ConfigError, match="occlusion flags"):
        fixed_keep_flags("oracle", object(), idx)
    with pytest.raises(ConfigError, match="oracle, drop or off"):
        fixed_keep_flags("sometimes", s, idx)


def test_occluder_contrast_makes_the_occluder_visible():
    lo = SyntheticFaces(10, 10, seed=2, occluded=True, occluder_contrast=1.0)
    hi = SyntheticFaces(10, 10, seed=2, occluded=True, occluder_contrast=3.0)
    assert np.array_equal(lo.occluded, hi.occluded)
    x, y = (int(v) for v in lo.landmarks[0, NOSE])

    def nose_spread(s):
        return s.images[:, y - 8:y + 8, x - 8:x + 8].reshape(len(s), -1).astype(np.float64).std(1)

    # the clean images are identical; the occluded ones spread far more at contrast 3
    assert np.array_equal(lo.images[~lo.occluded], hi.images[~hi.occluded])
    assert nose_spread(hi)[hi.occluded].mean() > 1.8 * nose_spread(lo)[lo.occluded].mean()
    with pytest.raises(ConfigError, match="occluder_contrast"):
        SyntheticFaces(4, 4, seed=0, occluded=True, occluder_contrast=0.0)


def test_policy_diagnostics_and_verdicts():
    keep = mode_keep_table()
    occ = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    drop_nose, keep_all = int(np.flatnonzero(~keep[:, NOSE])[0]), NUM_MODES - 1
    p = np.zeros((100, NUM_MODES))
    p[occ, drop_nose] = 1.0
    p[~occ, keep_all] = 1.0
    d = policy_diagnostics(p, occ, NOSE)
    assert d["policy_entropy"] == 0.0 and d["p_drop_occluded"] == 100.0 and d["p_drop_clean"] == 0.0
    assert d["p_drop_occluded.ci95"] == 0.0 and policy_verdict(d) == "conditional"
    uniform = policy_diagnostics(np.full((100, NUM_MODES), 1.0 / NUM_MODES), occ, NOSE)
    assert uniform["policy_entropy"] == pytest.approx(LN_MODES) and policy_verdict(uniform) == "uniform"
    collapsed = np.zeros((100, NUM_MODES))
    collapsed[:, drop_nose] = 1.0                     # one mode for every image: drops the nose everywhere
    c = policy_diagnostics(collapsed, occ, NOSE)
    assert c["p_drop_occluded"] == c["p_drop_clean"] == 100.0 and policy_verdict(c) == "unconditional"
    assert policy_verdict({"Acc": 90.0}) == ""
    assert training_level([{"acc": 0.0}] * 90 + [{"acc": 0.5}] * 10) == {"train_acc_tail": 50.0}


def test_a_difference_within_the_papers_resolution_is_a_tie():
    assert within_resolution("lfw", "Acc", 0.05)          # 3 of 6000 pairs: McNemar can never reach p < 0.05
    assert not within_resolution("lfw", "Acc", 0.15)      # 9 pairs: testable with per-pair decisions
    assert within_resolution("blufr", "VR@FAR=0.1%", 0.01) and not within_resolution("blufr", "VR@FAR=0.1%", 0.02)


TINY = {"model": {"name": "tiny_resnet", "kwargs": {"channels": [8, 8, 8, 8], "fast": True}},
        "method": {"patch_radius": 12},
        "data": {"synthetic": {"num_identities": 6, "images_per_identity": 6, "occluded": True, "group_size": 3,
                               "occluder_contrast": 3.0},
                 "val": {"num_identities": 6, "images_per_identity": 5, "num_pairs": 20}},
        "train": {"steps": 2, "batch_size": 8, "quiet": True, "log_every": 0}}


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("kind", ["fixed", "arface"])
def test_records_carry_the_diagnostics(kind, tmp_path):
    from arface_repro.paper.synthetic_task import TEST_MASKS, verify_fn_for
    from arface_repro.train.config import load_config
    from arface_repro.train.data import build_val_set
    from arface_repro.train.loop import train

    cfg = load_config({**TINY, "name": kind, "out_dir": str(tmp_path), "method": {**TINY["method"], "kind": kind}})
    val = build_val_set(cfg)
    m = train(cfg, verify_fn=verify_fn_for(val, 0, 20)).metrics["metrics"]
    assert set(TEST_MASKS.values()) <= set(m) and 0.0 <= m["train_acc_tail"] <= 100.0
    if kind == "fixed":   # the oracle row is tested with its own mask: the same embeddings as the oracle test mask
        assert m["Acc"] == m[TEST_MASKS["oracle"]] and "policy_entropy" not in m
    else:
        assert 0.9 * LN_MODES < m["policy_entropy"] <= LN_MODES + 1e-9   # two steps: still near uniform
        assert 0.0 <= m["p_drop_clean"] <= 100.0 and m["p_drop_occluded.ci95"] >= 0.0


def test_a_fixed_mask_needs_occlusion_flags(tmp_path):
    from arface_repro.train.config import load_config
    from arface_repro.train.loop import Trainer

    class NoFlags:   # an in-memory set like a real-face one: images, labels, landmarks and nothing else
        def __init__(self):
            s = SyntheticFaces(4, 4, seed=0)
            self.images, self.labels, self.landmarks, self.num_classes = s.images, s.labels, s.landmarks, 4

        def __len__(self):
            return len(self.labels)

    cfg = load_config({**TINY, "name": "fixed", "out_dir": str(tmp_path), "method": {**TINY["method"], "kind": "fixed"}})
    with pytest.raises(ConfigError, match="needs a synthetic training set with occlusion flags"):
        Trainer(cfg, datasets=(NoFlags(), None))
