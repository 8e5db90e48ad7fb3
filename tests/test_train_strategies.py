"""Each method's training step gives the numbers it gave before the step became one strategy per method.

`EXPECTED` was printed by `steps_of()` below from the if/elif `Trainer.train_step` of commit b7d704f (before
`train/strategies.py` existed), on this machine with one torch thread. Same code path, same thread count:
the numbers are compared to the last digit (loss, accuracy, drop rates, reward, baseline, policy loss per step,
and a float64 sum of every parameter after the steps, i.e. the updates themselves).
"""

from __future__ import annotations

import pytest
import torch

from arface_repro.train.config import load_config
from arface_repro.train.loop import Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"model": {"name": "tiny_resnet", "kwargs": {"channels": [8, 8, 8, 8], "fast": True}},
        "method": {"patch_radius": 12, "attention": {"patch_size": 12, "channels": [8, 16]}},
        "data": {"synthetic": {"num_identities": 6, "images_per_identity": 6, "occluded": True, "group_size": 3,
                               "occluder_contrast": 3.0},
                 "val": {"num_identities": 6, "images_per_identity": 5, "num_pairs": 20}},
        "train": {"steps": 3, "batch_size": 8, "quiet": True, "log_every": 0, "device": "cpu"}}

CASES = {   # method section of each case (over TINY's)
    "plain": {"kind": "plain"},
    "random": {"kind": "random"},                                   # PickPatch on the input only
    "random_layers": {"kind": "random", "num_layers": 2, "p_layer": 1.0},   # PickPatch + feature-map masking
    "cutout": {"kind": "cutout", "cutout_size": 16},
    "dropblock": {"kind": "dropblock", "dropblock": {"block_size": 3, "final_keep_prob": 0.75,
                                                     "stages": ["stage3", "stage4"]}},
    "arface": {"kind": "arface"},
    "arface_layers": {"kind": "arface", "num_layers": 2, "p_layer": 1.0, "layer_draw": "per_layer"},
    "arface_sample_after": {"kind": "arface", "reward": "sample", "baseline_update": "after", "entropy_weight": 0.0},
    "fixed_oracle": {"kind": "fixed", "fixed_mask": "oracle"},
    "fixed_drop": {"kind": "fixed", "fixed_mask": "drop"},
}


def _param_sum(module) -> float:
    return float(sum(p.detach().double().sum() for p in module.parameters())) if module is not None else 0.0


def steps_of(case: str, out_dir) -> dict:
    m = {**TINY["method"], **CASES[case]}
    extra = {"train": {**TINY["train"], "grad_clip": 5.0}} if case == "plain" else {}
    cfg = load_config({**TINY, **extra, "name": case, "out_dir": str(out_dir), "method": m})
    trainer = Trainer(cfg)
    try:
        history = [trainer.train_step() for _ in range(cfg["train"]["steps"])]
        return {"history": history, "fnet": _param_sum(trainer.fnet), "attn": _param_sum(trainer.attn)}
    finally:
        trainer.close()


EXPECTED = {'arface': {'history': [{'step': 1,
                         'loss': 15.598332405090332,
                         'acc': 0.375,
                         'lr': 0.1,
                         'drop_rate': [0.5, 0.25, 0.25, 0.375, 0.5],
                         'reward': 0.375,
                         'baseline': 0.0037500000000000033,
                         'policy_loss': 1.274524211883545},
                        {'step': 2,
                         'loss': 17.1992244720459,
                         'acc': 0.125,
                         'lr': 0.07500000000000001,
                         'drop_rate': [0.25, 0.75, 0.375, 0.625, 0.5],
                         'reward': 0.125,
                         'baseline': 0.004962500000000004,
                         'policy_loss': 0.4119507670402527},
                        {'step': 3,
                         'loss': 23.799293518066406,
                         'acc': 0.0,
                         'lr': 0.025000000000000012,
                         'drop_rate': [0.5, 0.375, 0.25, 0.375, 0.5],
                         'reward': 0.0,
                         'baseline': 0.004912875000000004,
                         'policy_loss': -0.01720442809164524}],
            'fnet': 104.54424101558452,
            'attn': 0.46368098065431695},
 'arface_layers': {'history': [{'step': 1,
                                'loss': 15.72998046875,
                                'acc': 0.375,
                                'lr': 0.1,
                                'drop_rate': [0.5, 0.25, 0.25, 0.375, 0.5],
                                'reward': 0.375,
                                'baseline': 0.0037500000000000033,
                                'policy_loss': 1.274524211883545},
                               {'step': 2,
                                'loss': 14.810369491577148,
                                'acc': 0.25,
                                'lr': 0.07500000000000001,
                                'drop_rate': [0.25, 0.75, 0.375, 0.625, 0.5],
                                'reward': 0.25,
                                'baseline': 0.006212500000000005,
                                'policy_loss': 0.83699631690979},
                               {'step': 3,
                                'loss': 23.832550048828125,
                                'acc': 0.25,
                                'lr': 0.025000000000000012,
                                'drop_rate': [0.5, 0.375, 0.25, 0.375, 0.5],
                                'reward': 0.25,
                                'baseline': 0.008650375000000009,
                                'policy_loss': 0.8279145359992981}],
                   'fnet': 122.97147743002097,
                   'attn': 1.426926890257164},
 'arface_sample_after': {'history': [{'step': 1,
                                      'loss': 15.598332405090332,
                                      'acc': 0.375,
                                      'lr': 0.1,
                                      'drop_rate': [0.5, 0.25, 0.25, 0.375, 0.5],
                                      'reward': 0.375,
                                      'baseline': 0.0,
                                      'policy_loss': 1.2877452373504639},
                                     {'step': 2,
                                      'loss': 17.1992244720459,
                                      'acc': 0.125,
                                      'lr': 0.07500000000000001,
                                      'drop_rate': [0.25, 0.75, 0.375, 0.625, 0.5],
                                      'reward': 0.125,
                                      'baseline': 0.0037500000000000033,
                                      'policy_loss': 0.41645389795303345},
                                     {'step': 3,
                                      'loss': 23.799293518066406,
                                      'acc': 0.0,
                                      'lr': 0.025000000000000012,
                                      'drop_rate': [0.5, 0.375, 0.25, 0.375, 0.5],
                                      'reward': 0.0,
                                      'baseline': 0.004962500000000004,
                                      'policy_loss': -0.017037471756339073}],
                         'fnet': 104.54424101558452,
                         'attn': -0.8878443709691055},
 'cutout': {'history': [{'step': 1, 'loss': 14.0568265914917, 'acc': 0.375, 'lr': 0.1},
                        {'step': 2, 'loss': 20.42096710205078, 'acc': 0.0, 'lr': 0.07500000000000001},
                        {'step': 3, 'loss': 20.874202728271484, 'acc': 0.0, 'lr': 0.025000000000000012}],
            'fnet': 131.2695579704697,
            'attn': 0.0},
 'dropblock': {'history': [{'step': 1, 'loss': 14.566384315490723, 'acc': 0.375, 'lr': 0.1},
                           {'step': 2, 'loss': 19.037981033325195, 'acc': 0.125, 'lr': 0.07500000000000001},
                           {'step': 3, 'loss': 22.744630813598633, 'acc': 0.25, 'lr': 0.025000000000000012}],
               'fnet': 130.0996277773588,
               'attn': 0.0},
 'fixed_drop': {'history': [{'step': 1,
                             'loss': 13.706934928894043,
                             'acc': 0.375,
                             'lr': 0.1,
                             'drop_rate': [0.0, 0.0, 1.0, 0.0, 0.0]},
                            {'step': 2,
                             'loss': 16.37201499938965,
                             'acc': 0.0,
                             'lr': 0.07500000000000001,
                             'drop_rate': [0.0, 0.0, 1.0, 0.0, 0.0]},
                            {'step': 3,
                             'loss': 11.584465980529785,
                             'acc': 0.625,
                             'lr': 0.025000000000000012,
                             'drop_rate': [0.0, 0.0, 1.0, 0.0, 0.0]}],
                'fnet': 110.31568907932535,
                'attn': 0.0},
 'fixed_oracle': {'history': [{'step': 1,
                               'loss': 14.523463249206543,
                               'acc': 0.375,
                               'lr': 0.1,
                               'drop_rate': [0.0, 0.0, 0.625, 0.0, 0.0]},
                              {'step': 2,
                               'loss': 19.321983337402344,
                               'acc': 0.125,
                               'lr': 0.07500000000000001,
                               'drop_rate': [0.0, 0.0, 0.375, 0.0, 0.0]},
                              {'step': 3,
                               'loss': 23.102331161499023,
                               'acc': 0.0,
                               'lr': 0.025000000000000012,
                               'drop_rate': [0.0, 0.0, 0.875, 0.0, 0.0]}],
                  'fnet': 122.02330673762428,
                  'attn': 0.0},
 'plain': {'history': [{'step': 1, 'loss': 14.566384315490723, 'acc': 0.375, 'lr': 0.1},
                       {'step': 2, 'loss': 18.047195434570312, 'acc': 0.125, 'lr': 0.07500000000000001},
                       {'step': 3, 'loss': 20.793853759765625, 'acc': 0.0, 'lr': 0.025000000000000012}],
           'fnet': 102.82657192529662,
           'attn': 0.0},
 'random': {'history': [{'step': 1,
                         'loss': 15.598332405090332,
                         'acc': 0.375,
                         'lr': 0.1,
                         'drop_rate': [0.5, 0.25, 0.25, 0.375, 0.5]},
                        {'step': 2,
                         'loss': 17.1992244720459,
                         'acc': 0.125,
                         'lr': 0.07500000000000001,
                         'drop_rate': [0.25, 0.75, 0.375, 0.625, 0.5]},
                        {'step': 3,
                         'loss': 23.799293518066406,
                         'acc': 0.0,
                         'lr': 0.025000000000000012,
                         'drop_rate': [0.5, 0.375, 0.25, 0.375, 0.5]}],
            'fnet': 104.54424101558452,
            'attn': 0.0},
 'random_layers': {'history': [{'step': 1,
                                'loss': 15.72998046875,
                                'acc': 0.375,
                                'lr': 0.1,
                                'drop_rate': [0.5, 0.25, 0.25, 0.375, 0.5]},
                               {'step': 2,
                                'loss': 14.810369491577148,
                                'acc': 0.25,
                                'lr': 0.07500000000000001,
                                'drop_rate': [0.25, 0.75, 0.375, 0.625, 0.5]},
                               {'step': 3,
                                'loss': 23.832550048828125,
                                'acc': 0.25,
                                'lr': 0.025000000000000012,
                                'drop_rate': [0.5, 0.375, 0.25, 0.375, 0.5]}],
                   'fnet': 122.97147743002097,
                   'attn': 0.0}}


@pytest.mark.parametrize("case", sorted(CASES))
def test_steps_give_the_recorded_numbers(case, tmp_path):
    assert torch.get_num_threads() == 1
    assert steps_of(case, tmp_path) == EXPECTED[case]


def test_every_method_kind_has_exactly_one_strategy():
    from arface_repro.train.config import METHODS
    from arface_repro.train.strategies import STRATEGIES, Strategy

    assert sorted(STRATEGIES) == sorted(METHODS)
    assert all(issubclass(cls, Strategy) and cls.kind == kind for kind, cls in STRATEGIES.items())
    assert len(set(STRATEGIES.values())) == len(STRATEGIES)
