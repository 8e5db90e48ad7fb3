"""Mixed precision and the device-path options on CPU: `train.amp` (bf16 / fp16 / off), float32 heads and
REINFORCE under autocast, channels-last refused on CPU, `train.compile` (traced with dynamo's eager backend,
so no compiler is needed), and worker-process loading of in-memory sets. The GPU side: tests/test_train_cuda.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from arface_repro.backbones.heads import HEADS, create_head
from arface_repro.errors import ConfigError
from arface_repro.method.attention_net import entropy, log_prob, sample_modes
from arface_repro.method.reinforce import reinforce_loss
from arface_repro.train import acceleration as A
from arface_repro.train.config import load_config
from arface_repro.train.loop import Trainer, normalise, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = {
    "name": "amp",
    "seed": 5,
    "model": {"name": "tiny_resnet", "kwargs": {"channels": [8, 8, 16, 16], "fast": True}},
    "method": {"kind": "arface", "patch_radius": 16, "num_layers": 2, "layer_draw": "per_layer"},
    "data": {"synthetic": {"num_identities": 8, "images_per_identity": 6},
             "val": {"num_identities": 4, "images_per_identity": 4, "num_pairs": 20}},
    "train": {"steps": 5, "batch_size": 16, "lr": 0.05, "momentum": 0.9, "warmup_steps": 2, "quiet": True,
              "log_every": 1},
}


def no_eval(trainer):
    return {}


def _cfg(tmp_path, name, **train_keys):
    return {**CFG, "out_dir": str(tmp_path / name), "train": {**CFG["train"], **train_keys}}


# ------------------------------------------------------------------------------------------ config
def test_amp_values(tmp_path):
    for v in ("bf16", "fp16", "off"):
        assert load_config(None, [f"train.amp={v}"])["train"]["amp"] == v
    assert load_config(None)["train"]["amp"] == "off"
    f = tmp_path / "c.yaml"
    f.write_text("train: {amp: off}\n")  # YAML 1.1 reads a bare `off` as false
    assert load_config(f)["train"]["amp"] == "off"
    f.write_text("train: {amp: true}\n")
    with pytest.raises(ConfigError, match=r"c.yaml: train.amp must be bf16, fp16 or off \(true no longer picks"):
        load_config(f)
    with pytest.raises(ConfigError, match="train.amp must be bf16, fp16 or off, got 'fp32'"):
        load_config(None, ["train.amp=fp32"])
    with pytest.raises(ConfigError, match="train.compile must be true or false"):
        load_config(None, ["train.compile=yes please"])
    with pytest.raises(ConfigError, match="train.memory_format must be one of auto, channels_last, contiguous"):
        load_config(None, ["train.memory_format=nhwc"])


def test_channels_last_is_refused_on_cpu_and_auto_is_contiguous(tmp_path):
    with pytest.raises(ConfigError, match="channels_last is for CUDA"):
        Trainer(load_config(_cfg(tmp_path, "cl", memory_format="channels_last", device="cpu")))
    tr = Trainer(load_config(_cfg(tmp_path, "auto", device="cpu")))
    assert tr.memory_format == torch.contiguous_format and tr.precision.mode == "off" and not tr.scaler.is_enabled()


def test_normalise_channels_last_has_the_same_values():
    img = torch.randint(0, 256, (3, 112, 112, 3), dtype=torch.uint8)
    a = normalise(img)
    b = normalise(img, memory_format=torch.channels_last)
    assert a.is_contiguous() and b.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(a, b)


# ------------------------------------------------------------------------------------------ float32 islands
@pytest.mark.parametrize("name", HEADS)
def test_heads_compute_float32_logits_inside_bf16_autocast(name):
    torch.manual_seed(0)
    head = create_head(name, 32, 10).eval()  # eval: SphereFace's lambda schedule does not move between calls
    emb = torch.randn(6, 32).bfloat16()  # what a backbone under bf16 autocast hands over
    labels = torch.arange(6) % 10
    ref = (head(emb, labels), head.predict(emb))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = (head(emb, labels), head.predict(emb))
        naive = F.linear(F.normalize(emb.float()), F.normalize(head.weight.float())) if hasattr(head, "weight") else None
    for g, r in zip(got, ref):
        assert g.dtype == torch.float32 and torch.equal(g, r)  # bit-identical to the head outside autocast
    if naive is not None:  # without the float32 island autocast would have run the cosine in bf16
        assert naive.dtype == torch.bfloat16


def test_margin_survives_mixed_precision():
    """ArcFace's target logit under autocast equals the float32 one; a bf16 cosine would lose the margin's digits."""
    torch.manual_seed(1)
    head = create_head("arcface", 64, 5, s=64.0, m=0.5)
    emb = head.weight[:5].detach().clone() + 0.05 * torch.randn(5, 64)  # near the class centres: cos close to 1
    labels = torch.arange(5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        amp = head(emb, labels)
    exact = head(emb, labels)
    assert torch.equal(amp, exact)
    cos = head.predict(emb).gather(1, labels.view(-1, 1))
    assert (cos.bfloat16().float() - cos).abs().max() > 1e-4  # what a bf16 cosine would have rounded away


def test_policy_log_probabilities_are_float32_under_autocast():
    torch.manual_seed(2)
    logits = torch.randn(8, 31, requires_grad=True)
    modes = sample_modes(logits, torch.rand(8))
    ref_lp, ref_h = log_prob(logits, modes), entropy(logits)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lp, h = log_prob(logits.bfloat16(), modes), entropy(logits)
        loss = reinforce_loss(lp.bfloat16(), 0.3, 8, h, 0.01)
        assert torch.equal(sample_modes(logits, torch.rand(8, generator=torch.Generator().manual_seed(0))),
                           sample_modes(logits, torch.rand(8, generator=torch.Generator().manual_seed(0))))
    assert lp.dtype == h.dtype == loss.dtype == torch.float32
    assert torch.equal(h, ref_h)
    assert torch.allclose(lp, ref_lp, atol=0.05)  # the logits were rounded to bf16 by the caller, not in log_prob
    assert torch.equal(lp, log_prob(logits.bfloat16().float(), modes))


# ------------------------------------------------------------------------------------------ training
def test_bf16_training_runs_under_autocast_and_keeps_float32_weights(tmp_path):
    off = train(_cfg(tmp_path, "off"), verify_fn=no_eval)
    tr_holder = {}

    def grab(trainer, rec):
        tr_holder["t"] = trainer

    bf = train(_cfg(tmp_path, "bf16", amp="bf16"), verify_fn=no_eval, on_step=grab)
    tr = tr_holder["t"]
    assert tr.precision.dtype == torch.bfloat16 and not tr.scaler.is_enabled()
    assert all(p.dtype == torch.float32 for p in tr.fnet.parameters())
    a, b = [h["loss"] for h in off.history], [h["loss"] for h in bf.history]
    assert a != b  # autocast really ran the backbone in bf16 ...
    assert abs(a[0] - b[0]) < 0.05 * abs(a[0])  # ... and the first loss (before any update) is close to float32's
    assert all(torch.isfinite(torch.tensor(b)))
    ck = torch.load(tmp_path / "bf16" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert ck["config"]["train"]["amp"] == "bf16" and ck["scaler"] == {}


def test_fp16_training_uses_the_grad_scaler_and_checkpoints_it(tmp_path):
    res = train(_cfg(tmp_path, "fp16", amp="fp16", steps=4), verify_fn=no_eval)
    ck = torch.load(tmp_path / "fp16" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert ck["scaler"]["scale"] > 0 and "_growth_tracker" in ck["scaler"]
    assert all(torch.isfinite(torch.tensor([h["loss"] for h in res.history])))


def test_compile_gives_the_eager_numbers_with_one_graph_for_every_layer_draw(tmp_path, monkeypatch):
    """`train.compile` with dynamo's eager backend: the traced graph computes what eager does (bitwise), and the
    static masker keeps one graph although the masked layers change from step to step."""
    from torch._dynamo.utils import counters

    monkeypatch.setitem(A.COMPILE_OPTIONS, "backend", "eager")
    torch._dynamo.reset()
    counters.clear()
    eager = train(_cfg(tmp_path, "eager", steps=6), verify_fn=no_eval)
    compiled = train(_cfg(tmp_path, "compiled", steps=6, compile=True), verify_fn=no_eval)
    assert compiled.history == eager.history
    assert counters["stats"]["unique_graphs"] == 1
    torch._dynamo.reset()


def test_compile_with_dropblock_keeps_its_hooks_eager(tmp_path, monkeypatch):
    monkeypatch.setitem(A.COMPILE_OPTIONS, "backend", "eager")
    torch._dynamo.reset()
    base = {**CFG, "method": {"kind": "dropblock"}}
    eager = train({**base, "out_dir": str(tmp_path / "e"), "train": {**CFG["train"], "steps": 3}}, verify_fn=no_eval)
    comp = train({**base, "out_dir": str(tmp_path / "c"), "train": {**CFG["train"], "steps": 3, "compile": True}},
                 verify_fn=no_eval)
    assert comp.history == eager.history
    torch._dynamo.reset()


def test_in_memory_set_with_worker_processes_matches_in_process_loading(tmp_path):
    base = {**CFG, "method": {"kind": "random", "patch_radius": 16, "num_layers": 1}}
    runs = []
    for nw in (0, 2):
        cfg = {**base, "out_dir": str(tmp_path / f"w{nw}"), "data": {**CFG["data"], "num_workers": nw},
               "train": {**CFG["train"], "steps": 3}}
        runs.append(train(cfg, verify_fn=no_eval).history)
    assert len(runs[0]) == 3 and runs[0] == runs[1]
