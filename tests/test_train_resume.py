"""A run killed after a checkpoint and resumed gives exactly the losses of an uninterrupted run."""

import json

import pytest

from arface_repro.train.loop import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Killed(Exception):
    pass


CFG = {
    "name": "resume",
    "seed": 5,
    "model": {"name": "tiny_resnet", "kwargs": {"channels": [8, 8, 16, 16], "fast": True}},
    "method": {"kind": "arface", "patch_radius": 16, "num_layers": 2},
    "data": {"synthetic": {"num_identities": 8, "images_per_identity": 6}, "val": {"num_identities": 4, "images_per_identity": 4, "num_pairs": 20}},
    "train": {"steps": 10, "batch_size": 16, "lr": 0.05, "momentum": 0.9, "warmup_steps": 2, "quiet": True, "log_every": 1, "ckpt_every": 4},
}


VARIANTS = {
    "arface": {},
    # DropBlock (keep_prob schedule and per-step generator), SphereFace's iteration buffer, AdamW state
    "dropblock-sphereface-adamw": {"method": {"kind": "dropblock"}, "head": {"name": "sphereface"},
                                   "train": {**CFG["train"], "optimizer": "adamw", "lr": 0.001}},
    # PickPatch on input and feature maps, per-layer draw, ArcFace head, multistep schedule, Cutout-free
    "pickpatch-arcface-multistep": {"method": {"kind": "random", "patch_radius": 16, "num_layers": 2, "layer_draw": "per_layer"},
                                    "head": {"name": "arcface"},
                                    "train": {**CFG["train"], "schedule": "multistep", "milestones": [0.5, 0.8]}},
    "cutout": {"method": {"kind": "cutout"}},
    # mixed precision on CPU: bf16 autocast (ARFace with feature maps), fp16 with its GradScaler state resumed
    "arface-bf16": {"train": {**CFG["train"], "amp": "bf16"}},
    "cutout-fp16-scaler": {"method": {"kind": "cutout"}, "train": {**CFG["train"], "amp": "fp16"}},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_kill_and_resume_is_exact(tmp_path, variant):
    cfg = {**CFG, **VARIANTS[variant]}
    full = train({**cfg, "out_dir": str(tmp_path / "full")})

    def kill(trainer, rec):
        if trainer.step == 7:  # dies 3 steps after the checkpoint at step 4
            raise Killed

    run = {**cfg, "out_dir": str(tmp_path / "run")}
    with pytest.raises(Killed):
        train(run, on_step=kill)
    resumed = train(run, ["train.resume=auto"])
    assert [h["step"] for h in resumed.history] == list(range(1, 11))
    assert resumed.history == full.history  # bitwise: losses, rewards, baseline, drop rates, lr
    assert resumed.metrics == full.metrics
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [x["step"] for x in lines if "loss" in x]
    assert steps == list(range(1, 11))  # the lines written after the checkpoint by the killed run were dropped


def test_rec_dataset_with_worker_processes_matches_in_process_loading(tmp_path, shared):
    from conftest import require

    require(shared / "fixtures" / "recordio" / "train.rec")
    prefix = str(shared / "fixtures" / "recordio" / "train")
    base = {**CFG, "data": {"kind": "rec", "path": prefix}, "method": {"kind": "random", "patch_radius": 30, "num_layers": 1},
            "train": {**CFG["train"], "steps": 3, "ckpt_every": 0, "log_every": 0}}
    def no_eval(trainer):
        return {}

    runs = []
    for nw in (0, 2):
        cfg = {**base, "out_dir": str(tmp_path / f"w{nw}"), "data": {**base["data"], "num_workers": nw}}
        runs.append(train(cfg, verify_fn=no_eval).history)
    assert len(runs[0]) == 3 and runs[0] == runs[1]
