"""A run killed after a checkpoint and resumed gives exactly the losses of an uninterrupted run."""

import json

import pytest

from arface_repro.train.loop import train


class Killed(Exception):
    pass


CFG = {
    "name": "resume",
    "seed": 5,
    "model": {"name": "arface_repro.train.tiny_backbone:tiny_resnet", "kwargs": {"channels": [8, 8, 16, 16], "fast": True}},
    "method": {"kind": "arface", "patch_radius": 16, "num_layers": 2},
    "data": {"synthetic": {"num_identities": 8, "images_per_identity": 6}, "val": {"num_identities": 4, "images_per_identity": 4, "num_pairs": 20}},
    "train": {"steps": 10, "batch_size": 16, "lr": 0.05, "momentum": 0.9, "warmup_steps": 2, "quiet": True, "log_every": 1, "ckpt_every": 4},
}


def test_kill_and_resume_is_exact(tmp_path):
    full = train({**CFG, "out_dir": str(tmp_path / "full")})

    def kill(trainer, rec):
        if trainer.step == 7:  # dies 3 steps after the checkpoint at step 4
            raise Killed

    run = {**CFG, "out_dir": str(tmp_path / "run")}
    with pytest.raises(Killed):
        train(run, on_step=kill)
    resumed = train(run, ["train.resume=auto"])
    assert [h["step"] for h in resumed.history] == list(range(1, 11))
    assert resumed.history == full.history  # bitwise: losses, rewards, baseline, drop rates, lr
    assert resumed.metrics == full.metrics
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [x["step"] for x in lines if "loss" in x]
    assert steps == list(range(1, 11))  # the lines written after the checkpoint by the killed run were dropped
