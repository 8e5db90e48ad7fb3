"""A full disk during `arface train` (ENOSPC from a write of the checkpoint or of metrics.jsonl) is one line
naming the file, exit status 2, and no half-written checkpoint is left."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest

import arface_repro.train.checkpoint as checkpoint_module
import arface_repro.train.loop as loop_module

TINY = ["train.steps=2", "train.batch_size=8", "train.log_every=1", "data.synthetic.num_identities=4",
        "data.synthetic.images_per_identity=4", "data.val.num_identities=3", "data.val.images_per_identity=3",
        "data.val.num_pairs=10", "model.name=tiny_resnet", "model.kwargs={channels: [8, 8, 16, 16], fast: true}"]


class _FullDisk(io.RawIOBase):
    """A real file whose device fills up after `room` bytes: writes past that fail with ENOSPC, as write(2) does."""

    def __init__(self, path, room: int, mode: str = "wb"):
        self.raw = open(path, mode, buffering=0)  # noqa: SIM115 - closed in close()
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = memoryview(data).cast("B")
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = self.raw.write(data[: self.room])
        self.room -= n
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def _full_open(room: int, match: str):
    real = open

    def fake(path, mode="r", *a, **k):
        if match in Path(path).name and ("w" in mode or "a" in mode):
            f = _FullDisk(path, room, "ab" if "a" in mode else "wb")
            if "b" in mode:
                return f
            return io.TextIOWrapper(io.BufferedWriter(f), encoding=k.get("encoding") or "utf-8")
        return real(path, mode, *a, **k)

    return fake


def _argv(tmp_path: Path) -> list[str]:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: full\n", encoding="utf-8")
    return ["train", str(cfg), *TINY, "--out-dir", str(tmp_path / "run"), "--quiet"]


@pytest.mark.parametrize("where", ["checkpoint", "metrics"])
def test_full_disk_during_train_is_one_line(tmp_path, monkeypatch, capsys, one_torch_thread, where):
    from arface_repro.cli import main

    if where == "checkpoint":  # the checkpoint's temp file fills the disk after 4 KB
        monkeypatch.setattr(checkpoint_module, "open", _full_open(4096, "checkpoint_last.pt"), raising=False)
        name = "checkpoint_last.pt"
    else:  # the first metrics line already finds the disk full
        monkeypatch.setattr(loop_module, "open", _full_open(0, "metrics.jsonl"), raising=False)
        name = "metrics.jsonl"
    assert main(_argv(tmp_path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("arface train: error: "), err
    assert "No space left on device" in err[0] and name in err[0] and "Traceback" not in err[0]
    run = tmp_path / "run"
    assert not (run / "checkpoint_last.pt").exists()
    assert not [p.name for p in run.glob(".*.tmp*")], "a temp checkpoint was left"
