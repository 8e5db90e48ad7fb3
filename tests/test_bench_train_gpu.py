"""scripts/bench_train_gpu.py and scripts/gpu_check.py at toy sizes on the CPU, so that the GPU check cannot rot
between the runs on a GPU machine. Figures are not checked (no time assertions), only that every one is made."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from arface_repro.backbones.registry import is_model

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bench():
    """scripts/bench_train_gpu.py loaded from its file (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("bench_train_gpu", ROOT / "scripts" / "bench_train_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_train_gpu_smoke_on_cpu(tmp_path, bench):
    out = tmp_path / "bench.json"
    rc = bench.main(["--device", "cpu", "--models", "tiny_resnet", "--batch", "8", "--steps", "2", "--warmup", "1",
                     "--workers", "2", "--embed-batch", "8", "--embed-images", "16", "--threads", "1",
                     "--out", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["errors"] == []
    rows = {r["variant"]: r for r in res["train"]}
    assert set(rows) == {"plain", "arface"} and rows["arface"]["num_layers"] == 2
    for r in rows.values():
        assert r["img_s"] > 0 and r["amp"] == "bf16" and r["memory_format"] == "contiguous_format"
    paths = {r["path"] for r in res["embed"]}
    assert {"backbone on a device batch", "extract_features (JPEG files, workers, float32)"} <= paths
    assert {"tiny_resnet_plain_img_s", "tiny_resnet_arface_overhead"} <= set(res["summary"])
    assert res["goals"]["mobilefacenet_train_img_s"] == 6000.0


def test_ir50_falls_back_to_iresnet50_only_when_unregistered(bench):
    assert bench.resolve_model("ir50") == ("ir50" if is_model("ir50") else "iresnet50")
    assert bench.resolve_model("mobilefacenet") == "mobilefacenet"


def test_gpu_check_refuses_to_run_without_cuda_and_says_so(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the check would run for minutes")
    out = tmp_path / "gc.json"
    r = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--out", str(out), "--skip",
                        "tests,train,large,compile"], env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    res = json.loads(out.read_text())
    assert "no CUDA device" in res["error"] and res["environment"]["cuda_available"] is False
    assert (tmp_path / "gpu_check.log").exists()


def test_gpu_check_smoke_run_collects_the_training_figures(tmp_path):
    """`gpu_check.sh --smoke`: the orchestration (stage limits, the bench's JSON folded in, figures, goal table)
    on the CPU at toy sizes; the tests and large-protocol stages are left out here (they have their own tests)."""
    out = tmp_path / "gc.json"
    r = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--smoke", "--out", str(out), "--skip",
                        "tests,large"], env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["stages"]["train_throughput"]["rc"] == 0
    fig = res["figures"]
    assert fig["tiny_resnet_plain_train_img_s"] > 0 and fig["tiny_resnet_arface_overhead"] > 0
    assert "tiny_resnet_embed_extract_features_img_s" in fig
    assert res["goal_checks"]["mobilefacenet_train_img_s"] == {"value": None, "goal": ">= 6000.0", "met": None}
