"""The training output folder is locked: a second `arface train` into it stops with one line naming the folder
and the holder; a holder that was killed does not block the next run (the kernel drops its flock)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from arface_repro.utils.folder_lock import LOCK_NAME, FolderLock

ROOT = Path(__file__).resolve().parents[1]
TINY = ["train.steps=1", "train.batch_size=8", "train.log_every=1", "data.synthetic.num_identities=4",
        "data.synthetic.images_per_identity=4", "data.val.num_identities=3", "data.val.images_per_identity=3",
        "data.val.num_pairs=10", "model.name=tiny_resnet", "model.kwargs={channels: [8, 8, 16, 16], fast: true}"]


def _holder(folder: Path) -> subprocess.Popen:
    """Another process that holds the folder's lock until killed."""
    script = ("import sys, time\n"
              "from arface_repro.utils.folder_lock import FolderLock\n"
              f"FolderLock({str(folder)!r}, 'arface train').acquire()\n"
              "print('held', flush=True)\n"
              "time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _train(tmp_path: Path, out: Path) -> list[str]:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: lock\n", encoding="utf-8")
    return ["train", str(cfg), *TINY, "--out-dir", str(out), "--quiet"]


def test_second_train_into_a_held_folder_stops_naming_folder_and_holder(tmp_path, capsys, one_torch_thread):
    from arface_repro.cli import main

    out = tmp_path / "run"
    proc = _holder(out)
    try:
        assert main(_train(tmp_path, out)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("arface train: error: "), err
        assert str(out) in err[0] and f"pid {proc.pid}" in err[0] and "another arface train" in err[0]
        assert not (out / "metrics.jsonl").exists() and not (out / "checkpoint_last.pt").exists()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the killed holder left its lock file; it no longer blocks
    assert (out / LOCK_NAME).exists()
    assert main(_train(tmp_path, out)) == 0
    assert (out / "checkpoint_last.pt").exists() and not (out / LOCK_NAME).exists()


def test_lock_is_exclusive_within_a_process_and_released(tmp_path):
    from arface_repro.errors import ConfigError

    with FolderLock(tmp_path / "f", "job"):
        with pytest.raises(ConfigError, match=r"another job is writing to this folder \(pid \d+ on "):
            FolderLock(tmp_path / "f", "job").acquire()
    assert not (tmp_path / "f" / LOCK_NAME).exists()
    FolderLock(tmp_path / "f").acquire().release()
