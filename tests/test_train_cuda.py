"""The training side on a CUDA device: float32 numbers against the CPU, bf16 + channels-last, the device data
path (pinned worker batches, masks and augmentation on the GPU), torch.compile (inductor), NCCL under torchrun,
and embedding with a trained model against the CPU. Skipped without a CUDA device; `scripts/gpu_check.sh` runs
them on a GPU machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from arface_repro.train.config import load_config
from arface_repro.train.loop import Trainer, train

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]

ROOT = Path(__file__).resolve().parents[1]

CFG = {
    "name": "cuda",
    "seed": 7,
    "model": {"name": "tiny_resnet", "kwargs": {"channels": [8, 8, 16, 16], "fast": True}},
    "method": {"kind": "arface", "patch_radius": 16, "num_layers": 2},
    "data": {"synthetic": {"num_identities": 8, "images_per_identity": 8},
             "val": {"num_identities": 4, "images_per_identity": 4, "num_pairs": 20}},
    "train": {"steps": 4, "batch_size": 16, "lr": 0.05, "momentum": 0.9, "schedule": "constant", "quiet": True,
              "log_every": 1, "device": "cuda", "memory_format": "contiguous"},
}


def no_eval(trainer):
    return {}


def _cfg(tmp_path, name, method=None, **train_keys):
    return {**CFG, "out_dir": str(tmp_path / name), "method": {**CFG["method"], **(method or {})},
            "train": {**CFG["train"], **train_keys}}


@pytest.fixture
def exact_cuda(monkeypatch):
    """IEEE float32 convolutions and products (no TF32) and deterministic cuDNN algorithms."""
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    if hasattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision"):  # torch >= 2.9's TF32 settings
        targets = [(torch.backends.cudnn.conv, "fp32_precision", "ieee"),
                   (torch.backends.cuda.matmul, "fp32_precision", "ieee")]
    else:
        targets = [(torch.backends.cudnn, "allow_tf32", False), (torch.backends.cuda.matmul, "allow_tf32", False)]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in targets]
    for obj, name, value in targets:
        setattr(obj, name, value)
    yield
    for obj, name, value in saved:
        setattr(obj, name, value)


def test_float32_step_on_cuda_matches_cpu(tmp_path, exact_cuda):
    """The first step (before any update) computes the same loss on both devices; the first policy is uniform
    (zero-initialised Attention-Net head), so both draw the same modes from the same uniforms."""
    cpu = train(_cfg(tmp_path, "cpu", device="cpu", steps=2), verify_fn=no_eval).history
    gpu = train(_cfg(tmp_path, "gpu", steps=2), verify_fn=no_eval).history
    assert np.isclose(gpu[0]["loss"], cpu[0]["loss"], rtol=1e-4), (gpu[0], cpu[0])
    assert gpu[0]["drop_rate"] == cpu[0]["drop_rate"]
    assert np.isclose(gpu[1]["loss"], cpu[1]["loss"], rtol=1e-3), (gpu[1], cpu[1])


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_channels_last_training(tmp_path, amp):
    ref = train(_cfg(tmp_path, "ref", device="cpu", steps=1), verify_fn=no_eval).history[0]["loss"]
    seen = {}

    def grab(trainer, rec):
        seen["trainer"] = trainer

    hist = train(_cfg(tmp_path, amp, amp=amp, memory_format="auto"), verify_fn=no_eval, on_step=grab).history
    tr = seen["trainer"]
    assert tr.memory_format == torch.channels_last and tr.precision.mode == amp
    assert tr.scaler.is_enabled() == (amp == "fp16")
    conv = next(m for m in tr.fnet.backbone.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert all(p.dtype == torch.float32 for p in tr.fnet.parameters())
    losses = [h["loss"] for h in hist]
    assert all(np.isfinite(losses)) and abs(losses[0] - ref) < 0.05 * abs(ref)
    with tr.precision.autocast():  # the head's logits are float32 inside the autocast region
        x = torch.zeros(2, 3, 112, 112, device=tr.device).contiguous(memory_format=torch.channels_last)
        logits, pred = tr.fnet(x, torch.zeros(2, dtype=torch.long, device=tr.device))
    assert logits.dtype == pred.dtype == torch.float32


def test_bf16_resume_on_cuda(tmp_path, exact_cuda):
    cfg = _cfg(tmp_path, "full", amp="bf16", memory_format="auto", steps=6, ckpt_every=3)
    full = train(cfg, verify_fn=no_eval).history
    run = _cfg(tmp_path, "run", amp="bf16", memory_format="auto", steps=3, ckpt_every=3)
    train(run, verify_fn=no_eval)
    resumed = train({**run, "train": {**run["train"], "steps": 6}}, ["train.resume=auto"], verify_fn=no_eval).history
    assert [h["step"] for h in resumed] == list(range(1, 7))
    for a, b in zip(resumed, full):  # the Attention-Net's RoIAlign backward uses atomics: float-close, not bitwise
        assert np.isclose(a["loss"], b["loss"], rtol=1e-3), (a, b)


@pytest.mark.parametrize("method", [{"kind": "cutout"}, {"kind": "dropblock"}, {"kind": "random", "num_layers": 2}])
def test_augmentation_and_masks_on_the_device(tmp_path, method):
    """Cutout squares, DropBlock noise (a generator on the GPU) and patch masks are made on the GPU."""
    hist = train(_cfg(tmp_path, method["kind"], method=method, amp="bf16", memory_format="auto", steps=3),
                 verify_fn=no_eval).history
    assert len(hist) == 3 and all(np.isfinite(h["loss"]) for h in hist)


def test_pinned_worker_batches_match_in_process_batches(tmp_path, exact_cuda):
    runs = []
    for nw in (0, 2):
        cfg = _cfg(tmp_path, f"w{nw}", method={"kind": "random"}, steps=3)
        cfg["data"] = {**CFG["data"], "num_workers": nw}
        runs.append([h["loss"] for h in train(cfg, verify_fn=no_eval).history])
    assert np.allclose(runs[0], runs[1], rtol=1e-6)


def test_compile_with_inductor(tmp_path, exact_cuda):
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    eager = train(_cfg(tmp_path, "eager", steps=3), verify_fn=no_eval).history
    comp = train(_cfg(tmp_path, "compiled", steps=3, compile=True), verify_fn=no_eval).history
    assert counters["stats"]["unique_graphs"] <= 2  # one training graph for every layer draw (+ at most a break)
    assert np.isclose(comp[0]["loss"], eager[0]["loss"], rtol=1e-3), (comp[0], eager[0])
    torch._dynamo.reset()


def test_trained_model_embeds_on_cuda_as_on_cpu(tmp_path, exact_cuda):
    """Trainer.embed (argmax modes of the Attention-Net + masked input + backbone) with the same weights."""
    cpu = Trainer(load_config(_cfg(tmp_path, "cpu", device="cpu")))
    for _ in range(2):
        cpu.train_step()
    gpu = Trainer(load_config(_cfg(tmp_path, "gpu")))
    gpu.fnet.load_state_dict(cpu.fnet.state_dict())
    gpu.attn.load_state_dict(cpu.attn.state_dict())
    val = cpu.train_set
    f_cpu, m_cpu = cpu.embed(val.images[:32], val.landmarks[:32])
    f_gpu, m_gpu = gpu.embed(val.images[:32], val.landmarks[:32])
    assert np.array_equal(m_cpu, m_gpu)
    np.testing.assert_allclose(f_gpu, f_cpu, rtol=1e-4, atol=1e-4 * np.abs(f_cpu).max())


def test_torchrun_one_process_uses_nccl(tmp_path):
    """`torchrun --nproc_per_node 1`: the NCCL process group and DDP path on one GPU, the numbers of a plain run
    (both with torch's default cuDNN settings: the launched process does not inherit a test's settings)."""
    import yaml

    cfg = _cfg(tmp_path, "torchrun", steps=3)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
           "-m", "arface_repro", "train", str(path), "--quiet"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["process_group"] == "nccl"
    launched = [json.loads(x) for x in (tmp_path / "torchrun" / "metrics.jsonl").read_text().splitlines()]
    launched = [x["loss"] for x in launched if "loss" in x]
    plain = [h["loss"] for h in train(_cfg(tmp_path, "plain", steps=3), verify_fn=no_eval).history]
    assert np.allclose(launched, plain, rtol=1e-3), (launched, plain)
