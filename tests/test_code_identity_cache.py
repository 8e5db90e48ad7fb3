"""Caches that cannot lie: a synthetic run is reused by the same code, and trained again after one line of
the trainer changes (on a copy of the package, edited for real; no monkeypatched identity)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from arface_repro.shared_data import REPO_ROOT

pytestmark = pytest.mark.slow  # trains twice, in two fresh processes

TINY = ["data.synthetic.num_identities=6", "data.synthetic.images_per_identity=4", "data.val.num_identities=6",
        "data.val.images_per_identity=5", "data.val.num_pairs=20", "train.batch_size=8", "train.steps=2"]

DRIVER = """
import json, sys
from arface_repro.paper.synthetic_runs import Job, run_jobs
from arface_repro.utils.provenance import code_key
job = Job("syn_plain", 0, tuple(json.loads(sys.argv[2])))
out = []
for _ in range(int(sys.argv[3])):  # the second call in the same process finds the first one's record
    logs = []
    rec = run_jobs([job], sys.argv[1], workers=1, log=logs.append)[job]
    out.append({"path": rec["_path"], "source_sha256": rec["source_sha256"], "code_key": code_key(), "log": logs})
print(json.dumps(out))
"""


def _run(src: Path, runs: Path, work: Path, calls: int) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("ARFACE_PROTOCOLS", "PYTHONPATH")}
    env.update(PYTHONPATH=str(src), OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", DRIVER, str(runs), json.dumps(TINY), str(calls)], cwd=work, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_a_changed_trainer_line_retrains_instead_of_serving_the_old_record(tmp_path):
    if not (REPO_ROOT / "configs" / "syn_plain.yaml").is_file():
        pytest.skip("not running from a checkout (no configs/)")
    src = tmp_path / "src"
    for item in ("arface_repro", "protocols", "configs"):
        shutil.copytree(REPO_ROOT / item, src / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    runs, work = tmp_path / "runs", tmp_path / "work"
    work.mkdir()

    first, again = _run(src, runs, work, 2)
    assert any("training 1 synthetic runs" in line for line in first["log"])
    assert first["source_sha256"] == first["code_key"]
    mtime = Path(first["path"]).stat().st_mtime_ns
    # the same code: served from the record
    assert again["path"] == first["path"] and any("1 of 1 synthetic runs reused" in line for line in again["log"])
    assert not any("training" in line for line in again["log"])

    loop = src / "arface_repro" / "train" / "loop.py"
    text = loop.read_text(encoding="utf-8")
    loop.write_text(text + "\nEDITED_BY_A_TEST = True\n", encoding="utf-8")  # one line of the trainer changed
    (edited,) = _run(src, runs, work, 1)
    assert any("training 1 synthetic runs" in line for line in edited["log"]), edited["log"]
    assert not any("reused" in line for line in edited["log"])
    assert edited["code_key"] != first["code_key"] and edited["source_sha256"] == edited["code_key"]
    assert edited["path"] != first["path"] and Path(first["path"]).stat().st_mtime_ns == mtime  # the old one untouched
