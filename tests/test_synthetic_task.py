"""The synthetic Table X's task rewards a conditional mask: with trained networks, the oracle fixed policy (drop the
nose iff occluded, in training and at test) beats both unconditional ones (never drop it = plain; always drop it)
on held-out identities, by a margin, in every one of 3 seeds (seeds 0, 1, 2; paired by seed).

Slow (9 training runs of the shipped configs, ~10 CPU-minutes): `pytest -m slow tests/test_synthetic_task.py`.
The margin (1 point in every seed, 2 points on average) is below what `reproduce_table.py X` measured with the
shipped configs: oracle - never drop +6.10 / +8.35 / +1.97 / +4.92 / +6.42 and oracle - always drop
+6.73 / +12.38 / +11.40 / +14.25 / +15.85 on seeds 0-4 (README, synthetic Table X).
"""

import numpy as np
import pytest

from arface_repro.paper.synthetic_task import verify_fn_for
from arface_repro.shared_data import REPO_ROOT
from arface_repro.train.config import load_config
from arface_repro.train.data import build_val_set
from arface_repro.train.loop import train

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

SEEDS = (0, 1, 2)
POLICIES = {"never": "syn_plain", "always": "syn_fixed_drop", "oracle": "syn_fixed_oracle"}


@pytest.fixture(scope="module")
def acc(tmp_path_factory):
    out = {}
    for name, config in POLICIES.items():
        for s in SEEDS:
            cfg = load_config(REPO_ROOT / "configs" / f"{config}.yaml",
                              [f"seed={s}", "train.quiet=true", "train.log_every=0",
                               f"out_dir={tmp_path_factory.mktemp(f'{name}{s}')}"])
            val = build_val_set(cfg)
            res = train(cfg, verify_fn=verify_fn_for(val, s, int(cfg["data"]["val"]["num_pairs"]), diagnostics=False))
            out[name, s] = res.metrics["metrics"]["Acc"]
    return out


@pytest.mark.parametrize("other", ["never", "always"])
def test_the_oracle_beats_an_unconditional_policy(acc, other):
    d = np.array([acc["oracle", s] - acc[other, s] for s in SEEDS])
    print(f"oracle - {other} per seed: {np.round(d, 2).tolist()}")
    assert d.min() > 1.0 and d.mean() > 2.0
