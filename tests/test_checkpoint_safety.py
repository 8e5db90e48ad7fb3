"""Training checkpoints hold tensors and plain containers only; nothing a file names is imported or unpickled."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from arface_repro.cli import main
from arface_repro.errors import ConfigError, FormatError
from arface_repro.models.training_checkpoint import FORMAT, read_training_checkpoint
from arface_repro.train.loop import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = {
    "name": "safe",
    "seed": 3,
    "model": {"name": "tiny_resnet", "kwargs": {"channels": [8, 8, 16, 16], "fast": True}},
    "method": {"kind": "arface", "patch_radius": 16, "num_layers": 1},
    "data": {"synthetic": {"num_identities": 6, "images_per_identity": 4}, "val": {"num_identities": 4, "images_per_identity": 4, "num_pairs": 20}},
    "train": {"steps": 2, "batch_size": 8, "quiet": True, "log_every": 1},
}


class Payload:
    """Unpickling this object touches a marker file (what an attacker's checkpoint would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_checkpoint_loads_with_weights_only(tmp_path):
    res = train({**CFG, "out_dir": str(tmp_path / "run")})
    ck = torch.load(res.checkpoint, map_location="cpu", weights_only=True)  # the strict loader, directly
    assert ck["format"] == FORMAT and ck["step"] == 2
    assert ck["config"]["model"]["name"] == "tiny_resnet"
    assert any(k.startswith("backbone.") for k in ck["fnet"]) and ck["attn"]
    assert isinstance(ck["rng"]["numpy"]["keys"], torch.Tensor) and isinstance(ck["rng"]["python"]["state"], torch.Tensor)
    assert read_training_checkpoint(res.checkpoint)["step"] == 2


@pytest.mark.parametrize("how", ["explicit", "auto"])
def test_resume_never_unpickles_a_planted_checkpoint(tmp_path, how):
    marker = tmp_path / "pwned"
    out = tmp_path / "run"
    out.mkdir()
    planted = out / "checkpoint_last.pt"
    torch.save({"format": FORMAT, "evil": Payload(marker)}, planted)
    resume = str(planted) if how == "explicit" else "auto"
    with pytest.raises(FormatError, match="never unpickled"):
        train({**CFG, "out_dir": str(out)}, [f"train.resume={resume}"])
    assert not marker.exists()


def test_plain_pickle_is_not_a_checkpoint(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "ck.pt"
    bad.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(FormatError):
        read_training_checkpoint(bad)
    assert not marker.exists()
    (tmp_path / "text.pt").write_text("not a checkpoint\n")
    with pytest.raises(FormatError, match="not a readable arface training checkpoint") as exc:
        read_training_checkpoint(tmp_path / "text.pt")
    assert "TRUST" not in str(exc.value)


@pytest.mark.parametrize("name", ["os:system", "subprocess:call", "arface_repro.backbones.tiny_resnet:tiny_resnet"])
def test_config_cannot_import_a_callable(tmp_path, name, capsys):
    marker = tmp_path / "pwned"
    with pytest.raises(ConfigError, match="unknown model architecture"):
        train({**CFG, "out_dir": str(tmp_path / "r"), "model": {"name": name, "kwargs": {"args": f"touch {marker}"}}})
    assert not marker.exists()
    # the same through the CLI, as a key=value override: one line, exit 2
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: c\nmodel: {name: tiny_resnet}\n")
    assert main(["train", str(cfg), f"model.name={name}", f"out_dir={tmp_path / 'r2'}", "--quiet"]) == 2
    assert "unknown model architecture" in capsys.readouterr().err
    assert not marker.exists()


def test_explicit_plugin_registers_an_architecture(tmp_path):
    plug = tmp_path / "my_arch_plugin.py"
    plug.write_text(
        "from arface_repro.backbones.registry import register_model\n"
        "from arface_repro.backbones.tiny_resnet import TinyResNet\n"
        "@register_model\n"
        "def my_tiny(**kw):\n    return TinyResNet(channels=(8, 8, 16, 16), fast=True, **kw)\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: c\nmodel: {name: my_tiny}\ndata: {synthetic: {num_identities: 4, images_per_identity: 4},"
                   " val: {num_identities: 4, images_per_identity: 4, num_pairs: 10}}\n"
                   "train: {steps: 1, batch_size: 8, log_every: 0}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).resolve().parents[1])]),
           "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "arface_repro"]
    no = subprocess.run(base + ["train", str(cfg), f"out_dir={tmp_path / 'a'}", "--quiet"], env=env, capture_output=True, text=True)
    assert no.returncode == 2 and "unknown model architecture 'my_tiny'" in no.stderr
    yes = subprocess.run(base + ["--plugin", "my_arch_plugin", "train", str(cfg), f"out_dir={tmp_path / 'b'}", "--quiet"],
                         env=env, capture_output=True, text=True)
    assert yes.returncode == 0, yes.stderr


def test_fp16_grad_scaler_state_is_plain_and_restores(tmp_path):
    """The GradScaler state an AMP run checkpoints (scale, growth tracker) is numbers only and round-trips
    through a weights_only checkpoint. CPU scaler: the same state_dict as the CUDA one."""
    from arface_repro.train.checkpoint import save_checkpoint

    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", enabled=True, init_scale=1024.0, growth_interval=2)
    for poison in (False, True, False):  # a normal step, an overflow (scale backs off), a normal step
        opt.zero_grad()
        scaler.scale(model(torch.ones(3, 4)).sum()).backward()
        if poison:
            model.weight.grad.fill_(float("inf"))
        scaler.step(opt)
        scaler.update()
    state = scaler.state_dict()
    assert state["scale"] == 512.0 and state["_growth_tracker"] == 1
    path = save_checkpoint(tmp_path / "ck.pt", {"config": {}, "step": 3, "scaler": state})
    back = read_training_checkpoint(path)["scaler"]
    assert back == state
    fresh = torch.amp.GradScaler("cpu", enabled=True)
    fresh.load_state_dict(back)
    assert fresh.get_scale() == 512.0 and fresh.state_dict() == state


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: fp16 AMP + GradScaler on the GPU")
def test_amp_run_checkpoints_safely_and_resumes_exactly(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    cfg = {**CFG, "train": {**CFG["train"], "steps": 6, "ckpt_every": 3, "amp": "fp16", "device": "cuda", "schedule": "constant"}}
    full = train({**cfg, "out_dir": str(tmp_path / "full")})
    ck = torch.load(tmp_path / "full" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert ck["scaler"]["scale"] > 0 and "cuda" in ck["rng"]
    train({**cfg, "out_dir": str(tmp_path / "run"), "train": {**cfg["train"], "steps": 3}})
    resumed = train({**cfg, "out_dir": str(tmp_path / "run")}, ["train.resume=auto"])
    assert [h["step"] for h in resumed.history] == list(range(1, 7))
    for a, b in zip(resumed.history, full.history):
        assert np.isclose(a["loss"], b["loss"], rtol=1e-5) and a["acc"] == b["acc"] and a["drop_rate"] == b["drop_rate"], (a, b)
